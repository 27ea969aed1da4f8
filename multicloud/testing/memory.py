"""A stateful in-memory provider: a fake cloud that keeps state and behaves like one.

State lives in a `MemoryCloud` (in process, or in a JSON file so separate CLI runs share
it). Tests inject failures and slow health, and read the call log to count mutations.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import Field, StrictBool, StrictInt

from multicloud.addressing import DirectAddressing, endpoint_url, resolve_service
from multicloud.contract import Capabilities, Endpoint, EventSink, Health, HealthState, LogLine, ServiceStatus
from multicloud.errors import MulticloudError, ProviderError
from multicloud.logwindow import last, refuse_since
from multicloud.planner import Action, Change
from multicloud.resources import Resource, Sensitive, from_jsonable, to_jsonable
from multicloud.settings import ProviderSettings, validate_settings
from multicloud.spec.backing import Address, password_secret
from multicloud.spec.models import Service
from multicloud.spec.targets import TargetSpec
from multicloud.spec.units import format_memory

MUTATING = frozenset({"create", "update", "delete"})


@dataclass
class Injection:
    """A failure to raise on the next calls of `method` for `key`."""

    error: MulticloudError
    times: int = 1


@dataclass
class MemoryCloud:
    """The fake cloud's state: resources per app, call log, injected faults."""

    path: str | None = None
    health_polls: int = 0
    apps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: dict[tuple[str, str], Injection] = field(default_factory=dict)
    unhealthy: set[str] = field(default_factory=set)
    wrong_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _polls: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def inject(self, method: str, key: str, error: MulticloudError, times: int = 1) -> None:
        """Make the next `times` calls of method ('read', 'apply'...) on key raise error."""
        self.faults[(method, key)] = Injection(error, times)

    def misapply(self, key: str, **properties: Any) -> None:
        """Make every later create or update of key store these property values instead of
        the asked ones and still report success (a provider bug, for the engine's check)."""
        self.wrong_results[key] = properties

    def break_instance(self, app: str, key: str, *faults: str) -> None:
        """Mark the newest instance of key broken (e.g. "replica 1 exited (137)"): observe
        reports the faults until a create makes a new instance."""
        with self.session(write=True) as apps:
            apps[app][key]["faults"] = list(faults)

    def mutations(self) -> list[tuple[str, str]]:
        """The calls that changed state, in order."""
        return [c for c in self.calls if c[0] in MUTATING]

    @contextmanager
    def session(self, write: bool) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
        """Yield the state (loaded from the file if any), saving it after a write."""
        with self._lock:
            if self.path is None:
                yield self.apps
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with os.fdopen(os.dup(fd), "r", encoding="utf-8") as handle:
                    text = handle.read()
                self.apps = json.loads(text) if text.strip() else {}
                yield self.apps
                if write:
                    tmp = f"{self.path}.tmp"
                    with open(tmp, "w", encoding="utf-8") as handle:
                        json.dump(self.apps, handle, sort_keys=True)
                    os.replace(tmp, self.path)
            finally:
                os.close(fd)

    def record(self, method: str, key: str) -> None:
        """Log a call, raising an injected fault for it if one is armed."""
        self.calls.append((method, key))
        fault = self.faults.get((method, key)) or self.faults.get((method, "*"))
        if fault is not None and fault.times > 0:
            fault.times -= 1
            raise fault.error


_SHARED: dict[str, MemoryCloud] = {}


class MemorySettings(ProviderSettings):
    """Settings of a `memory` target (tests and demos)."""

    state_file: str | None = Field(default=None, min_length=1, description="JSON file shared by separate runs")
    max_replicas: StrictInt | None = Field(default=None, ge=0, description="a replica limit, as a cloud has")
    raw_tcp_ingress: StrictBool = Field(default=True, description="false: refuse public TCP ports like Cloud Run")
    empty_secrets: StrictBool = Field(default=True, description="false: refuse empty secrets like Secrets Manager")
    terminates_tls: StrictBool = Field(default=False, description="true: TLS ends in front of containers (Cloud Run)")
    health_polls: StrictInt = Field(
        default=0, ge=0, description="health polls a new resource answers 'starting' to (an apply that takes time)"
    )


