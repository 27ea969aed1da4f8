"""Provider `docker`: a spec on a local (or DOCKER_HOST) Docker engine.

One bridge network per app (services reach each other by name), one container per
replica, named volumes, images built from `build:` contexts. Everything created carries
`multicloud.*` labels, which are the only record: observe() finds the app by labels alone
and nothing unlabelled is ever touched. The SDK is imported only by `client.py`, and only
when an apply changes something (reads use a stdlib client there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from multicloud.contract import (
    Capabilities,
    Endpoint,
    Event,
    EventSink,
    Health,
    HealthState,
    LogLine,
    ServiceStatus,
)
from multicloud.errors import NotFoundError, ProviderError, UserError
from multicloud.planner import Action, Change
from multicloud.resources import Resource
from multicloud.spec.backing import Address
from multicloud.spec.targets import TargetSpec
from multicloud.terminal import Terminal
from multicloud_docker import converge, execs, images, observe, postgres, views
from multicloud_docker import labels as L
from multicloud_docker.client import ClientFactory, ConflictError, Lazy, default_factory, guard
from multicloud_docker.containers import readiness
from multicloud_docker.desired import desired as render_desired
from multicloud_docker.probing import PROBE_WINDOW, probe_now
from multicloud_docker.settings import DockerSettings, parse_settings
from multicloud_docker.views import LogWindow


class DockerProvider:
    """The `docker` provider; holds settings and a lazily built engine client."""

    name = "docker"

    def __init__(
        self, settings: Mapping[str, Any] | DockerSettings | None = None, *, client_factory: ClientFactory | None = None
    ) -> None:
        self.settings: DockerSettings = parse_settings(settings or {})
        self._client: Lazy[Any] = Lazy(client_factory or default_factory(self.settings.host))
        self.capabilities = Capabilities(
            build=self.settings.build,
            health_poll=0.2,
            cheap_reads=True,
            resources=("postgres",),
            notes=(
                "public ports are published on the Docker host "
                f"({self.settings.bind_address}, shown as {self.settings.public_host})",
                "a service with a fixed host port is replaced stop-then-start; others roll without downtime",
            ),
        )

    @property
    def api(self) -> Any:
        """The engine client, built on first use (cheap: the SDK is imported on the first write)."""
        return self._client.get()

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """Network, volumes, images and services for the spec; no engine calls."""
        return render_desired(spec, secrets, self.settings)

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """A database is reached at its name (its container's alias on the app's network), port 5432."""
        return postgres.address(name)

    def observe(self, app: str) -> list[Resource]:
        """Everything labelled with the app: four list calls, no changes."""
        return observe.observe_all(self.api, app)

    def observer(self) -> tuple[str, dict[str, Any]]:
        """observe() without this class: `observe_engine` with the engine's address (SupportsQuickObserve)."""
        return "multicloud_docker.observe:observe_engine", {"host": self.settings.host}

    def read(self, app: str, key: str) -> list[Resource]:
        """Every instance of one owned resource as it is now (one list call), oldest first."""
        return observe.read(self.api, app, key)

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Create, update or delete one resource. A create starts a new instance beside any
        other (a service generation, an image tag); a delete removes exactly `change.before`.
        A failure or a kill leaves labelled objects that the next plan sees."""

        def say(message: str) -> None:
            emit(Event("progress", change.key, message))

        resource = change.resource
        kind = resource.kind
        if change.action not in (Action.CREATE, Action.UPDATE, Action.DELETE):
            raise ProviderError(f"docker provider cannot {change.action.value} {change.key}")
        if change.action is Action.DELETE:
            assert change.before is not None
            self._delete(app, change.before, say)
        elif kind in observe.CONTAINER_KINDS:
            if change.action is Action.CREATE:
                converge.create_service(self.api, app, resource, say)
            else:
                assert change.before is not None
                converge.scale_service(
                    self.api, app, change.before, resource, stop_timeout=self.settings.stop_timeout, say=say
                )
        elif kind == "image":
            images.build(self.api, app, resource, say)
        elif kind in ("network", "volume") and change.action is Action.CREATE:
            self._create(app, kind, resource, say)
        else:
            raise ProviderError(f"docker provider cannot {change.action.value} {change.key}")

    def _delete(self, app: str, before: Resource, say: Callable[[str], None]) -> None:
        """Remove exactly the observed instance: a service generation's containers, an image
        tag, a network's or volume's ids; gone already counts as done."""
        if before.kind in observe.CONTAINER_KINDS:
            converge.delete_service(self.api, app, before, self.settings.stop_timeout, say)
        elif before.kind == "image":
            images.remove_tags(self.api, (before.payload or {}).get("tags") or [], say)
        elif before.kind in ("network", "volume"):
            self._remove(before.kind, (before.payload or {}).get("ids") or [], say)
        else:
            raise ProviderError(f"docker provider cannot delete {before.key}: unknown kind {before.kind!r}")

    def health(self, app: str, resource: Resource) -> Health:
        """Healthy when every desired replica of the newest generation running the desired spec
        passes its health check (or, without one, has run a second); unhealthy when one exited,
        crash-loops or fails its check. Other kinds are healthy once they exist. One list call,
        an inspect per replica the list cannot vouch for and, for a replica whose check the engine
        has not passed yet (its first runs one interval after the start), that check run once
        now as the engine runs it (exec): ready as soon as the service is. Changes nothing."""
        if resource.kind not in observe.CONTAINER_KINDS:  # exists once created: the engine verified that
            return Health(HealthState.HEALTHY)
        digest = L.spec_hash(resource.properties)
        count = int(resource.properties[L.SCALE_PROPERTY])
        found = [r for r in observe.replicas(self.api, app, resource.key) if r.spec_hash == digest]
        newest = observe.generations(found)[-1] if found else []
        mine = [r for r in newest if 1 <= r.index <= count]
        if len({r.index for r in mine}) < count:
            return Health(HealthState.STARTING, f"{len(mine)} of {count} replicas exist")
        waiting = []
        check = resource.properties.get("healthcheck")
        for replica in mine:
            if replica.state == "running" and "(healthy)" in replica.status:
                continue  # the list says so: no inspect needed
            verdict = readiness(self.api, replica.id)
            if verdict.failed:
                return Health(HealthState.UNHEALTHY, f"{verdict.message}; see `multicloud logs {resource.name}`")
            if verdict.checking and probe_now(self.api, replica.id, check, PROBE_WINDOW):
                continue  # ready now, though the engine's own check has not said so yet
            if not verdict.ready:
                waiting.append(verdict.message)
        if waiting:
            return Health(HealthState.STARTING, "; ".join(waiting))
        return Health(HealthState.HEALTHY, f"{count} of {count} replicas healthy")

    def status(self, app: str) -> list[ServiceStatus]:
        """Replica counts and state per service; reads only."""
        return views.status(self.api, app)

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Log lines of the app's containers, oldest first (the engine applies tail and since); reads only."""
        return views.logs(self.api, app, service, follow, LogWindow(tail, since))

    def exec(self, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
        """Run a command in a running replica through the engine's exec; return its exit status."""
        return execs.run(self.api, app, service, command, replica=replica, terminal=terminal)

    def endpoints(self, app: str) -> list[Endpoint]:
        """host:port URLs of public ports and service-name URLs of internal ones; reads only."""
        return views.endpoints(self.api, app, self.settings.public_host)

    def public_names(self, spec: TargetSpec) -> list[str]:
        """Where public ports are reached on this machine: 127.0.0.1 and localhost, the public_host endpoints
        print, and the bind_address when it is one address; reads nothing."""
        bound = [] if self.settings.bind_address in ("0.0.0.0", "::") else [self.settings.bind_address]  # noqa: S104
        return list(dict.fromkeys(["127.0.0.1", "localhost", self.settings.public_host, *bound]))

    def _create(self, app: str, kind: str, resource: Resource, say: Any) -> None:
        """Create a network or volume under its fixed name; refuse one that exists unlabelled."""
        name = str(resource.properties["name"])
        labels = L.owned(app, resource.key, resource.properties, resource.target)
        if kind == "network":
            with guard(f"looking up network {name}"):
                clash = [n for n in self.api.networks(names=[name]) if n.get("Name") == name]
            if clash:
                raise _not_ours("network", name, clash[0].get("Labels"))
            try:
                with guard(f"creating network {name}"):
                    driver = resource.properties["driver"]
                    self.api.create_network(name, driver=driver, labels=labels, check_duplicate=True)
            except ConflictError as exc:
                raise UserError(f"network {name} exists and is not owned by app {app!r}") from exc
        else:
            with guard(f"creating volume {name}"):
                made = self.api.create_volume(name, driver=resource.properties["driver"], labels=labels)
            if (made.get("Labels") or {}).get(L.RESOURCE) != resource.key:
                raise _not_ours("volume", name, made.get("Labels"))
        say(f"created {kind} {name}")

    def _remove(self, kind: str, idents: list[str], say: Callable[[str], None]) -> None:
        """Remove the given networks or volumes; gone already counts as done."""
        for ident in idents:
            try:
                with guard(f"removing {kind} {ident[:24]}"):
                    if kind == "network":
                        self.api.remove_network(ident)
                    else:
                        self.api.remove_volume(ident)
            except NotFoundError:
                continue
            say(f"removed {kind} {ident[:24]}")


def _not_ours(kind: str, name: str, found_labels: Mapping[str, str] | None) -> UserError:
    owner = (found_labels or {}).get(L.APP)
    whose = f"app {owner!r}" if owner else "something other than multicloud"
    return UserError(
        f"a {kind} named {name} already exists and belongs to {whose}; multicloud does not touch it",
        hint=f"remove or rename that {kind}, or rename the app",
    )
