"""How services find each other on a target, and placeholder resolution built on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from multicloud.resources import Sensitive
from multicloud.spec.placeholders import ServiceRef, default_secret_file, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from multicloud.spec.models import Port, Service

URL_SCHEMES = {
    "http": "http",
    "https": "https",
    "grpc": "grpc",
    "tcp": "tcp",
    "udp": "udp",
    "mqtt": "mqtt",
    "mqtts": "mqtts",
    "mqtt-ws": "ws",
    "mqtt-wss": "wss",
}
TLS_PROTOCOLS = frozenset({"https", "mqtts", "mqtt-wss"})
"""Ports whose container speaks TLS itself (the scheme clients use says so)."""
WEBSOCKET_PROTOCOLS = frozenset({"mqtt-ws", "mqtt-wss"})


TLS_FRONT = {"http": "https", "grpc": "https", "mqtt-ws": "mqtt-wss"}
"""What clients speak to a plain port behind a platform that terminates TLS itself (Cloud Run)."""
PLAIN_BEHIND_FRONT = {"https": "http", "mqtt-wss": "mqtt-ws"}
"""What the container serves for a TLS port behind a platform that terminates TLS itself."""


def endpoint_url(protocol: str, host: str, port: int | str | None = None, *, tls_front: bool = False) -> str:
    """The URL a port is reached at: scheme from its protocol (mqtt-wss is wss://…/mqtt); no port
    means the scheme's default; `tls_front`: as clients reach it through the platform's TLS."""
    if tls_front:
        protocol = TLS_FRONT.get(protocol, protocol)
    path = "/mqtt" if protocol in WEBSOCKET_PROTOCOLS else ""
    where = host if port is None else f"{host}:{port}"
    return f"{URL_SCHEMES.get(protocol, 'tcp')}://{where}{path}"


def http_probe(service: Service) -> tuple[str, int]:
    """(scheme, port) an http health check probes: its port, else the first port, else 80;
    https when that port is a TLS port."""
    check = service.healthcheck
    first = service.port()
    port = (check.port if check else None) or (first.port if first else 80)
    tls = any(p.port == port and p.protocol in TLS_PROTOCOLS for p in service.ports)
    return ("https" if tls else "http"), port


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
        return endpoint_url(port.protocol, self.host(service), self.port(service, port))

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
    service: Service,
    address: Callable[[ServiceRef], str],
    secrets: Mapping[str, str],
    secret_file: Callable[[str], str] = default_secret_file,
    *,
    app: str,
) -> ResolvedService:
    """Substitute placeholders in env, command and entrypoint; secret values come back
    Sensitive (digests keyed by the app), `${secrets.x.file}` becomes `secret_file(x)`."""

    def secret(name: str) -> str:
        return secrets[name]

    def one(text: str) -> str | Sensitive:
        return resolve(text, address, secret, secret_file, app=app)

    return ResolvedService(
        env={k: one(v) for k, v in service.env.items()},
        command=[one(a) for a in service.command] if service.command else None,
        entrypoint=[one(a) for a in service.entrypoint] if service.entrypoint else None,
    )
