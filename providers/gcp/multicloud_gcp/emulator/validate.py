"""The checks Cloud Run makes on a Service (camelCase JSON), raised as INVALID_ARGUMENT with violations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from multicloud_gcp import limits
from multicloud_gcp.emulator.faults import ApiError

INGRESS = (
    "INGRESS_TRAFFIC_ALL",
    "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "INGRESS_TRAFFIC_NONE",
    "INGRESS_TRAFFIC_UNSPECIFIED",
)
PORT_NAMES = ("http1", "h2c")
TAG = re.compile(r"^[a-z]([a-z0-9-]{0,45}[a-z0-9])?$")


def check_service_id(service_id: str) -> None:
    """Raise INVALID_ARGUMENT when a service ID breaks Cloud Run's naming rule."""
    problem = limits.service_id_problem(service_id)
    if problem:
        raise ApiError("INVALID_ARGUMENT", f"service_id: {problem}", (("service_id", problem),))


def _seconds(text: str) -> float:
    """Seconds from a protobuf JSON duration such as '300s'."""
    return float(str(text).removesuffix("s") or 0)


def check_service(service: dict[str, Any], revisions: Mapping[str, bool]) -> None:
    """Raise INVALID_ARGUMENT listing every rule a service body breaks (`revisions`: the service's
    revisions by short name, True for those that are Ready)."""
    found: list[tuple[str, str]] = []
    template_of = (service.get("template") or {}).get("annotations")
    for key, value in (service.get("labels") or {}).items():
        if not limits.LABEL_KEY.match(key) or not limits.LABEL_VALUE.match(str(value)):
            found.append((f"labels.{key}", "label keys and values: lowercase letters, digits, _ and -, at most 63"))
    for where, notes in (("annotations", service.get("annotations")), ("template.annotations", template_of)):
        for key in notes or {}:
            if str(key).startswith(limits.SYSTEM_ANNOTATIONS):
                found.append((f"{where}.{key}", "system annotations are not supported in v2 (run.googleapis.com, "
                              "cloud.googleapis.com, serving.knative.dev, autoscaling.knative.dev)"))
    if service.get("ingress", "INGRESS_TRAFFIC_ALL") not in INGRESS:
        found.append(("ingress", f"unknown ingress {service.get('ingress')!r}"))
    template = service.get("template") or {}
    containers = template.get("containers") or []
    if not 1 <= len(containers) <= 10:
        found.append(("template.containers", "a revision template needs 1 to 10 containers"))
    concurrency = int(template.get("maxInstanceRequestConcurrency") or 0)
    environment = template.get("executionEnvironment")
    with_ports = 0
    for index, container in enumerate(containers):
        with_ports += bool(container.get("ports"))
        found += _container_problems(f"template.containers[{index}]", container, concurrency, environment)
    if with_ports > 1:
        found.append(("template.containers", "exactly one container may expose a port (the ingress container)"))
    scaling = template.get("scaling") or {}
    low, high = int(scaling.get("minInstanceCount", 0)), int(scaling.get("maxInstanceCount", 0))
    if high and low > high:
        found.append(("template.scaling", f"minInstanceCount {low} exceeds maxInstanceCount {high}"))
    if _seconds(template.get("timeout", "300s")) > limits.MAX_TIMEOUT:
        found.append(("template.timeout", "the request timeout is at most 3600s"))
    traffic = service.get("traffic") or []
    if traffic:
        total = sum(int(t.get("percent", 0)) for t in traffic)
        if total != 100:
            found.append(("traffic", f"traffic percentages must add up to 100 (got {total})"))
        for target in traffic:
            revision = target.get("revision")
            if target.get("type") != "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION":
                continue
            if revision not in revisions:
                found.append(("traffic", f"revision {revision!r} does not exist for this service"))
            elif not revisions[revision] and int(target.get("percent") or 0) > 0:
                found.append(("traffic", f"Revision '{revision}' is not ready and cannot serve traffic."))
    tags = [str(t["tag"]) for t in traffic if t.get("tag")]
    for tag in tags:
        if not TAG.match(tag):
            found.append(("traffic.tag", f"tag {tag!r}: lowercase letters, digits and hyphens, starting with a letter"))
    if len(tags) != len(set(tags)):
        found.append(("traffic.tag", "each tag may name one traffic target"))
    if found:
        summary = "; ".join(f"{field}: {text}" for field, text in found)
        raise ApiError("INVALID_ARGUMENT", f"The request has errors: {summary}", tuple(found))


def _container_problems(
    where: str, container: dict[str, Any], concurrency: int, environment: str | None
) -> list[tuple[str, str]]:
    """The rules one container breaks: image, one port, env names, CPU and memory limits; an unset
    concurrency is Cloud Run's default (1 below 1 CPU, else 80)."""
    found: list[tuple[str, str]] = []
    if not container.get("image"):
        found.append((f"{where}.image", "an image is required"))
    ports = container.get("ports") or []
    if len(ports) > 1:
        found.append((f"{where}.ports", "a container exposes at most one port"))
    for port in ports:
        if not 1 <= int(port.get("containerPort", 8080)) <= 65535:
            found.append((f"{where}.ports.containerPort", "must be between 1 and 65535"))
        if port.get("name", "http1") not in PORT_NAMES:
            found.append((f"{where}.ports.name", "must be http1 or h2c"))
    names = [e.get("name") for e in container.get("env") or []]
    if len(names) != len(set(names)):
        found.append((f"{where}.env", "environment variable names must be unique"))
    too_many = limits.env_count_problem(len(names))
    if too_many:
        found.append((f"{where}.env", too_many))
    reserved = limits.reserved_env_problem([str(n) for n in names])
    if reserved:
        found.append((f"{where}.env", reserved))
    for kind in ("startupProbe", "livenessProbe"):
        probe = container.get(kind)
        for problem in limits.probe_problems(probe or {}, startup=kind == "startupProbe") if probe else ():
            found.append((f"{where}.{kind}", problem))
    resources = container.get("resources") or {}
    limit = resources.get("limits") or {}
    try:
        cpu = limits.parse_cpu(str(limit.get("cpu", "1")))
        memory = limits.memory_of(str(limit.get("memory", "512Mi")))
    except ValueError as exc:
        return [*found, (f"{where}.resources.limits", f"invalid quantity: {exc}")]
    cpu_idle = bool(resources.get("cpuIdle"))
    gen1 = environment == "EXECUTION_ENVIRONMENT_GEN1"
    concurrency = concurrency or (1 if cpu < 1 else 80)
    for problem in limits.resource_problems(cpu, memory, concurrency=concurrency, cpu_idle=cpu_idle, gen1=gen1):
        found.append((f"{where}.resources.limits", problem))
    gen2 = limits.execution_problem(memory, gen2=environment == "EXECUTION_ENVIRONMENT_GEN2")
    if gen2:
        found.append(("template.executionEnvironment", gen2))
    return found
