"""Provider `gcp-cloudrun`: one Cloud Run (v2) service per spec service, found by its labels."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from multicloud.contract import Capabilities, Endpoint, Event, EventSink, Health, HealthState, LogLine, ServiceStatus
from multicloud.errors import SettingsError, UserError
from multicloud.logwindow import last
from multicloud.planner import Action, Change
from multicloud.resources import Resource, Sensitive
from multicloud.retry import RetryPolicy, call_with_retries
from multicloud.spec.backing import Address
from multicloud.spec.targets import TargetSpec
from multicloud.terminal import Terminal
from multicloud_gcp import cloudsql, reports
from multicloud_gcp.addressing import CloudRunAddressing, service_id
from multicloud_gcp.api import Body, ClientFactory, CloudRunApi, SecretFactory, SecretManagerApi
from multicloud_gcp.artifacts import sendable
from multicloud_gcp.desired import desired_services
from multicloud_gcp.mapping import APP_LABEL, owner, resource_of
from multicloud_gcp.secrets import DIGEST_ANNOTATION, annotations_of, labels_of, secret_of
from multicloud_gcp.settings import GcpSettings, parse_settings

if TYPE_CHECKING:
    from multicloud_gcp.logclient import Entry
    from multicloud_gcp.sqladmin import SqlAdmin

FOLLOW_POLL = 2.0
"""Seconds between two reads of Cloud Logging while following."""
CAPABILITIES = Capabilities(
    raw_tcp_ingress=False,
    udp_ingress=False,
    http_ingress=True,
    websockets=True,
    internal_tcp=False,
    volumes=False,
    build=True,
    resources=("postgres",),
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
        "build: pushes to the Artifact Registry repository `artifact_registry` names (deployed by digest)",
        "secrets are Secret Manager references, except generated ones (generate: true) and a database's URL, "
        "which multicloud writes to Secret Manager as APP-NAME",
        "Cloud Run terminates TLS itself (https://, wss://): containers serve plain http or mqtt-ws",
        "postgres resources are Cloud SQL for PostgreSQL instances, reached through Cloud Run's Cloud SQL "
        "connector at /cloudsql/PROJECT:REGION:INSTANCE",
    ),
)


class CloudRunProvider:
    """Deploys a target spec to Cloud Run; tests hand in a client factory aimed at the emulator."""

    name = "gcp-cloudrun"
    capabilities = CAPABILITIES

    def __init__(
        self, settings: Mapping[str, Any] | GcpSettings, *, client_factory: ClientFactory | None = None,
        secret_factory: SecretFactory | None = None,
    ) -> None:
        self.settings: GcpSettings = parse_settings(settings)
        self._factory = client_factory
        self._client: CloudRunApi | None = None
        self._secret_factory = secret_factory
        self._secrets: SecretManagerApi | None = None
        self._sql: SqlAdmin | None = None

    @property
    def client(self) -> CloudRunApi:
        """The Cloud Run client, built on first use (so plans of bad specs import no SDK)."""
        if self._client is None:
            if self._factory is None:
                from multicloud_gcp.client import default_client_factory

                self._factory = default_client_factory
            self._client = self._factory(self.settings)
        return self._client

    @property
    def secrets(self) -> SecretManagerApi:
        """The Secret Manager client, built on first use."""
        if self._secrets is None:
            if self._secret_factory is None:
                from multicloud_gcp.secretclient import default_secret_factory

                self._secret_factory = default_secret_factory
            self._secrets = self._secret_factory(self.settings)
        return self._secrets

    @property
    def sql(self) -> SqlAdmin:
        """The Cloud SQL Admin client, built on first use."""
        if self._sql is None:
            from multicloud_gcp.sqladmin import SqlAdmin

            self._sql = SqlAdmin(self.settings)
        return self._sql

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """A database is reached at its instance's Cloud SQL connector socket under /cloudsql."""
        return cloudsql.address(self.settings, spec, name)

    def _databases(self, app: str, name: str | None = None) -> list[Resource]:
        """The app's Cloud SQL instances (only resource `name`'s when given), each with what it has of its
        database and user (two list calls per instance); none where the Cloud SQL Admin API is off in the
        project (then the app has none), nor at an emulator reached over gRPC without sql_endpoint."""
        from multicloud_gcp.sqladmin import sql_endpoint

        if sql_endpoint(self.settings) is None:
            return []
        try:
            instances = self.sql.list_instances()
        except UserError as exc:
            if "has not been used" in exc.message or "SERVICE_DISABLED" in exc.message:
                return []
            raise
        found = []
        for instance in instances:
            labels = cloudsql.user_labels(instance)
            if labels.get(APP_LABEL) != app or name not in (None, labels.get(cloudsql.RESOURCE_LABEL)):
                continue
            found.append(cloudsql.observed(instance, cloudsql.setup_state(self.sql, instance)))
        return [r for r in found if r is not None]

    def _secret_name(self, secret_id: str) -> str:
        """The resource name of a secret in the target's project."""
        return f"projects/{self.settings.project}/secrets/{secret_id}"

    def stored_secrets(self, app: str, names: Sequence[str]) -> dict[str, str]:
        """The values of the app's generated secrets Secret Manager already holds (their latest
        versions, so they stay as first generated); reads only."""
        owned = {r.name: r for r in self._owned_secrets(app) if r.name in names}
        values = {name: self.secrets.latest_value(self._secret_name(str(r.properties["secret"])))
                  for name, r in owned.items()}
        return {name: value for name, value in values.items() if value is not None}

    def _owned_secrets(self, app: str) -> list[Resource]:
        """The secrets multicloud wrote for the app, as resources; none when Secret Manager may not be
        read (a spec that writes no secret needs no Secret Manager role; one that does fails creating)."""
        bodies = self.secrets.list_secrets(self.settings.project, {APP_LABEL: app}) or []
        found = [secret_of(b) for b in bodies]
        return [r for r in found if r is not None]

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
        bodies = self._owned(app)
        for body in bodies:
            wrong = reports.project_number_problem(body, self.settings.region, self.settings.project_number)
            if wrong:
                raise SettingsError("project_number", wrong)
        found = [resource_of(body, own_account=own) for body in bodies]
        found += self._owned_secrets(app)
        found += self._databases(app)
        return sorted((r for r in found if r is not None), key=lambda r: r.key)

    def read(self, app: str, key: str) -> list[Resource]:
        """The service as it is now ([] when absent or owned by another app); reads only."""
        kind, _, name = key.partition("/")
        if kind == "secret":
            return [r for r in self._owned_secrets(app) if r.name == name]
        if kind == cloudsql.KIND:
            return self._databases(app, name)
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
        if resource.kind == "secret":
            self._apply_secret(app, change, emit)
            return
        if resource.kind == cloudsql.KIND:
            target = resource.target or (change.before.target if change.before else "")
            cloudsql.apply(self.sql, app, target, change, lambda text: emit(Event("progress", change.key, text)))
            return
        name = self._name(app, resource.name)
        if change.action is Action.DELETE:
            emit(Event("progress", change.key, f"deleting Cloud Run service {name}"))
            self.client.delete_service(name)
            return
        body = sendable(self.client, self.settings, app, resource.name, resource.payload,
                        say=lambda text: emit(Event("progress", change.key, text)))
        if change.action is Action.CREATE:
            emit(Event("progress", change.key, f"creating Cloud Run service {name}"))
            self.client.create_service(self.settings.parent, service_id(app, resource.name), body)
        else:
            emit(Event("progress", change.key, f"updating Cloud Run service {name} (new revision)"))
            self.client.update_service(self._keeping_account(name, body))

    def _apply_secret(self, app: str, change: Change, emit: EventSink) -> None:
        """Create a written secret with its first version, add a version when its value changed, or
        delete it with its versions. A failure may leave a secret without a version, which the next
        apply fills (its digest annotation is set only with a version)."""
        resource = change.resource
        name = self._secret_name(str(resource.properties["secret"]))
        if change.action is Action.DELETE:
            emit(Event("progress", change.key, f"deleting secret {name}"))
            self.secrets.delete_secret(name)
            return
        value = resource.properties["value"]
        assert isinstance(value, Sensitive)
        annotations = annotations_of(resource)
        before = change.before.properties.get("value") if change.before is not None else None
        if change.action is Action.CREATE:
            emit(Event("progress", change.key, f"storing secret {name} in Secret Manager"))
            labels = labels_of(app, resource.target)
            pending = {k: v for k, v in annotations.items() if k != DIGEST_ANNOTATION}
            if not self.secrets.create_secret(self.settings.project, name.rsplit("/", 1)[-1], labels, pending):
                existing = self.secrets.get_secret(name) or {}
                if (existing.get("labels") or {}).get(APP_LABEL) != app:
                    raise UserError(
                        f"secret {name} already exists in Secret Manager and is not app {app!r}'s",
                        hint=f"delete it, or give it another ID with secret_names: {{{resource.name}: ID}}",
                    )
        if change.action is Action.CREATE or before != value:
            self.secrets.add_version(name, value.reveal())
        self.secrets.update_annotations(name, annotations)

    def _keeping_account(self, name: str, body: Body) -> Body:
        """The update body with the service account it runs as now when `service_account` is unset
        (an update replaces the whole template: left out, Cloud Run reverts to the default account)."""
        if self.settings.service_account is not None:
            return body
        current = self.client.get_service(name) or {}
        account = (current.get("template") or {}).get("service_account")
        return {**body, "template": {**body["template"], "service_account": account}} if account else body

    def health(self, app: str, resource: Resource) -> Health:
        """Ready once Cloud Run's terminal condition succeeded and it stopped reconciling; a secret once stored."""
        if resource.kind == "secret":
            return Health(HealthState.HEALTHY, "stored in Secret Manager")
        if resource.kind == cloudsql.KIND:
            return cloudsql.health(self.sql.get_instance(str(resource.properties["instance"])))
        body = self.client.get_service(self._name(app, resource.name))
        wrong = reports.project_number_problem(body or {}, self.settings.region, self.settings.project_number)
        return Health(HealthState.UNHEALTHY, wrong) if wrong else reports.health_of(body)

    def status(self, app: str) -> list[ServiceStatus]:
        """Per service: conditions, latest ready revision and traffic split; reads only."""
        return sorted((reports.status_of(b) for b in self._owned(app)), key=lambda s: s.service)

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Lines from Cloud Logging (resource.type="cloud_run_revision", one service's name or each of
        the app's): of the history, those stamped at or after `since`, then the last `tail`; `follow`
        then asks every 2 s for lines stamped since the last one seen, until interrupted."""
        from multicloud_gcp.logclient import default_logging_factory

        names = [service] if service else [found[1] for b in self._owned(app) if (found := owner(b))]
        client = default_logging_factory(self.settings)
        filters = {
            name: f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service_id(app, name)}"'
            for name in names
        }
        floor = f' AND timestamp>="{since.astimezone(UTC).isoformat()}"' if since is not None else ""
        history = [] if tail == 0 else [
            (entry, name) for name, text in filters.items()
            for entry in client.list_entries(self.settings.project, text + floor, newest_first=tail is not None,
                                             limit=tail)
        ]
        shown = last(sorted(history, key=lambda pair: pair[0].timestamp), tail)
        yield from (_line(name, entry) for entry, name in shown)
        mark = max((e.timestamp for e, _ in history), default=since or datetime.now(UTC))
        seen = {e.insert_id for e, _ in history if e.timestamp == mark}
        while follow:
            time.sleep(FOLLOW_POLL)
            after = f' AND timestamp>="{mark.astimezone(UTC).isoformat()}"'
            fresh = sorted(
                ((entry, name) for name, text in filters.items()
                 for entry in client.list_entries(self.settings.project, text + after, newest_first=False, limit=None)
                 if entry.insert_id not in seen),
                key=lambda pair: pair[0].timestamp,
            )
            for entry, name in fresh:
                if entry.timestamp > mark:
                    mark, seen = entry.timestamp, set()
                seen.add(entry.insert_id)
                yield _line(name, entry)

    def public_names(self, spec: TargetSpec) -> list[str]:
        """The run.app host of each service with a public port (known from the project number before it
        exists; none without it). Reads nothing."""
        if self.settings.project_number is None:
            return []
        address = CloudRunAddressing(spec.app, spec.services, self.settings.region, self.settings.project_number)
        return [address.host(name) for name, service in spec.services.items()
                if any(p.expose == "public" for p in service.ports)]

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
        """Send all traffic to the newest revision before the one serving now that became ready
        (UserError when none), sending the etag it read, so that a change made meanwhile is not
        overwritten: Cloud Run refuses (ABORTED) and the rollback reads again, up to 3 times."""
        return call_with_retries(lambda: self._rollback_once(app, service),
                                 RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0))[0]

    def _rollback_once(self, app: str, service: str) -> str:
        """One read-decide-update round of `rollback`."""
        name = self._name(app, service)
        body = self.client.get_service(name)
        if body is None or owner(body) != (app, service):
            raise UserError(f"service {service!r} of app {app!r} does not exist on Cloud Run ({name})")
        revisions = self.client.list_revisions(name)
        names = [r["name"] for r in revisions]
        serving = reports.serving_revision(body)
        ready = reports.ready_revisions(revisions)
        earlier = [r for r in ready if serving in names and names.index(r) > names.index(serving)]
        if not earlier:
            current = serving.rsplit("/", 1)[-1] or "the current one"
            raise UserError(f"service {service!r} has no revision before {current} that became ready")
        short = earlier[0].rsplit("/", 1)[-1]
        body["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": short, "percent": 100}]
        self.client.update_service({**reports.writable(body), "etag": body.get("etag", "")})
        return f"{service}: traffic moved from {serving.rsplit('/', 1)[-1]} to {short} (100%)"


def _line(service: str, entry: Entry) -> LogLine:
    """A LogLine of a Cloud Logging entry: the instance as REVISION/INSTANCE (first 8 of its ID)."""
    return LogLine(service, f"{entry.revision}/{entry.instance[:8]}", entry.text, entry.timestamp)
