"""What an app owns on the engine, rebuilt from labels alone (list calls only, no inspect)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from multicloud.resources import Resource
from multicloud_docker import labels as L
from multicloud_docker.client import guard

LIVE_STATES = ("running", "restarting")
CONTAINER_KINDS = ("service", "postgres")
"""Kinds of resource that run as containers: services, and databases (multicloud_docker.postgres)."""


@dataclass(frozen=True)
class Replica:
    """One container of a service, as the engine's container list reports it."""

    id: str
    name: str
    service: str
    index: int
    spec_hash: str
    state: str
    status: str
    created: int
    labels: Mapping[str, str] = field(repr=False)
    ports: Sequence[Mapping[str, Any]] = field(default=(), repr=False)
    kind: str = "service"

    @property
    def live(self) -> bool:
        """Running (or being restarted by the engine)."""
        return self.state in LIVE_STATES

    @property
    def generation(self) -> str:
        """The create that made it (containers older than generation labels: their spec hash)."""
        return self.labels.get(L.GENERATION) or self.spec_hash

    @property
    def created_ns(self) -> int:
        """When the provider created it (its label), 0 for containers older than that label."""
        try:
            return int(self.labels.get(L.CREATED_NS, "0"))
        except ValueError:
            return 0

    @property
    def settled(self) -> bool:
        """Running and, as the list shows it, ready: passing its health check or, without one, up
        for a second or more (the list cannot show restarts: a restarted replica counts from its last start)."""
        if self.state != "running":
            return False
        if "(healthy)" in self.status:
            return True
        return "(health" not in self.status and "(unhealthy)" not in self.status and self.status.startswith(
            "Up "
        ) and "Less than a second" not in self.status

    @property
    def checking(self) -> bool:
        """Running, with a health check the engine has not run yet (its first runs one interval after the start)."""
        return self.state == "running" and "(health: starting)" in self.status

    @property
    def fault(self) -> str:
        """What is wrong with it, as a plan shows it ("replica 2 exited (137)"), or ""."""
        where = f"replica {self.index}"
        if self.state == "exited":
            code = self.status.partition("(")[2].partition(")")[0]
            return f"{where} exited ({code})" if code else f"{where} exited"
        if self.state in ("dead", "paused"):
            return f"{where} {self.state}"
        if self.state == "created":
            return f"{where} was created but never started"
        if "(unhealthy)" in self.status:
            return f"{where} unhealthy"
        return ""


def replicas(api: Any, app: str, key: str | None = None) -> list[Replica]:
    """Every labelled container of the app (or of one service or database resource), oldest first."""
    with guard(f"listing containers of app {app!r}"):
        found = api.containers(all=True, filters=L.selector(app, key))
    result = []
    for summary in found:
        labels = summary.get("Labels") or {}
        kind, _, name = labels.get(L.RESOURCE, "").partition("/")
        if kind not in CONTAINER_KINDS:
            continue
        try:
            index = int(labels.get(L.REPLICA, "0"))
        except ValueError:
            index = 0
        names = summary.get("Names") or ["/" + summary["Id"][:12]]
        result.append(
            Replica(
                id=summary["Id"],
                name=names[0].lstrip("/"),
                service=name,
                index=index,
                spec_hash=labels.get(L.SPEC_HASH, ""),
                state=str(summary.get("State", "")),
                status=str(summary.get("Status", "")),
                created=int(summary.get("Created", 0)),
                labels=labels,
                ports=summary.get("Ports") or [],
                kind=kind,
            )
        )
    return sorted(result, key=lambda r: (r.created, r.name))


def generations(group: Sequence[Replica]) -> list[list[Replica]]:
    """A service's containers by the create that made them, oldest generation first: by the engine's
    creation second, then by the provider's own nanosecond stamp (a replace right after a killed
    create makes both generations in one second)."""
    found: dict[str, list[Replica]] = {}
    for replica in group:
        found.setdefault(replica.generation, []).append(replica)
    return sorted(found.values(), key=lambda members: (
        min(r.created for r in members), min(r.created_ns for r in members), members[0].generation))


Probe = Callable[[Replica, Mapping[str, Any] | None], bool]
"""Whether a replica passes its health check (the service's `healthcheck` property) when run now."""


def service_instance(name: str, members: Sequence[Replica], probe: Probe | None = None) -> Resource:
    """One generation of a service as it runs: its properties, its replica count (every
    index it holds, running or not) and, as faults, the replicas that exited, died, never
    started, fail their health check or share an index. Its payload names its containers.
    Healthy when every replica is settled or, given `probe`, still checking and passing it now."""
    lead = max(members, key=lambda r: (r.created, r.name))
    props = L.decode(lead.labels.get(L.PROPERTIES))
    indices = [r.index for r in members]
    props[L.SCALE_PROPERTY] = len(set(indices))
    faults = [r.fault for r in sorted(members, key=lambda r: r.index) if r.fault]
    faults += [f"replica {i} runs twice" for i in sorted(set(indices)) if indices.count(i) > 1]
    if len({r.spec_hash for r in members}) > 1:
        faults.append("replicas run different specs")
    depends = tuple(k for k in lead.labels.get(L.DEPENDS_ON, "").split(",") if k)
    return Resource(
        lead.kind,
        name,
        props,
        depends_on=depends,
        service=name if lead.kind == "service" else None,
        payload={"containers": [r.id for r in members], "generation": lead.generation},
        instance=lead.generation,
        faults=tuple(faults),
        target=lead.labels.get(L.TARGET, ""),
        healthy=not faults and all(
            r.settled or (probe is not None and r.checking and probe(r, props.get("healthcheck"))) for r in members
        ),
    )


