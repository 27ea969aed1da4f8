"""Checks a target spec against what a provider can run, before anything is touched."""

from __future__ import annotations

from collections.abc import Mapping

from multicloud.addressing import WEBSOCKET_PROTOCOLS
from multicloud.contract import Capabilities
from multicloud.errors import Finding
from multicloud.spec.targets import TargetSpec
from multicloud.spec.units import format_memory

RAW_TCP = ("tcp", "mqtt", "mqtts")
HTTP = ("http", "https", "grpc")
FALLBACK = " (or give it `fallback: PORT`, another port of the service to use here)"


def violations(spec: TargetSpec, caps: Capabilities) -> list[Finding]:
    """Return each thing the target cannot do as (field path, what to do instead); empty when it fits."""
    found: list[Finding] = []
    where = f"target {spec.target!r}"
    for name, service in spec.services.items():
        public = [p for p in service.ports if p.expose == "public"]
        for port in public:
            label = ("services", name, "ports", service.ports.index(port))
            what = f"{port.name} ({port.port}/{port.protocol})"
            if port.protocol in RAW_TCP and not caps.raw_tcp_ingress:
                instead = (
                    "serve MQTT over WebSockets (protocol: mqtt-ws) for devices"
                    if port.protocol.startswith("mqtt")
                    else "use an HTTP, gRPC or WebSocket port"
                )
                advice = f"{instead}, or make it internal{FALLBACK}"
                found.append((label, f"{what}: {where} has no raw TCP ingress; {advice}"))
            if port.protocol in HTTP and not caps.http_ingress:
                found.append((label, f"{what}: {where} has no public HTTP ingress; make the port internal"))
            if port.protocol == "udp" and not caps.udp_ingress:
                found.append((label, f"{what}: {where} cannot receive UDP; exclude this service on it"))
            if port.protocol in WEBSOCKET_PROTOCOLS and not caps.websockets:
                found.append((label, f"{what}: {where} does not carry WebSockets; use protocol mqtt or mqtts (TCP)"))
        limit = caps.max_public_ports_per_service
        if limit is not None and len(public) > limit:
            found.append((
                ("services", name, "ports"),
                f"{where} exposes at most {limit} public port(s) per service; "
                "make the others internal or split the service"
            ))
        if not caps.internal_tcp:
            for index, port in enumerate(service.ports):
                if port.expose == "internal" and port.protocol in (*RAW_TCP, "udp"):
                    found.append((
                        ("services", name, "ports", index),
                        f"{port.name}: {where} has no internal {port.protocol} "
                        "networking between services; use HTTP or gRPC, or exclude the service"
                    ))
        if service.volumes and not caps.volumes:
            found.append((
                ("services", name, "volumes"),
                f"{where} has no persistent volumes; exclude the service "
                "on this target and use a managed store (targets.NAME.exclude plus a secret URL)"
            ))
        if service.build is not None and not caps.build:
            found.append((("services", name, "build"), f"{where} cannot build images; give image: instead"))
        cpu, memory = service.resources.cpu, service.resources.memory
        if caps.max_cpu is not None and cpu > caps.max_cpu:
            found.append((("services", name, "resources", "cpu"), f"{cpu} exceeds {where}'s maximum of {caps.max_cpu}"))
        if caps.max_memory is not None and memory > caps.max_memory:
            found.append((
                ("services", name, "resources", "memory"),
                f"{format_memory(memory)} exceeds "
                f"{where}'s maximum of {format_memory(caps.max_memory)}"
            ))
        if caps.max_replicas is not None and service.replicas > caps.max_replicas:
            found.append(
                (("services", name, "replicas"), f"{service.replicas} exceeds {where}'s maximum of {caps.max_replicas}")
            )
    for name, resource in spec.resources.items():
        if resource.type not in caps.resources:
            offered = ", ".join(caps.resources) or "none"
            found.append((
                ("resources", name, "type"),
                f"{where} cannot provide a {resource.type} database (resource types it provides: {offered}); "
                "run it elsewhere and give the services its URL as a secret"
            ))
    return found


def secret_violations(spec: TargetSpec, values: Mapping[str, str], caps: Capabilities) -> list[Finding]:
    """Secret values the target cannot store (empty, too large), each at its `secrets.NAME`;
    values are never shown, only their size."""
    found: list[Finding] = []
    where = f"target {spec.target!r}"
    for name, value in values.items():
        size = len(value.encode())
        if size == 0 and not caps.empty_secrets:
            found.append((("secrets", name), f"the secret is empty and {where} cannot store an empty secret; give it "
                                             "a value (check the variable or file it comes from)"))
        if caps.max_secret_bytes is not None and size > caps.max_secret_bytes:
            found.append((("secrets", name), f"the secret is {size:,} bytes and {where} stores at most "
                                             f"{caps.max_secret_bytes:,}"))
    return found
