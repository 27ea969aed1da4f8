"""Task definitions: rendered from a service's `task` properties, and read back into them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.resources import fingerprint
from multicloud_aws import names

PORT_LABEL = "multicloud.port."
"""Docker label recording a port's spec protocol (mqtt, http...), which ECS does not keep."""
BUILD_LABEL = "multicloud.build"
"""Docker label recording a built image's spec form (context, args, context hash) as JSON."""
SECRETS_LABEL = "multicloud.secret-digests"
"""Docker label recording the digest of each secret variable's value (JSON), so a new value makes a new revision."""
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


def task_hash(task: Mapping[str, Any]) -> str:
    """The fingerprint a task definition revision is tagged with (secrets by digest)."""
    return fingerprint(task)


def register_request(app: str, service: str, task: Mapping[str, Any], *, region: str, image: str,
                     arn_of: Callable[[str], str]) -> dict[str, Any]:
    """The register_task_definition arguments for a task; `arn_of` turns resource keys
    (secret/x, role/app) into ARNs, `image` is the reference to run (a digest for builds)."""
    container: dict[str, Any] = {
        "name": service,
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": p["port"], "protocol": "udp" if p["protocol"] == "udp" else "tcp",
                          "name": p["name"]} for p in task["ports"]],
        "dockerLabels": _labels(task),
        "environment": [{"name": k, "value": v} for k, v in sorted(task["env"].items())],
        "secrets": [{"name": k, "valueFrom": arn_of(v)} for k, v in sorted(task["secrets"].items())],
        "readonlyRootFilesystem": bool(task["read_only"]),
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": task["log_group"], "awslogs-region": region,
                        "awslogs-stream-prefix": service},
        },
    }
    for key, field in (("command", "command"), ("entrypoint", "entryPoint"), ("user", "user")):
        if task.get(key):
            container[field] = task[key]
    health = task.get("health")
    if health:
        container["healthCheck"] = {"command": health["command"], "interval": health["interval"],
                                    "timeout": health["timeout"], "retries": health["retries"],
                                    "startPeriod": health["start_period"]}
    request: dict[str, Any] = {
        "family": task["family"],
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(task["cpu"]),
        "memory": str(task["memory"]),
        "executionRoleArn": arn_of(task["execution_role"]),
        "containerDefinitions": [container],
        "tags": names.tag_list(names.tags(app, f"service/{service}", service,
                                          **{names.TAG_TASK_HASH: task_hash(task)}), lower=True),
    }
    if task.get("task_role"):
        request["taskRoleArn"] = task["task_role"]
    if task.get("platform"):
        request["runtimePlatform"] = dict(task["platform"])
    return request


def _labels(task: Mapping[str, Any]) -> dict[str, str]:
    """Container labels: each port's spec protocol, and a build's spec form."""
    labels = {f"{PORT_LABEL}{p['name']}": p["protocol"] for p in task["ports"]}
    if isinstance(task["image"], Mapping):
        labels[BUILD_LABEL] = json.dumps(task["image"], sort_keys=True, separators=(",", ":"))
    if task.get("secret_digests"):
        labels[SECRETS_LABEL] = json.dumps(task["secret_digests"], sort_keys=True, separators=(",", ":"))
    return labels


def read_task(app: str, described: Mapping[str, Any], role_key: Callable[[str], str],
              image: Callable[[str, str | None], Any]) -> dict[str, Any]:
    """Rebuild a service's `task` properties from describe_task_definition output; `role_key`
    maps a role ARN back to `role/APP` when the app owns it, `image(reference, build label)`
    maps the running image back to its spec form (a build for the app's own repositories)."""
    container = (described.get("containerDefinitions") or [{}])[0]
    service = str(container.get("name", ""))
    health = container.get("healthCheck")
    labels = container.get("dockerLabels") or {}
    return {
        "family": described.get("family"),
        "cpu": int(described.get("cpu") or 0),
        "memory": int(described.get("memory") or 0),
        "image": image(str(container.get("image", "")), labels.get(BUILD_LABEL)),
        "command": container.get("command") or None,
        "entrypoint": container.get("entryPoint") or None,
        "env": {e["name"]: e["value"] for e in sorted(container.get("environment") or [], key=lambda e: e["name"])},
        "secrets": {s["name"]: secret_key(app, service, s["name"], s["valueFrom"])
                    for s in sorted(container.get("secrets") or [], key=lambda s: s["name"])},
        "secret_digests": _json_label(labels.get(SECRETS_LABEL)),
        "ports": [{"name": p.get("name") or f"port-{p['containerPort']}", "port": p["containerPort"],
                   "protocol": labels.get(f"{PORT_LABEL}{p.get('name')}", p.get("protocol", "tcp"))}
                  for p in container.get("portMappings") or []],
        "health": None if not health else {
            "command": list(health["command"]), "interval": health.get("interval", 30),
            "timeout": health.get("timeout", 5), "retries": health.get("retries", 3),
            "start_period": health.get("startPeriod", 0)},
        "user": container.get("user") or None,
        "read_only": bool(container.get("readonlyRootFilesystem", False)),
        "execution_role": role_key(str(described.get("executionRoleArn", ""))),
        "task_role": described.get("taskRoleArn") or None,
        "log_group": ((container.get("logConfiguration") or {}).get("options") or {}).get("awslogs-group"),
        "platform": dict(described["runtimePlatform"]) if described.get("runtimePlatform") else None,
    }


def _json_label(text: str | None) -> dict[str, Any]:
    """A JSON object a label holds ({} when there is none or it is not one)."""
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def secret_key(app: str, service: str, variable: str, value_from: str) -> str:
    """The resource key (`secret/NAME` or `secret/SERVICE.VAR`) behind a secret's ARN."""
    match = _SECRET_ARN.match(value_from)
    name = match.group("name") if match else value_from.rsplit(":", 1)[-1]
    prefix = f"multicloud/{app}/"
    if not name.startswith(prefix):
        return value_from
    rest = name[len(prefix):]
    return f"secret/{service}.{variable}" if "/" in rest else f"secret/{rest}"


def secret_name_of_arn(arn: str) -> str:
    """The Secrets Manager name inside a secret ARN (without its random suffix)."""
    match = _SECRET_ARN.match(arn)
    return match.group("name") if match else arn