class MemoryProvider:
    """Provider `memory`: every service becomes a `service/NAME` resource in a MemoryCloud."""

    name = "memory"

    def __init__(
        self, settings: Mapping[str, Any] | MemorySettings | None = None, *, cloud: MemoryCloud | None = None
    ) -> None:
        checked = validate_settings(MemorySettings, settings or {}, provider="memory")
        path = checked.state_file
        self.cloud = cloud or _SHARED.setdefault(str(path), MemoryCloud(path=path))
        if checked.health_polls:
            self.cloud.health_polls = checked.health_polls
        self.capabilities = Capabilities(
            max_replicas=checked.max_replicas,
            raw_tcp_ingress=checked.raw_tcp_ingress,
            terminates_tls=checked.terminates_tls,
            empty_secrets=checked.empty_secrets,
            resources=("postgres",),
        )

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """One network, one resource per volume, per database and per service. Pure."""
        address = DirectAddressing(spec.services, host=lambda name: f"{name}.{spec.app}.internal")
        resources = [Resource("network", spec.app, {"app": spec.app})]
        resources += [Resource("volume", v, {"app": spec.app}, persistent=True) for v in spec.volumes]
        for name, db in spec.resources.items():
            props = {
                "version": db.version, "storage": format_memory(db.storage), "tier": db.tier,
                "database": db.database_name(name), "user": db.user_name(name), "deletion": db.deletion,
                "password": Sensitive.of(secrets[password_secret(name)], app=spec.app),
            }
            resources.append(Resource("postgres", name, props, depends_on=("network/" + spec.app,),
                                      replace_on=frozenset({"version", "database", "user"}),
                                      persistent=db.persistent))
        for name, service in spec.services.items():
            resolved = resolve_service(service, address, secrets, app=spec.app)
            deps = ("network/" + spec.app, *(f"service/{d}" for d in service.depends_on), *spec.resource_keys(name))
            deps += tuple(f"volume/{m.source}" for m in service.volumes)
            resources.append(
                Resource(
                    "service",
                    name,
                    _service_properties(service, resolved.env, resolved.command),
                    depends_on=deps,
                    replace_on=frozenset({"image", "build", "command", "ports", "volumes", "user"}),
                    replace_mode="create-before-delete",
                    service=name,
                )
            )
        return resources

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """A database at NAME.APP.internal:5432, over TLS."""
        return Address(f"{name}.{spec.app}.internal", options={"sslmode": "require"})

    def observe(self, app: str) -> list[Resource]:
        """Every instance stored for the app, oldest first within a key."""
        self.cloud.record("observe", app)
        with self.cloud.session(write=False) as apps:
            owned = apps.get(app, {})
            keys = sorted({stored.partition("#")[0] for stored in owned})
            return [_resource(key, entry) for key in keys for _, entry in _instances(owned, key)]

    def read(self, app: str, key: str) -> list[Resource]:
        """Every stored instance of one key, oldest first."""
        self.cloud.record("read", key)
        with self.cloud.session(write=False) as apps:
            return [_resource(key, entry) for _, entry in _instances(apps.get(app, {}), key)]

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Create an instance beside any existing one, update one in place or delete exactly
        the one in change.before; a failure leaves the state as before."""
        self.cloud.record("apply", change.key)
        self.cloud.record(change.action.value, change.key)
        with self.cloud.session(write=True) as apps:
            owned = apps.setdefault(app, {})
            found = _instances(owned, change.key)
            if change.action is Action.DELETE:
                assert change.before is not None
                _delete(owned, found, change.before.instance)
                return
            if change.action is Action.REPLACE:
                raise AssertionError("the engine carries out a replace as a create and a delete")
            resource = change.resource
            props = {**resource.properties, **self.cloud.wrong_results.get(change.key, {})}
            if change.action is Action.UPDATE:
                assert change.before is not None
                match = [(k, e) for k, e in found if e["instance"] == change.before.instance]
                if not match:
                    raise ProviderError(f"{change.key}: instance {change.before.instance} to update is gone")
                stored, entry = match[0]
                entry["properties"] = to_jsonable(props)
                entry["target"] = resource.target
                entry["persistent"] = resource.persistent
                entry["log"] = [*entry["log"], f"update: revision {entry['revision']}"][-100:]
                owned[stored] = entry
                return
            revision = max((int(e["revision"]) for _, e in found), default=0) + 1
            for stored, entry in found:  # the newest instance lives under the key itself
                owned.pop(stored)
                owned[f"{change.key}#{entry['instance']}"] = entry
            owned[change.key] = {
                "properties": to_jsonable(props),
                "service": resource.service,
                "persistent": resource.persistent,
                "depends_on": list(resource.depends_on),
                "target": resource.target,
                "revision": revision,
                "instance": f"{resource.name}-{revision}",
                "log": [*(found[-1][1]["log"] if found else []), f"create: revision {revision}"][-100:],
            }
            self.cloud._polls[change.key] = 0

    def health(self, app: str, resource: Resource) -> Health:
        """Starting for the configured number of polls, then healthy (or injected unhealthy)."""
        self.cloud.record("health", resource.key)
        if resource.key in self.cloud.unhealthy:
            return Health(HealthState.UNHEALTHY, "injected failure")
        polls = self.cloud._polls.get(resource.key, 0) + 1
        self.cloud._polls[resource.key] = polls
        if polls <= self.cloud.health_polls:
            return Health(HealthState.STARTING, f"poll {polls} of {self.cloud.health_polls}")
        return Health(HealthState.HEALTHY)

    def status(self, app: str) -> list[ServiceStatus]:
        """Every service as running its replicas, less one per fault of its newest instance."""
        newest = {r.key: r for r in self.observe(app) if r.kind == "service"}
        statuses = []
        for resource in newest.values():
            replicas = int(resource.properties.get("replicas", 1))
            healthy = max(0, replicas - len(resource.faults))
            state = "running" if healthy == replicas else "degraded"
            statuses.append(ServiceStatus(resource.name, replicas, healthy, healthy, state, "; ".join(resource.faults)))
        return statuses

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """The provider's own record of what happened to each service (the last `tail` lines; it keeps no times)."""
        refuse_since("memory", since, "it records no time for its lines")
        newest = {r.key: r for r in self.observe(app)}
        for resource in newest.values():
            if resource.kind == "service" and service in (None, resource.name):
                for line in last(resource.payload["log"], tail):
                    yield LogLine(resource.name, resource.payload["instance"], line)

    def endpoints(self, app: str) -> list[Endpoint]:
        """A URL per port: public ones on a fake public host, internal ones on the app's."""
        found = []
        for resource in {r.key: r for r in self.observe(app)}.values():
            for port in resource.properties.get("ports", []) if resource.kind == "service" else []:
                public = port["expose"] == "public"
                host = f"{resource.name}.{app}.{'memory.example' if public else 'internal'}"
                url = endpoint_url(port["protocol"], host, port["port"])
                found.append(Endpoint(resource.name, port["name"], port["protocol"], url, public))
        return found


