"""Cloud Run service bodies: the labels and annotations multicloud owns, and the summary plans compare.

The summary is computed the same way from the body multicloud sends and the body Cloud Run
returns, from the fields multicloud sets only, so a re-plan of an unchanged service is empty
and a change made outside multicloud (in the console) shows as drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from multicloud.resources import Resource, Sensitive
from multicloud_gcp.api import Body

APP_LABEL = "multicloud-app"
TARGET_LABEL = "multicloud-target"
SERVICE_LABEL = "multicloud-service"
SPEC_LABEL = "multicloud-spec"
DEPENDS_ANNOTATION = "multicloud.dev/depends-on"
DIGESTS_ANNOTATION = "multicloud.dev/secret-digests"
PORT_ANNOTATION = "multicloud.dev/port"
BUILD_ANNOTATION = "multicloud.dev/build"
TEMPLATE_FIELDS = (
    "timeout",
    "service_account",
    "max_instance_request_concurrency",
    "session_affinity",
    "execution_environment",
)


def canonical(value: Any) -> Any:
    """Drop empty and default values recursively, as protobuf JSON omits them."""
    if isinstance(value, Mapping):
        kept = {str(k): canonical(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, False, 0, "", [], {})}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def owner(body: Body) -> tuple[str, str] | None:
    """The (app, service) a Cloud Run service belongs to, from its labels, or None."""
    labels = body.get("labels") or {}
    app, service = labels.get(APP_LABEL), labels.get(SERVICE_LABEL)
    return (app, service) if app and service else None


def summarize(body: Body, *, own_account: bool = True) -> dict[str, Any]:
    """The properties a plan compares, from a service body (sent or observed); the service
    account only when multicloud sets it (`own_account`), else Cloud Run's default is not drift."""
    body = canonical(body)
    template = body.get("template", {})
    if not own_account:
        template.pop("service_account", None)
    container = (template.get("containers") or [{}])[0]
    digests = json.loads((template.get("annotations") or {}).get(DIGESTS_ANNOTATION, "{}"))
    env: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for entry in container.get("env", []):
        ref = entry.get("value_source", {}).get("secret_key_ref")
        if ref:
            env[entry["name"]] = Sensitive(digest=str(digests.get(entry["name"], "unknown")))
            secrets[entry["name"]] = f"{ref.get('secret')}@{ref.get('version', 'latest')}"
        else:
            env[entry["name"]] = entry.get("value", "")
    files = {}
    volumes = template.get("volumes", [])
    instances = sorted(i for v in volumes for i in v.get("cloud_sql_instance", {}).get("instances", []))
    for volume in template.get("volumes", []):
        source = volume.get("secret", {})
        for item in source.get("items", []):
            files[item.get("path", "")] = f"{source.get('secret')}@{item.get('version', 'latest')}"
    resources = container.get("resources", {})
    scaling = template.get("scaling", {})
    summary: dict[str, Any] = {
        "image": _image(container.get("image"), body),
        "entrypoint": container.get("command"),
        "command": container.get("args"),
        "env": env,
        "secrets": secrets or None,
        "secret_files": files or None,
        "cloud_sql": instances or None,
        "secret_digests": {k: Sensitive(digest=str(v)) for k, v in digests.items() if k.startswith("file:")} or None,
        "port": (container.get("ports") or [None])[0],
        "exposed": (body.get("annotations") or {}).get(PORT_ANNOTATION),
        "ingress": body.get("ingress", "INGRESS_TRAFFIC_ALL"),
        "unauthenticated": bool(body.get("invoker_iam_disabled")),
        "vpc_access": template.get("vpc_access"),
        "cpu": resources.get("limits", {}).get("cpu"),
        "memory": resources.get("limits", {}).get("memory"),
        "cpu_idle": bool(resources.get("cpu_idle")),
        "min_instances": int(scaling.get("min_instance_count", 0)),
        "max_instances": int(scaling.get("max_instance_count", 0)),
        "startup_probe": container.get("startup_probe"),
        "liveness_probe": container.get("liveness_probe"),
    }
    for name in TEMPLATE_FIELDS:
        summary[name] = template.get(name)
    return {k: v for k, v in summary.items() if v is not None}


def _image(image: Any, body: Body) -> Any:
    """A container's image as the plan compares it: a pushed `build:` (the service's own repository,
    with the build annotation) as the build it came from, anything else as it is."""
    build = (body.get("annotations") or {}).get(BUILD_ANNOTATION)
    service = (body.get("labels") or {}).get(SERVICE_LABEL)
    if isinstance(image, str) and build and service and image.partition("@")[0].endswith(f"/{service}"):
        try:
            return canonical(json.loads(build))
        except ValueError:
            return image
    return image


def resource_of(body: Body, *, own_account: bool = True) -> Resource | None:
    """The Resource an observed service stands for, or None when multicloud does not own it."""
    found = owner(body)
    if found is None:
        return None
    depends = (body.get("annotations") or {}).get(DEPENDS_ANNOTATION, "")
    return Resource(
        "service",
        found[1],
        summarize(body, own_account=own_account),
        depends_on=tuple(d for d in depends.split(",") if d),
        service=found[1],
        payload=body,
        faults=faults_of(body),
        target=(body.get("labels") or {}).get(TARGET_LABEL, ""),
    )


def faults_of(body: Body) -> tuple[str, ...]:
    """What is broken in a service Cloud Run has settled: its Ready condition failed."""
    condition = body.get("terminal_condition") or {}
    if body.get("reconciling") or condition.get("state") != "CONDITION_FAILED":
        return ()
    return (f"Cloud Run reports it not ready: {condition.get('message') or condition.get('reason') or 'no reason'}",)
