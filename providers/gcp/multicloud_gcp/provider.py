"""Provider `gcp-cloudrun`: one Cloud Run (v2) service per spec service, found by its labels."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from multicloud.contract import Capabilities, Endpoint, Event, EventSink, Health, LogLine, ServiceStatus
from multicloud.errors import UserError
from multicloud.planner import Action, Change
from multicloud.resources import Resource
from multicloud.spec.targets import TargetSpec
from multicloud.terminal import Terminal
from multicloud_gcp import reports
from multicloud_gcp.addressing import service_id
from multicloud_gcp.api import Body, ClientFactory, CloudRunApi
from multicloud_gcp.desired import desired_services
from multicloud_gcp.mapping import owner, resource_of
from multicloud_gcp.settings import GcpSettings, parse_settings

CAPABILITIES = Capabilities(
    raw_tcp_ingress=False,
    udp_ingress=False,
    http_ingress=True,
    websockets=True,
    internal_tcp=False,
    volumes=False,
    build=False,
    max_cpu=8.0,
    max_memory=32 * 1024**3,
    max_replicas=1000,
    max_public_ports_per_service=1,
    request_timeout=3600.0,
    terminates_tls=True,
    notes=(
        "Cloud Run serves one HTTP/1, HTTP/2, gRPC or WebSocket port per service; no raw TCP or UDP",
        "MQTT is served over WebSockets (mqtt-ws): min instances >= 1, session affinity, and a request "
        "timeout of at most 60 min, after which devices must reconnect",
        "images are taken as given (build and push to Artifact Registry first)",
        "secrets are Secret Manager references; multicloud never writes their values",
        "Cloud Run terminates TLS itself (https://, wss://): containers serve plain http or mqtt-ws",
    ),
)


class CloudRunProvider:
    """Deploys a target spec to Cloud Run; tests hand in a client factory aimed at the emulator."""

    name = "gcp-cloudrun"
    capabilities = CAPABILITIES

    def __init__(
        self, settings: Mapping[str, Any] | GcpSettings, *, client_factory: ClientFactory | None = None
    ) -> None:
        self.settings: GcpSettings = parse_settings(settings)
        self._factory = client_factory
        self._client: CloudRunApi | None = None

    @property
    def client(self) -> CloudRunApi:
        """The Cloud Run client, built on first use (so plans of bad specs import no SDK)."""
        if self._client is None:
            if self._factory is None:
                from multicloud_gcp.client import default_client_factory

                self._factory = default_client_factory
            self._client = self._factory(self.settings)
        return self._client

    def _name(self, app: str, service: str) -> str:
        """The full Cloud Run name of an app's service."""
        return f"{self.settings.parent}/services/{service_id(app, service)}"

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """One `service/NAME` per spec service. Pure; raises CapabilityError for Cloud Run rule breaks."""
        return desired_services(spec, secrets, self.settings)

    def _owned(self, app: str) -> list[Body]:
        """The bodies of every service labelled with the app."""
        return [b for b in self.client.list_services(self.settings.parent) if (owner(b) or ("",))[0] == app]

    def observe(self, app: str) -> list[Resource]:
        """Every Cloud Run service labelled with the app; reads only."""
        own = self.settings.service_account is not None
        found = [resource_of(body, own_account=own) for body in self._owned(app)]
        return sorted((r for r in found if r is not None), key=lambda r: r.key)

    def read(self, app: str, key: str) -> list[Resource]:
        """The service as it is now ([] when absent or owned by another app); reads only."""
        kind, _, name = key.partition("/")
        if kind != "service":
            return []
        body = self.client.get_service(self._name(app, name))
        if body is None or owner(body) != (app, name):
            return []
        found = resource_of(body, own_account=self.settings.service_account is not None)
        return [found] if found is not None else []

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Create or update (a new revision; traffic back to the latest) one service, returning
        once Cloud Run accepted it (health then waits for the rollout), or delete one and wait.
        A failure leaves a labelled service the next apply converges."""
        resource = change.resource
        name = self._name(app, resource.name)
        if change.action is Action.DELETE:
            emit(Event("progress", change.key, f"deleting Cloud Run service {name}"))
            self.client.delete_service(name)
            return
        body: Body = dict(resource.payload)
        if change.action is Action.CREATE:
            emit(Event("progress", change.key, f"creating Cloud Run service {name}"))
            self.client.create_service(self.settings.parent, service_id(app, resource.name), body)
        else:
            emit(Event("progress", change.key, f"updating Cloud Run service {name} (new revision)"))
            self.client.update_service(self._keeping_account(name, body))

    def _keeping_account(self, name: str, body: Body) -> Body:
        """The update body with the service account it runs as now when `service_account` is unset
        (an update replaces the whole template: left out, Cloud Run reverts to the default account)."""
        if self.settings.service_account is not None:
            return body
        current = self.client.get_service(name) or {}
        account = (current.get("template") or {}).get("service_account")
        return {**body, "template": {**body["template"], "service_account": account}} if account else body

    def health(self, app: str, resource: Resource) -> Health:
        """Ready once Cloud Run's terminal condition succeeded and it stopped reconciling."""
        body = self.client.get_service(self._name(app, resource.name))
        return reports.health_of(body)

    def status(self, app: str) -> list[ServiceStatus]:
        """Per service: conditions, latest ready revision and traffic split; reads only."""
        return sorted((reports.status_of(b) for b in self._owned(app)), key=lambda s: s.service)

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Not read through this provider: Cloud Run logs live in Cloud Logging (see the hint)."""
        selector = f" AND resource.labels.service_name={service_id(app, service)}" if service else ""
        raise UserError(
            "the gcp-cloudrun provider does not read logs: Cloud Run writes them to Cloud Logging, which "
            "needs another SDK and is not emulated",
            hint=f"gcloud logging read 'resource.type=cloud_run_revision{selector}' --project "
            f"{self.settings.project} --limit {tail or 100}",
        )

    def endpoints(self, app: str) -> list[Endpoint]:
        """Each service's run.app URL (the broker's as wss://HOST/mqtt); reads only."""
        found = [e for b in self._owned(app) for e in reports.endpoints_of(b)]
        return sorted(found, key=lambda e: (e.service, e.port))

    def exec(self, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
        """Refuse: Cloud Run has no API to run a command in a running instance."""
        raise UserError(
            f"Cloud Run cannot run a command in service {service!r}: it offers no way into a running instance",
            hint="read `multicloud logs`, or run the same spec on the docker target and exec there",
        )

    def rollback(self, app: str, service: str) -> str:
        """Send all traffic to the revision before the one serving now; UserError when none."""
        name = self._name(app, service)
        body = self.client.get_service(name)
        if body is None or owner(body) != (app, service):
            raise UserError(f"service {service!r} of app {app!r} does not exist on Cloud Run ({name})")
        revisions = [r["name"] for r in self.client.list_revisions(name)]
        serving = reports.serving_revision(body)
        if serving not in revisions or revisions.index(serving) + 1 >= len(revisions):
            current = serving.rsplit("/", 1)[-1] or "the current one"
            raise UserError(f"service {service!r} has no revision before {current} to roll back to")
        previous = revisions[revisions.index(serving) + 1]
        short = previous.rsplit("/", 1)[-1]
        body["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": short, "percent": 100}]
        self.client.update_service(reports.writable(body))
        return f"{service}: traffic moved from {serving.rsplit('/', 1)[-1]} to {short} (100%)"