def _service_properties(service: Service, env: Mapping[str, Any], command: Any) -> dict[str, Any]:
    return {
        "image": service.image,
        "build": service.build.model_dump() if service.build else None,
        "command": command,
        "env": dict(env),
        "ports": [p.model_dump() for p in service.ports],
        "replicas": service.replicas,
        "cpu": service.resources.cpu,
        "memory": format_memory(service.resources.memory),
        "volumes": [m.model_dump() for m in service.volumes],
        "user": service.user,
        "secrets": list(service.secrets),
    }


def _instances(owned: Mapping[str, dict[str, Any]], key: str) -> list[tuple[str, dict[str, Any]]]:
    """(storage key, entry) of every instance of key, oldest first."""
    found = [(k, e) for k, e in owned.items() if k == key or k.startswith(key + "#")]
    return sorted(found, key=lambda item: int(item[1].get("revision", 0)))


def _delete(owned: dict[str, dict[str, Any]], found: list[tuple[str, dict[str, Any]]], instance: str) -> None:
    """Drop one instance; if it was the one stored under the key, the newest other takes its place."""
    doomed = [k for k, e in found if e.get("instance") == instance]
    for stored in doomed:
        del owned[stored]
    rest = [(k, e) for k, e in found if k not in doomed]
    key = found[0][0].partition("#")[0] if found else ""
    if rest and key not in owned:
        owned[key] = owned.pop(rest[-1][0])


def _resource(key: str, entry: Mapping[str, Any]) -> Resource:
    kind, _, name = key.partition("/")
    return Resource(
        kind,
        name,
        from_jsonable(entry["properties"]),
        depends_on=tuple(entry.get("depends_on", ())),
        persistent=bool(entry.get("persistent")),
        service=entry.get("service"),
        payload={"revision": entry.get("revision"), "instance": entry.get("instance"), "log": entry.get("log", [])},
        instance=str(entry.get("instance") or ""),
        faults=tuple(entry.get("faults", ())),
        target=str(entry.get("target") or ""),
    )
