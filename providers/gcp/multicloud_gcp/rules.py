"""Cloud Run rules a spec meets beyond the resource table: reserved env names, reaching internal
services, instance-based billing, the 1-CPU floor it implies and broker scaling. Pure."""

from __future__ import annotations

from dataclasses import replace

from multicloud.errors import Finding
from multicloud.spec.models import Port, Service
from multicloud.spec.placeholders import ServiceRef, placeholder_fields, references
from multicloud.spec.targets import TargetSpec
from multicloud_gcp import limits
from multicloud_gcp.settings import GcpSettings

MQTT_PROTOCOLS = ("mqtt", "mqtts", "mqtt-ws", "mqtt-wss")
DEFAULT_PORT = 8080


def serving_port(service: Service) -> int:
    """The container port Cloud Run routes to (and sets as $PORT): the service's port, else 8080."""
    return service.ports[0].port if service.ports else DEFAULT_PORT


def is_broker(service: Service) -> bool:
    """True when the service serves MQTT over WebSockets (one device = one long request)."""
    return any(p.protocol == "mqtt-ws" for p in service.ports)


def dropped_env(service: Service) -> set[str]:
    """The env names left out of the revision: PORT when it equals the port Cloud Run sets it to."""
    return {"PORT"} if service.env.get("PORT") == str(serving_port(service)) else set()


def reserved_env_problems(where: tuple[str, ...], service: Service) -> list[Finding]:
    """Env names Cloud Run sets itself and refuses in a revision (PORT only when it differs)."""
    found: list[Finding] = []
    for key in service.env:
        if key in limits.RESERVED_ENV and key not in dropped_env(service):
            hint = (
                f"Cloud Run sets PORT to the container port ({serving_port(service)}); make the port "
                f"{service.env[key]} or override env for this target"
                if key == "PORT"
                else "Cloud Run sets it to the service/revision name; read it instead of setting it"
            )
            found.append(((*where, "env", key), f"{key} is reserved on Cloud Run: {hint}"))
    return found


def _referenced_port(spec: TargetSpec, ref: ServiceRef) -> Port | None:
    """The port of another service a `${services.X.url|host[.P]}` reference points at, if any."""
    other = spec.services.get(ref.service)
    if other is None or not other.ports:
        return None
    return next((p for p in other.ports if p.name == ref.port), other.ports[0] if ref.port is None else None)


def _service_refs(service: Service) -> list[tuple[tuple[str | int, ...], ServiceRef]]:
    """Every (field path, reference) to another service's address in a service's env and args."""
    return [
        (path, ref)
        for path, text in placeholder_fields(service)
        for ref in references(text)
        if isinstance(ref, ServiceRef)
    ]


def internal_reference_problems(
    spec: TargetSpec, where: tuple[str, ...], service: Service, settings: GcpSettings
) -> list[Finding]:
    """Internal-only services reached without Direct VPC egress: Cloud Run blocks those calls."""
    if settings.vpc_network:
        return []
    found: list[Finding] = []
    for path, ref in _service_refs(service):
        port = _referenced_port(spec, ref)
        if ref.attribute in ("url", "host") and port is not None and port.expose == "internal":
            found.append((
                (*where, *map(str, path)),
                f"{ref.service} is internal (ingress: internal only), which Cloud Run lets through only "
                "from the project's VPC: set vpc_network (Direct VPC egress, with Private Google Access on "
                "its subnet) on this target, or expose that port public",
            ))
    return found


def holds_mqtt_session(spec: TargetSpec, service: Service) -> bool:
    """True when a service connects to an MQTT broker (it refers to a broker's MQTT port)."""
    for _, ref in _service_refs(service):
        port = _referenced_port(spec, ref)
        if port is not None and port.protocol in MQTT_PROTOCOLS and ref.attribute == "url":
            return True
    return False