def services(api: Any, app: str, key: str | None = None, probe: Probe | None = None) -> list[Resource]:
    """Service and database resources of the app (or the one named by key): one per generation
    (healthy as service_instance finds it with `probe`)."""
    groups: dict[tuple[str, str], list[Replica]] = {}
    for replica in replicas(api, app, key):
        groups.setdefault((replica.kind, replica.service), []).append(replica)
    return [
        service_instance(name, members, probe)
        for (_, name), group in sorted(groups.items())
        for members in generations(group)
    ]


def networks(api: Any, app: str, key: str | None = None) -> list[Resource]:
    """The app's labelled networks."""
    with guard(f"listing networks of app {app!r}"):
        found = api.networks(filters=L.selector(app, key))
    return _simple("network", [(n.get("Labels") or {}, n["Id"]) for n in found])


def volumes(api: Any, app: str, key: str | None = None) -> list[Resource]:
    """The app's labelled volumes (persistent: kept by destroy unless asked)."""
    with guard(f"listing volumes of app {app!r}"):
        found = (api.volumes(filters=L.selector(app, key)) or {}).get("Volumes") or []
    return [
        Resource(r.kind, r.name, r.properties, persistent=True, payload=r.payload, target=r.target, healthy=True)
        for r in _simple("volume", [(v.get("Labels") or {}, v["Name"]) for v in found])
    ]


def images(api: Any, app: str, key: str | None = None) -> list[Resource]:
    """Built images of the app, one resource per service and tag, oldest first: a tag is an
    instance, so the plan keeps the desired build and removes the others."""
    with guard(f"listing images of app {app!r}"):
        found = api.images(filters=L.selector(app, key))
    tags: list[tuple[str, int, str, dict[str, Any], str]] = []
    for image in found:
        image_labels = image.get("Labels") or {}
        service = image_labels.get(L.RESOURCE, "").partition("/")[2]
        repository = L.image_repository(app, service) + ":"
        for tag in image.get("RepoTags") or []:
            if tag.startswith(repository):
                props = L.decode(image_labels.get(L.PROPERTIES))
                tags.append((service, int(image.get("Created", 0)), tag, props, image_labels.get(L.TARGET, "")))
    return [
        Resource("image", service, props, service=service, payload={"tags": [tag]}, instance=tag, target=target,
                 healthy=True)
        for service, _, tag, props, target in sorted(tags)
    ]


def _simple(kind: str, found: list[tuple[Mapping[str, str], str]]) -> list[Resource]:
    result: dict[str, Resource] = {}
    for object_labels, ident in found:
        resource = object_labels.get(L.RESOURCE, "")
        if not resource.startswith(kind + "/"):
            continue
        name = resource.partition("/")[2]
        if name in result:
            result[name].payload["ids"].append(ident)
            continue
        props = L.decode(object_labels.get(L.PROPERTIES))
        target = object_labels.get(L.TARGET, "")
        result[name] = Resource(kind, name, props, payload={"ids": [ident]}, target=target, healthy=True)
    return [result[n] for n in sorted(result)]


def data_policy(observed: list[Resource]) -> list[Resource]:
    """The observed resources with each database's data volume (multicloud_docker.postgres) persistent
    unless its container says `deletion: delete` (a volume's labels cannot change, a container's setting
    is the current one; with no container left the data is kept)."""
    deleting = {r.name for r in observed if r.kind == "postgres" and r.properties.get("deletion") == "delete"}
    return [
        replace(r, persistent=r.name.removeprefix(L.DATA_VOLUME) not in deleting)
        if r.kind == "volume" and r.name.startswith(L.DATA_VOLUME) else r
        for r in observed
    ]


def observe_all(api: Any, app: str, probe: Probe | None = None) -> list[Resource]:
    """Everything the app owns: four list calls, made concurrently (the engine's image list
    can be slow on a busy host); the first call's error is raised. Plain threads: a pool would
    import logging, a good part of a no-op apply's start-up. Services are healthy as `services`
    finds them with `probe`."""
    readers: tuple[Callable[[Any, str], list[Resource]], ...] = (
        networks, volumes, images, lambda api, app: services(api, app, probe=probe)
    )
    results: list[list[Resource] | BaseException] = [[] for _ in readers]

    def run(index: int) -> None:
        try:
            results[index] = readers[index](api, app)
        except BaseException as exc:  # raised in the calling thread below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), name="multicloud-docker-observe") for i in range(1, 4)]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    found: list[Resource] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        found += result
    return data_policy(found)


def read(api: Any, app: str, key: str) -> list[Resource]:
    """Every instance of one owned resource by key, oldest first; [] when there is none."""
    kind, _, name = key.partition("/")
    readers = {"network": networks, "volume": volumes, "image": images, "service": services, "postgres": services}
    reader = readers.get(kind)
    if reader is None:
        return []
    found = [r for r in reader(api, app, key) if r.key == key]
    if kind == "volume" and name.startswith(L.DATA_VOLUME):  # its persistence is its database's setting
        found = data_policy([*found, *services(api, app, "postgres/" + name.removeprefix(L.DATA_VOLUME))])
    return [r for r in found if r.key == key]


def observe_engine(data: Mapping[str, Any], app: str) -> list[Resource]:
    """observe_all on the engine at data["host"] (None: DOCKER_HOST, else the local socket); what
    DockerProvider.observer() names, so it needs neither the settings model nor the SDK. A replica
    whose first health check the engine has not run yet is healthy if the check passes when run now
    (as health() finds it), so a no-op just after an apply is answered from the compiled target too."""
    from multicloud_docker.client import default_factory
    from multicloud_docker.probing import probe_now

    api = default_factory(data.get("host"))()
    return observe_all(api, app, lambda replica, check: probe_now(api, replica.id, check))
