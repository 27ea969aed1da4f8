"""What stands in where a target cannot serve part of a spec. Port fallbacks: where a target cannot
serve a port (Cloud Run has no raw TCP), the port's `fallback` (another port of the same service)
stands in for it: the port is left out and every `${services.S.port|url.P}` to it, and a health
check on it, refer to the fallback instead. TLS ports where the platform terminates TLS itself
(Cloud Run): the container serves them plain at the same port number (https as http, mqtt-wss as
mqtt-ws) and clients still reach them over TLS. `${ports.P}` and `${ports.P.tls}` then say what the
container serves for its port P there (the number, or 0 when it serves none; true/false), so one
env works on every target; a service that then serves no port over TLS itself is handed no generated
certificate or key (its `${secrets.NAME_cert|key[.file]}` resolve to nothing). Volumes that are not
`required`: where a target has no persistent volumes, they are not mounted (the service's own disk
holds that data). Each change is noted on the service (TargetSpec.notes), and plans show the notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial

from multicloud.addressing import PLAIN_BEHIND_FRONT, TLS_PROTOCOLS
from multicloud.capabilities import RAW_TCP
from multicloud.contract import Capabilities
from multicloud.spec.certificate import SERVER_PARTS
from multicloud.spec.models import HealthCheck, Port, Service, TlsPart
from multicloud.spec.placeholders import (
    PortRef,
    ServiceRef,
    bind_ports,
    drop_secrets,
    redirect_ports,
    rewrite_service,
    service_secrets,
)
from multicloud.spec.targets import TargetSpec


def as_served(spec: TargetSpec, caps: Capabilities) -> TargetSpec:
    """The target spec as the target serves it: port fallbacks, TLS ports served plain behind a
    platform that terminates TLS (and no certificate for a service left without TLS), optional volumes
    left out, then `${ports...}` bound. Pure."""
    served = served_plain(without_optional_volumes(with_fallbacks(spec, caps), caps), caps)
    return with_served_ports(without_idle_certificates(spec, served))


def servable(port: Port, caps: Capabilities) -> bool:
    """Whether the target can carry this port at all (raw TCP and UDP need the matching capability)."""
    if port.protocol == "udp":
        return caps.udp_ingress if port.expose == "public" else caps.internal_tcp
    if port.protocol in RAW_TCP:
        return caps.raw_tcp_ingress if port.expose == "public" else caps.internal_tcp
    return True


def with_fallbacks(spec: TargetSpec, caps: Capabilities) -> TargetSpec:
    """The target spec with each port the target cannot serve replaced by its fallback (followed
    while the fallback cannot be served either); a port without a usable fallback stays, and the
    capability check says what to do. Pure."""
    moved: dict[tuple[str, str], str] = {}
    for name, service in spec.services.items():
        ports = {p.name: p for p in service.ports}
        for port in service.ports:
            chosen, seen = port, {port.name}
            while not servable(chosen, caps) and chosen.fallback in ports and chosen.fallback not in seen:
                chosen = ports[chosen.fallback]
                seen.add(chosen.name)
            if chosen is not port and servable(chosen, caps):
                moved[(name, port.name)] = chosen.name
    if not moved:
        return spec
    services = {name: _redirected(name, service, spec.services, moved) for name, service in spec.services.items()}
    notes = dict(spec.notes)
    for (name, left), instead in moved.items():
        what = next(p for p in spec.services[name].ports if p.name == left)
        notes[name] = (*notes.get(name, ()), f"port {left} ({what.port}/{what.protocol}) is not served on target "
                       f"{spec.target!r}, which cannot carry it: its fallback {instead} stands in for it")
    return replace(spec, services=services, notes=notes)


def served_plain(spec: TargetSpec, caps: Capabilities) -> TargetSpec:
    """Where the platform terminates TLS itself (caps.terminates_tls), each TLS port the container would
    serve (https, mqtt-wss) becomes its plain protocol at the same number; unchanged elsewhere. Pure."""
    if not caps.terminates_tls:
        return spec
    services, notes = dict(spec.services), dict(spec.notes)
    for name, service in spec.services.items():
        plain = [p for p in service.ports if p.protocol in PLAIN_BEHIND_FRONT]
        if not plain:
            continue
        ports = [p.model_copy(update={"protocol": PLAIN_BEHIND_FRONT[p.protocol]}) if p in plain else p
                 for p in service.ports]
        services[name] = service.model_copy(update={"ports": ports})
        notes[name] = (*notes.get(name, ()), *(
            f"port {p.name} ({p.port}/{p.protocol}) is served plain ({PLAIN_BEHIND_FRONT[p.protocol]}) by the "
            f"container: target {spec.target!r} terminates TLS itself, clients still reach it over TLS"
            for p in plain))
    return replace(spec, services=services, notes=notes)


def without_idle_certificates(written: TargetSpec, served: TargetSpec) -> TargetSpec:
    """`served` without the generated certificates and keys (NAME_cert, NAME_key) of each service that has TLS
    ports as `written` but serves none over TLS as `served` (each plain behind the platform's TLS, or left for
    its fallback): its references to them resolve to nothing and no file of them is handed to it. Pure."""
    pairs = [name for name, secret in served.secrets.items()
             if isinstance(secret, TlsPart) and secret.part in SERVER_PARTS]
    services, notes = dict(served.services), dict(served.notes)
    for name, service in served.services.items():
        if not _serves_tls(written.services[name]) or _serves_tls(service):
            continue
        dropped = [n for n in pairs if n in service_secrets(service)]
        if not dropped:
            continue
        rewritten = rewrite_service(service, partial(drop_secrets, names=dropped))
        services[name] = rewritten.model_copy(update={"secrets": [n for n in service.secrets if n not in dropped]})
        notes[name] = (*notes.get(name, ()), f"{' and '.join(dropped)} not handed to it: it serves no TLS itself on "
                       f"target {served.target!r} (its references to them are empty)")
    return replace(served, services=services, notes=notes)


def _serves_tls(service: Service) -> bool:
    """Whether a service has a port it serves over TLS itself."""
    return any(p.protocol in TLS_PROTOCOLS for p in service.ports)


def with_served_ports(spec: TargetSpec) -> TargetSpec:
    """The target spec with each service's `${ports.P}` bound to the container port it serves for P on
    this target (0 when the target left P out) and `${ports.P.tls}` to true or false. Pure."""

    def bound(service: Service) -> Service:
        served = {p.name: p for p in service.ports}

        def value(ref: PortRef) -> str:
            port = served.get(ref.name)
            if ref.tls:
                return "true" if port is not None and port.protocol in TLS_PROTOCOLS else "false"
            return str(port.port if port is not None else 0)

        return rewrite_service(service, lambda text: bind_ports(text, value))

    return replace(spec, services={name: bound(service) for name, service in spec.services.items()})


def _redirected(
    name: str, service: Service, services: Mapping[str, Service], moved: Mapping[tuple[str, str], str]
) -> Service:
    """One service with its replaced ports left out and its references and health check redirected."""

    def target(ref: ServiceRef) -> str | None:
        other = services.get(ref.service)
        first = other.ports[0].name if other and other.ports else None
        return moved.get((ref.service, ref.port or first or ""))

    service = rewrite_service(service, lambda text: redirect_ports(text, target))
    update: dict[str, object] = {"ports": [p for p in service.ports if (name, p.name) not in moved]}
    if service.healthcheck is not None:
        update["healthcheck"] = _health(service, service.healthcheck, {p.name: p for p in service.ports}, name, moved)
    return service.model_copy(update=update)


def _health(
    service: Service, check: HealthCheck, ports: Mapping[str, Port], name: str, moved: Mapping[tuple[str, str], str]
) -> HealthCheck:
    """A health check on a replaced port probes its fallback's port number instead."""
    numbers = {p.port: ports[moved[(name, p.name)]].port for p in service.ports if (name, p.name) in moved}
    update = {f: numbers[getattr(check, f)] for f in ("tcp", "port") if getattr(check, f) in numbers}
    return check.model_copy(update=update) if update else check


def without_optional_volumes(spec: TargetSpec, caps: Capabilities) -> TargetSpec:
    """The target spec with mounts of volumes that are not `required` left out where the target has no
    persistent volumes (the capability check then passes them); unchanged elsewhere. Pure."""
    optional = {name for name, volume in spec.volumes.items() if not volume.required}
    if caps.volumes or not optional:
        return spec
    services = {
        name: service.model_copy(update={"volumes": [m for m in service.volumes if m.source not in optional]})
        if any(m.source in optional for m in service.volumes) else service
        for name, service in spec.services.items()
    }
    return replace(spec, services=services)