def instance_billing(spec: TargetSpec, name: str, settings: GcpSettings) -> bool:
    """Whether a service keeps its CPU between requests (cpuIdle false): `instance_billing` for it,
    else on for brokers, services holding MQTT sessions and port-less services of 1 CPU or more."""
    if name in settings.instance_billing:
        return settings.instance_billing[name]
    service = spec.services[name]
    worker = not service.ports and service.resources.cpu >= 1
    return worker or is_broker(service) or holds_mqtt_session(spec, service)


def called_by_others(spec: TargetSpec, name: str) -> bool:
    """True when another service of the app refers to this one's address (it serves several callers)."""
    return any(ref.service == name for other, service in spec.services.items() if other != name
               for _, ref in _service_refs(service))


def cpu_floor_reason(spec: TargetSpec, name: str, settings: GcpSettings) -> str | None:
    """Why a service below 1 CPU needs 1 on Cloud Run, or None: below 1 CPU Cloud Run allows only
    request-based billing (no CPU between requests) and one request per instance."""
    service = spec.services[name]
    if service.resources.cpu >= 1:
        return None
    if settings.instance_billing.get(name):
        return "instance_billing keeps its CPU between requests"
    if is_broker(service):
        return "it serves MQTT over WebSockets: many long requests at once, and work between them"
    if instance_billing(spec, name, settings):
        return "it works between requests (it holds an MQTT session)"
    if settings.concurrency > 1 and called_by_others(spec, name):
        return f"other services call it at the same time (concurrency {settings.concurrency})"
    return None


def with_cpu_floor(spec: TargetSpec, settings: GcpSettings) -> tuple[TargetSpec, dict[str, str]]:
    """The target spec with cpu raised to 1 where cpu_floor_reason says so, and a plan note per
    raised service saying why. Pure."""
    services, notes = dict(spec.services), {}
    for name, service in spec.services.items():
        why = cpu_floor_reason(spec, name, settings)
        if why is not None:
            services[name] = service.model_copy(update={"resources": service.resources.model_copy(update={"cpu": 1})})
            notes[name] = (
                f"cpu {service.resources.cpu:g} -> 1: below 1 CPU Cloud Run bills by request (no CPU between "
                f"requests) and serves one request per instance, and {why}"
            )
    return (replace(spec, services=services), notes) if notes else (spec, notes)


def as_priced(spec: TargetSpec) -> TargetSpec:
    """The target spec with the cpu Cloud Run is given (with_cpu_floor), for `multicloud estimate`;
    as written when its settings do not validate (the plan says what is wrong with them)."""
    from multicloud.errors import SettingsError
    from multicloud_gcp.settings import parse_settings

    try:
        settings = parse_settings(spec.settings)
    except SettingsError:
        return spec
    return with_cpu_floor(spec, settings)[0]


def broker_problems(where: tuple[str, ...], service: Service, settings: GcpSettings) -> list[Finding]:
    """A broker on several instances is several brokers that do not share sessions: refuse it."""
    if not is_broker(service):
        return []
    found: list[Finding] = []
    if settings.max_instances is not None and settings.max_instances > 1:
        found.append((
            (*where, "ports"),
            f"max_instances {settings.max_instances} would scale this mqtt-ws broker to independent brokers "
            "that do not share subscriptions; keep max_instances at 1 on this target or move the broker",
        ))
    if service.replicas > 1:
        found.append((
            (*where, "replicas"),
            f"{service.replicas} replicas of an mqtt-ws broker are {service.replicas} independent brokers "
            "behind one URL; use replicas: 1",
        ))
    return found


def scaling(service: Service, settings: GcpSettings) -> tuple[int, int]:
    """(min, max) instances: a broker is fixed at min (>= 1); below 1 CPU (one request per instance)
    the ceiling defaults to Cloud Run's own 100; otherwise max(replicas, max_instances)."""
    if is_broker(service):
        minimum = max(service.replicas, 1)
        return minimum, minimum
    minimum = service.replicas
    default = limits.DEFAULT_MAX_INSTANCES if service.resources.cpu < 1 else minimum
    return minimum, max(minimum, settings.max_instances or default, 1)
