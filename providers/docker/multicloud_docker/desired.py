"""The resources a target spec needs on Docker: pure, no engine calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multicloud.addressing import DirectAddressing, resolve_service
from multicloud.build import build_hash, context_path
from multicloud.errors import TargetError
from multicloud.resources import Resource, Sensitive
from multicloud.spec.models import Build, Port, Service
from multicloud.spec.placeholders import secret_files
from multicloud.spec.targets import TargetSpec
from multicloud.spec.units import format_memory
from multicloud_docker import healthcheck, postgres
from multicloud_docker.labels import SCALE_PROPERTY, image_repository, network_name, volume_name
from multicloud_docker.settings import DockerSettings

HostPorts = dict[tuple[str, str], int]


def desired(spec: TargetSpec, secrets: Mapping[str, str], settings: DockerSettings) -> list[Resource]:
    """Network, volumes, built images, each database (a container and its data volume) and one
    service resource per running service. Reads build contexts to hash them; raises
    UserError/TargetError for what cannot run."""
    app = spec.app
    network = _fixed("network", app, {"name": network_name(app), "driver": "bridge"})
    resources = [network]
    for volume in spec.volumes:
        resources.append(_fixed("volume", volume, {"name": volume_name(app, volume), "driver": "local"}, True))
    host_ports = publish_plan(spec, settings)
    address = DirectAddressing(spec.services, host=lambda name: name)
    context = Context(spec, address, secrets, host_ports, settings)
    resources += postgres.resources(
        spec, settings, network.key, lambda name, service, image: service_properties(context, name, service, image)
    )
    stopped = {name for name, service in spec.services.items() if service.replicas == 0}
    for name, service in spec.services.items():
        image_ref = service.image
        depends = [network.key, *(f"volume/{m.source}" for m in service.volumes)]
        if service.build is not None:
            image = build_image(spec, name, service.build)
            resources.append(image)
            image_ref = str(image.properties["tag"])
            depends.append(image.key)
        if name in stopped:
            continue
        depends += [f"service/{dep}" for dep in service.depends_on if dep not in stopped]
        depends += spec.resource_keys(name)
        assert image_ref is not None
        props = service_properties(context, name, service, image_ref)
        fixed_port = any(p["host_port"] for p in props["ports"])
        resources.append(
            Resource(
                "service",
                name,
                props,
                depends_on=tuple(dict.fromkeys(depends)),
                replace_on=frozenset(props) - {SCALE_PROPERTY},
                replace_mode="delete-before-create" if fixed_port else "create-before-delete",
                service=name,
            )
        )
    return resources


def build_image(spec: TargetSpec, service: str, build: Build) -> Resource:
    """The image/<service> resource: tagged by a hash of what the build reads."""
    context = context_path(spec.base_dir, build)
    digest = build_hash(spec.base_dir, service, build)
    props = {
        "tag": f"{image_repository(spec.app, service)}:{digest}",
        "context": build.context,
        "dockerfile": build.dockerfile,
        "args": dict(sorted(build.args.items())),
        "target": build.target,
    }
    resource = _fixed("image", service, props)
    payload = {"context": str(context), "dockerfile": build.dockerfile}
    return Resource(
        resource.kind,
        service,
        props,
        replace_on=resource.replace_on,
        replace_mode="create-before-delete",
        service=service,
        payload=payload,
    )


@dataclass(frozen=True)
class Context:
    """What rendering one service needs besides the service itself."""

    spec: TargetSpec
    address: DirectAddressing
    secrets: Mapping[str, str]
    host_ports: HostPorts
    settings: DockerSettings


def service_properties(context: Context, name: str, service: Service, image_ref: str) -> dict[str, Any]:
    """Everything that decides how a replica runs, JSON-shaped, secrets as Sensitive."""
    spec, secrets, settings = context.spec, context.secrets, context.settings
    host_ports = context.host_ports
    resolved = resolve_service(service, context.address, secrets, app=spec.app)
    files = secret_files(service)
    missing = [s for s in files if s not in secrets]
    if missing:
        raise TargetError(f"services.{name}.secrets: no value given for {', '.join(missing)}")
    return {
        "image": image_ref,
        "command": _arguments(resolved.command),
        "entrypoint": _arguments(resolved.entrypoint),
        "env": dict(sorted(resolved.env.items())),
        "ports": [_port(name, p, host_ports, settings) for p in service.ports],
        "healthcheck": healthcheck.render(service),
        "user": service.user,
        "read_only": service.read_only,
        "volumes": [
            {"volume": volume_name(spec.app, m.source), "target": m.target, "read_only": m.read_only}
            for m in service.volumes
        ],
        "secrets": {s: Sensitive.of(secrets[s], app=spec.app) for s in sorted(files)},
        "cpu": service.resources.cpu,
        "memory": format_memory(service.resources.memory),
        "network": network_name(spec.app),
        "security": {
            "cap_drop": ["ALL"],
            "cap_add": list(settings.capabilities),
            "no_new_privileges": True,
            "privileged": False,
            "init": settings.init,
        },
        SCALE_PROPERTY: service.replicas,
    }


def publish_plan(spec: TargetSpec, settings: DockerSettings) -> HostPorts:
    """Host port of each public port (0 = engine-chosen); raise TargetError for remaps that
    name nothing, clashing host ports, or a fixed host port on a service with replicas > 1."""
    problems: list[str] = []
    for key in settings.publish:
        service_name, _, port_name = key.partition(".")
        if service_name in spec.excluded:
            continue
        service = spec.services.get(service_name)
        port = service.port(port_name) if service else None
        if service is None:
            known = ", ".join(spec.services)
            problems.append(f"publish.{key}: there is no service {service_name!r} (services: {known})")
        elif port is None:
            known = ", ".join(p.name for p in service.ports) or "none"
            problems.append(f"publish.{key}: service {service_name!r} has no port {port_name!r} (ports: {known})")
        elif port.expose != "public":
            problems.append(f"publish.{key}: the port is internal; set expose: public to publish it")
    result: HostPorts = {}
    taken: dict[tuple[int, bool], str] = {}
    for name, service in spec.services.items():
        for port in service.ports:
            if port.expose != "public":
                continue
            key = f"{name}.{port.name}"
            host = settings.publish.get(key, port.port + settings.port_offset)
            if not 0 <= host <= 65535:
                problems.append(f"{key}: port {port.port} + port_offset {settings.port_offset} is not a port")
                continue
            result[(name, port.name)] = host
            if host and service.replicas > 1:
                problems.append(
                    f"{key}: {service.replicas} replicas cannot share host port {host}; publish it on a "
                    f"free port picked by the engine (publish: {{{key}: 0}}) or run one replica on this target"
                )
            clash = taken.setdefault((host, port.protocol == "udp"), key) if host else key
            if clash != key:
                problems.append(f"{key}: host port {host} is already published by {clash}")
    if problems:
        raise TargetError(f"target {spec.target!r} (docker): cannot publish ports:\n  " + "\n  ".join(problems))
    return result


def _port(service: str, port: Port, host_ports: HostPorts, settings: DockerSettings) -> dict[str, Any]:
    public = port.expose == "public"
    return {
        "name": port.name,
        "port": port.port,
        "protocol": port.protocol,
        "expose": port.expose,
        "host_port": host_ports[(service, port.name)] if public else None,
        "host_ip": settings.bind_address if public else None,
    }


def _arguments(values: list[str | Sensitive] | None) -> list[str | Sensitive] | None:
    return list(values) if values else None


def _fixed(kind: str, name: str, props: dict[str, Any], persistent: bool = False) -> Resource:
    """A resource every property of which needs a new object to change."""
    return Resource(kind, name, props, replace_on=frozenset(props), persistent=persistent)
