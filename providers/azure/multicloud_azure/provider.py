"""Provider `azure-aci`: an app's services as the containers of one ACI container group."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from multicloud.addressing import endpoint_url
from multicloud.contract import Capabilities, Endpoint, Event, EventSink, Health, HealthState, LogLine, ServiceStatus
from multicloud.errors import ProviderError, UserError
from multicloud.logwindow import last
from multicloud.planner import Action, Change
from multicloud.resources import Resource
from multicloud.spec.backing import Address
from multicloud.spec.targets import TargetSpec
from multicloud.terminal import Terminal
from multicloud_azure import desired, execute, postgres, tags, views
from multicloud_azure.acr import push_builds
from multicloud_azure.api import AciApi, ClientFactory, Json
from multicloud_azure.desired import GroupPlan
from multicloud_azure.settings import AzureSettings, parse_settings

if TYPE_CHECKING:
    from multicloud_azure.flexclient import FlexibleServers

CAPABILITIES = Capabilities(
    raw_tcp_ingress=True,
    udp_ingress=True,
    http_ingress=True,
    websockets=True,
    internal_tcp=True,
    volumes=False,
    build=True,
    resources=("postgres",),
    max_cpu=desired.MAX_CPU,
    max_memory=int(desired.MAX_MEMORY_GB * 1024**3),
    notes=(
        "all services run in one container group and share localhost; ports must be unique across services",
        "replicas > 1 cannot run in one group: the plan says what to do",
        "any change restarts every container of the group; cpu, memory, restart policy and adding or removing a "
        "service recreate it",
        "build: pushes to the Azure Container Registry the `acr` setting names (deployed by digest)",
        "postgres resources are Azure Database for PostgreSQL flexible servers (public access, Azure services "
        "allowed, TLS required)",
    ),
)

# provisioning states that will not become Succeeded by waiting, and what they mean
BROKEN_STATES = {
    "Canceled": "its last operation was canceled; the next apply PUTs it again",
    "Unhealthy": "ACI reports it unhealthy",
    "NotAccessible": "ACI cannot reach it (e.g. its subnet or registry is not accessible)",
}


class AzureAciProvider:
    """Renders, observes and applies one container group per app (layout `group`)."""

    name = "azure-aci"
    capabilities = CAPABILITIES

    def __init__(
        self, settings: Mapping[str, Any] | AzureSettings, *, client_factory: ClientFactory | None = None
    ) -> None:
        self.settings: AzureSettings = parse_settings(settings)
        self._factory = client_factory
        self._client: AciApi | None = None
        self._client_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._servers: FlexibleServers | None = None

    @property
    def client(self) -> AciApi:
        """The ARM client, built on first use (importing the Azure SDK only then)."""
        with self._client_lock:
            if self._client is None:
                if self._factory is None:
                    from multicloud_azure.client import make_client

                    self._client = make_client(self.settings)
                else:
                    self._client = self._factory(self.settings)
            return self._client

    @property
    def servers(self) -> FlexibleServers:
        """The flexible-server client, built on first use (importing its SDK only then)."""
        with self._client_lock:
            if self._servers is None:
                from multicloud_azure.flexclient import FlexibleServers

                self._servers = FlexibleServers(self.settings)
            return self._servers

    # --- plan ---------------------------------------------------------------------------------

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """The app's databases, containers and their group, each container carrying the rendered
        group (with its secure values) as payload for apply; raises CapabilityError for what ACI
        cannot run. Pure: keeps nothing on the provider."""
        databases = postgres.resources(spec, self.settings, secrets)
        uses = tuple(sorted({key for service in spec.services for key in spec.resource_keys(service)}))
        group = [dataclasses.replace(r, depends_on=(*r.depends_on, *uses)) for r in desired.render(
            spec, self.settings, secrets)[1]]
        return databases + group

    def public_names(self, spec: TargetSpec) -> list[str]:
        """The group's FQDN (LABEL.LOCATION.azurecontainer.io), known from the settings before it exists;
        none when the group has no public port or no DNS label. Reads nothing."""
        label = desired.dns_label(self.settings, spec.app, self.settings.group_name(spec.app))
        return [f"{label}.{self.settings.location}.azurecontainer.io"] if spec.has_public_port() and label else []

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """A database is reached at its server's fqdn on 5432, with TLS required."""
        return postgres.address(self.settings, spec, name)

    def observe(self, app: str) -> list[Resource]:
        """Groups tagged with the app: the current one with its containers; any other (a
        renamed group) as a bare group resource, so the plan deletes it."""
        primary = self.settings.group_name(app)
        found: list[Resource] = []
        for group in self.client.list_groups():
            if (group.get("tags") or {}).get(tags.APP) != app or _deleting(group):
                continue
            found += views.resources(group, primary=group["name"] == primary, payload=group)
        return found + self._databases(app)

    def _databases(self, app: str) -> list[Resource]:
        """The app's flexible servers, each with what it lacks of its database and firewall rule (two
        list calls per idle server; listed only when the API is there: a spec without databases never
        loads its SDK, but its servers are still found once one was made)."""
        if not _has_flexible_sdk():
            return []
        mine = [s for s in self.servers.list() if (s.get("tags") or {}).get(tags.APP) == app and postgres.stands(s)]
        return [postgres.observed(s, self.servers.setup(s)) for s in mine]

    def read(self, app: str, key: str) -> list[Resource]:
        """One resource as it is now ([] when absent): a group by name, or a container of the app's group."""
        kind, _, name = key.partition("/")
        if kind == postgres.KIND:
            return [r for r in self._databases(app) if r.key == key]
        group = self.client.get_group(name if kind == "group" else self.settings.group_name(app))
        if group is None or _deleting(group) or (group.get("tags") or {}).get(tags.APP) != app:
            return []
        primary = kind != "group" or name == self.settings.group_name(app)
        return [r for r in views.resources(group, primary=primary, payload=group) if r.key == key][:1]

    # --- apply --------------------------------------------------------------------------------

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Carry out one create, update or delete. ARM has no per-container call: a create or
        update PUTs the whole rendered group (deleting it first when ARM cannot change it in
        place: cpu, memory, restart policy, OS, SKU); a delete of a container still in the
        group deletes the group (the next create re-PUTs it; a container leaving the spec
        leaves through the group's own update). Serialised per group. A failure leaves the
        group as ARM left it (tagged, so the next plan sees it) or no group, which the next
        apply creates."""
        resource = change.resource
        if resource.kind == postgres.KIND:
            from multicloud_azure import flexclient

            target = resource.target or (change.before.target if change.before else "")
            flexclient.apply(self.servers, app, target, change, lambda text: emit(Event("progress", change.key, text)))
            return
        group_name = resource.name if resource.kind == "group" else self.settings.group_name(app)
        with self._lock(group_name):
            current = self.client.get_group(group_name)
            if change.action is Action.DELETE:
                if current is None or _deleting(current):
                    return
                _check_owner(current, app, group_name)
                members = [c["name"] for c in current["properties"].get("containers") or []]
                if resource.kind == "group" or resource.name in members:
                    why = "" if resource.kind == "group" else f"{resource.name} cannot leave it in place"
                    self._delete(group_name, change.key, emit, why=why)
                return
            plan = resource.payload
            if not isinstance(plan, GroupPlan):
                raise ProviderError(f"{change.key}: the change carries no rendered group; plan again and apply")
            _check_owner(current, app, group_name)
            if plan.matches(current):
                emit(Event("progress", change.key, f"group {group_name} already as rendered; no PUT"))
                return
            existed = current is not None and not _deleting(current)
            recreate = desired.needs_recreate(plan, current) if existed and current is not None else []
            if recreate:
                why = f"ARM cannot change {', '.join(recreate)} in place"
                if f"group/{group_name} containers" in recreate:
                    why += "; adding or removing a service resizes the group, which ACI does only by recreating it"
                self._delete(group_name, change.key, emit, why=why)
                existed = False
            self._put(app, plan, change.key, emit, existed=existed)

    def _put(self, app: str, plan: GroupPlan, key: str, emit: EventSink, *, existed: bool) -> None:
        """Push the group's `build:` images, then PUT the rendered group; returns once ARM accepted it
        (health then waits for it to be provisioned). A failure leaves whatever ARM kept (tagged,
        observable) and pushed images."""
        count = len(plan.body["properties"]["containers"])
        verb = f"updating group {plan.name} in place: all {count} container(s) restart" if existed else (
            f"creating group {plan.name} with {count} container(s)"
        )
        body = push_builds(self.client, self.settings, app, plan.body, plan.base_dir,
                           say=lambda text: emit(Event("progress", key, text)))
        emit(Event("progress", key, verb))
        self.client.put_group(plan.name, body)

    def _delete(self, name: str, key: str, emit: EventSink, *, why: str = "") -> None:
        """DELETE a group and wait; a failure leaves it deleting or in place, seen by the next plan."""
        emit(Event("progress", key, f"deleting group {name}" + (f" ({why})" if why else "")))
        self.client.delete_group(name)

    def _lock(self, group: str) -> threading.Lock:
        """The lock serialising changes to one group within this process."""
        with self._client_lock:
            return self._locks.setdefault(group, threading.Lock())

    # --- reports ------------------------------------------------------------------------------

    def health(self, app: str, resource: Resource) -> Health:
        """Healthy once the group is provisioned and the container runs, or ran to completion (exit 0)
        under a restart policy that does not restart it (Never, OnFailure: ACI shows it Terminated,
        Completed); unhealthy when the group failed or such a container failed. A database: once its
        server is Ready."""
        if resource.kind == postgres.KIND:
            return postgres.health(self.servers.get(str(resource.properties["server"])))
        name = resource.name if resource.kind == "group" else self.settings.group_name(app)
        group = self.client.get_group(name)
        if group is None:  # a replace of it may be under way in another step
            return Health(HealthState.STARTING, f"group {name} does not exist (yet)")
        provisioning = str(group["properties"].get("provisioningState") or "Pending")
        if provisioning == "Failed":
            return Health(HealthState.UNHEALTHY, f"group {name} failed to provision: {views.failure(group)}")
        if provisioning in BROKEN_STATES:
            return Health(HealthState.UNHEALTHY, f"group {name} is {provisioning}: {BROKEN_STATES[provisioning]}")
        if provisioning != "Succeeded":
            return Health(HealthState.STARTING, f"group {name} is {provisioning.lower()}")
        if resource.kind == "group":
            return Health(HealthState.HEALTHY)
        state, detail, restarts = views.container_state(group, resource.name)
        if state == "Running":
            return Health(HealthState.HEALTHY)
        policy = group["properties"].get("restartPolicy") or "Always"
        if state == "Terminated" and policy != "Always":
            if views.exit_code(group, resource.name) == 0:  # a run-to-completion container's success
                return Health(HealthState.HEALTHY, f"{resource.name} ran to completion (restart policy {policy})")
            return Health(HealthState.UNHEALTHY, f"{resource.name} terminated ({detail or 'no detail'})")
        return Health(HealthState.STARTING, f"{resource.name} is {state.lower()} {detail} (restarts: {restarts})")

    def status(self, app: str) -> list[ServiceStatus]:
        """Each container: running and healthy when ACI reports it Running in a provisioned group."""
        group = self._group(app)
        if group is None:
            return []
        provisioning = str(group["properties"].get("provisioningState") or "")
        result = []
        for item in group["properties"].get("containers") or []:
            state, detail, restarts = views.container_state(group, item["name"])
            running = int(state == "Running")
            healthy = int(running == 1 and provisioning == "Succeeded")
            text = f"group {group['name']} {provisioning}; restarts {restarts}" + (f"; {detail}" if detail else "")
            result.append(ServiceStatus(item["name"], 1, running, healthy, state.lower(), text))
        return result

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Container logs from ACI: of the history, the lines stamped at or after `since`, then the last
        `tail`; `follow` polls every 2 s and yields the lines stamped after the last one seen (ACI caps
        a log at 4 MB and starts it afresh on restart, so counting lines would skip or repeat them)
        until interrupted."""
        group = self._group(app)
        if group is None:
            return
        names = [c["name"] for c in group["properties"].get("containers") or [] if service in (None, c["name"])]
        floor = None if since is None else views.stamp_of(since)
        seen: dict[str, tuple[str, int]] = {}
        while True:
            for name in names:
                if not follow and tail == 0:
                    continue
                text = self.client.container_logs(group["name"], name, None, timestamps=True)
                stamped = [views.stamped(line) for line in text.splitlines()]
                skip = 0
                if name not in seen:  # the history: what --since and --tail leave of it
                    shown = [line for line in stamped if floor is None or line[0] >= floor]
                    skip = len(stamped) - len(last(shown, tail))
                    seen[name] = ("", 0)
                for index, (line, mark) in enumerate(views.after(stamped, seen[name])):
                    seen[name] = mark
                    if index >= skip:
                        yield LogLine(name, f"{group['name']}/{name}", line)
            if not follow:
                return
            time.sleep(2.0)

    def exec(self, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
        """Run one program in the service's container through ACI's exec API (0: ACI reports no status)."""
        group = self._group(app)
        names = [c["name"] for c in (group or {}).get("properties", {}).get("containers") or []]
        if group is None or service not in names:
            raise UserError(f"service {service!r} of app {app!r} is not deployed", hint="see `multicloud status`")
        if replica != 1:
            raise UserError(f"ACI runs one replica of each service; there is no replica {replica}")
        ca_bundle = self.settings.ca_bundle
        return execute.run(self.client, group["name"], service, command, terminal=terminal, ca_bundle=ca_bundle)

    def endpoints(self, app: str) -> list[Endpoint]:
        """Public ports at the group's DNS name (with its IP) or IP; internal ones at localhost in the group."""
        group = self._group(app)
        if group is None:
            return []
        host = views.public_host(group)
        address = str((group["properties"].get("ipAddress") or {}).get("ip") or "")
        found = []
        for resource in views.resources(group):
            for port in resource.properties.get("ports", []) if resource.kind == "container" else []:
                public = bool(port["public"]) and host is not None
                url = endpoint_url(port["protocol"], host if public and host else "localhost", port["port"])
                shown = address if public and address != host else ""
                found.append(Endpoint(resource.name, port["name"], port["protocol"], url, public, shown))
        return found

    def _group(self, app: str) -> Json | None:
        """The app's current group from GET, or None when absent, being deleted or not the app's."""
        group = self.client.get_group(self.settings.group_name(app))
        if group is None or _deleting(group) or (group.get("tags") or {}).get(tags.APP) != app:
            return None
        return group


def _check_owner(group: Mapping[str, Any] | None, app: str, name: str) -> None:
    """Raise UserError when a group of that name exists but another app (or nobody) owns it;
    nothing is touched then."""
    if group is None:
        return
    owner = (group.get("tags") or {}).get(tags.APP)
    if owner != app:
        whose = f"app {owner!r}" if owner else "no multicloud app (it has no multicloud-app tag)"
        raise UserError(
            f"container group {name!r} already exists and belongs to {whose}; multicloud will not overwrite it",
            hint="set the target's `group:` setting to another name, or delete that group yourself",
        )


def _deleting(group: Mapping[str, Any]) -> bool:
    """True when ARM is deleting the group."""
    return bool(group["properties"].get("provisioningState") == "Deleting")


def _has_flexible_sdk() -> bool:
    """True when azure-mgmt-postgresqlflexibleservers is installed (it is a dependency; a test
    double of the ACI API alone still plans specs without databases)."""
    return importlib.util.find_spec("azure.mgmt.postgresqlflexibleservers") is not None
