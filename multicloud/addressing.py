"""How services find each other on a target, and placeholder resolution built on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from multicloud.resources import Sensitive
from multicloud.spec.models import Port, Service
from multicloud.spec.placeholders import ServiceRef, resolve

URL_SCHEMES = {"http": "http", "grpc": "grpc", "tcp": "tcp", "udp": "udp", "mqtt": "mqtt", "mqtt-ws": "ws"}


@dataclass(frozen=True)
class DirectAddressing:
    """Services reach each other at `host(name)` on the container port (Docker, Cloud Map, ACI)."""

    services: Mapping[str, Service]
    host: Callable[[str], str]

    def port(self, service: str, port: Port) -> int:
        """The port number other services connect to."""
        return port.port

    def url(self, service: str, port: Port) -> str:
        """A URL for a port, its scheme taken from the protocol (mqtt-ws becomes ws://)."""
        path = "/mqtt" if port.protocol == "mqtt-ws" else ""
        return f"{URL_SCHEMES[port.protocol]}://{self.host(service)}:{self.port(service, port)}{path}"

    def __call__(self, ref: ServiceRef) -> str:
        if ref.attribute == "host":
            return self.host(ref.service)
        port = self.services[ref.service].port(ref.port)
        if port is None:
            raise KeyError(f"service {ref.service!r} has no port {ref.port!r}")
        if ref.attribute == "port":
            return str(self.port(ref.service, port))
        return self.url(ref.service, port)


@dataclass(frozen=True)
class ResolvedService:
    """A service's env and arguments with placeholders substituted for one target."""

    env: dict[str, str | Sensitive]
    command: list[str | Sensitive] | None
    entrypoint: list[str | Sensitive] | None


def resolve_service(
    service: Service, address: Callable[[ServiceRef], str], secrets: Mapping[str, str]
) -> ResolvedService:
    """Substitute placeholders in env, command and entrypoint; secrets come back Sensitive."""

    def secret(name: str) -> str:
        return secrets[name]

    def one(text: str) -> str | Sensitive:
        return resolve(text, address, secret)

    return ResolvedService(
        env={k: one(v) for k, v in service.env.items()},
        command=[one(a) for a in service.command] if service.command else None,
        entrypoint=[one(a) for a in service.entrypoint] if service.entrypoint else None,
    )
