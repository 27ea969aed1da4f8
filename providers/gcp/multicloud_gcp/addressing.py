"""Where services are reached on Cloud Run: `https://SERVICE-PROJECT_NUMBER.REGION.run.app`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from multicloud.addressing import TLS_FRONT, endpoint_url
from multicloud.errors import SettingsError, UserError
from multicloud.spec.models import Port, Service
from multicloud.spec.placeholders import ServiceRef
from multicloud_gcp.limits import DNS_LABEL


def service_id(app: str, service: str) -> str:
    """The Cloud Run service name of a spec service: APP-SERVICE (unique per project and region)."""
    return f"{app}-{service}"


@dataclass(frozen=True)
class CloudRunAddressing:
    """Resolves `${services.x.host|port|url}` to Cloud Run's deterministic URLs, so plans stay pure.

    The same interface as multicloud.addressing.DirectAddressing (host, port, url, __call__), so
    resolve_service works unchanged; every port is served on 443 over TLS, and an
    `mqtt-ws` port becomes `wss://HOST/mqtt` (Cloud Run carries no raw TCP, so MQTT goes over
    WebSockets)."""

    app: str
    services: Mapping[str, Service]
    region: str
    project_number: str | None

    def host(self, service: str) -> str:
        """The service's run.app host name; SettingsError when the project number is unknown."""
        if self.project_number is None:
            raise SettingsError(
                "project_number",
                "needed to know Cloud Run URLs before services exist (https://SERVICE-PROJECT_NUMBER.REGION"
                ".run.app); find it with `gcloud projects describe PROJECT --format='value(projectNumber)'`",
            )
        label = f"{service_id(self.app, service)}-{self.project_number}"
        if len(label) > DNS_LABEL:
            raise UserError(
                f"services.{service}: Cloud Run gives {service_id(self.app, service)} no deterministic URL "
                f"({label} is {len(label)} characters, more than {DNS_LABEL}), so its URL cannot be known "
                "before it exists; shorten the app or service name"
            )
        return f"{label}.{self.region}.run.app"

    def port(self, service: str, port: Port) -> int:
        """Every Cloud Run service is reached on 443."""
        return 443

    def url(self, service: str, port: Port) -> str:
        """https:// for HTTP and gRPC, wss://HOST/mqtt for MQTT over WebSockets."""
        if port.protocol not in TLS_FRONT:
            raise UserError(f"services.{service}: a {port.protocol} port has no URL on Cloud Run (HTTP only)")
        return endpoint_url(port.protocol, self.host(service), tls_front=True)

    def __call__(self, ref: ServiceRef) -> str:
        if ref.service not in self.services:
            raise UserError(f"${{services.{ref.service}...}}: {ref.service!r} does not run on this Cloud Run target")
        if ref.attribute != "host" and self.services[ref.service].port(ref.port) is None:
            which = f"port {ref.port!r}" if ref.port else "a port"
            raise UserError(
                f"${{services.{ref.service}.{ref.attribute}}}: {ref.service!r} has no {which} on this Cloud Run "
                "target (Cloud Run serves one HTTP/gRPC/WebSocket port; MQTT is reached as mqtt-ws)"
            )
        if ref.attribute == "host":
            return self.host(ref.service)
        port = self.services[ref.service].port(ref.port)
        assert port is not None
        return str(self.port(ref.service, port)) if ref.attribute == "port" else self.url(ref.service, port)
