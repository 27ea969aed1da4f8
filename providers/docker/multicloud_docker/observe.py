"""What an app owns on the engine, rebuilt from labels alone (list calls only, no inspect)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from multicloud.resources import Resource
from multicloud_docker import labels as L
from multicloud_docker.client import guard

LIVE_STATES = ("running", "restarting")
STALE_PROPERTY = "stale_containers"
"""Observed-only property listing containers a converge removes; absent when there are none."""


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

    @property
    def live(self) -> bool:
        """Running (or being restarted by the engine)."""
        return self.state in LIVE_STATES


def replicas(api: Any, app: str, key: str | None = None) -> list[Replica]:
    """Every labelled container of the app (or of one service resource), oldest first."""
    with guard(f"listing containers of app {app!r}"):
        found = api.containers(all=True, filters=L.selector(app, key))
    result = []
    for summary in found:
        labels = summary.get("Labels") or {}
        resource = labels.get(L.RESOURCE, "")
        if not resource.startswith("service/"):
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
                service=resource.partition("/")[2],
                index=index,
                spec_hash=labels.get(L.SPEC_HASH, ""),
                state=str(summary.get("State", "")),
                status=str(summary.get("Status", "")),
                created=int(summary.get("Created", 0)),
                labels=labels,
                ports=summary.get("Ports") or [],
            )
        )
    return sorted(result, key=lambda r: (r.created, r.name))


def split(group: Sequence[Replica], spec_hash: str) -> tuple[dict[int, Replica], list[Replica]]:
    """Partition a service's containers into the serving replica per index (live, given
    spec hash; the oldest wins) and everything else, which a converge removes."""
    good: dict[int, Replica] = {}
    stale: list[Replica] = []
    for replica in group:
        if replica.live and replica.spec_hash == spec_hash and replica.index >= 1 and replica.index not in good:
            good[replica.index] = replica
        else:
            stale.append(replica)
    return good, stale


def dominant(group: Sequence[Replica]) -> Replica:
    """The newest container of the spec hash most running containers have (ties: newest)."""
    live = Counter(r.spec_hash for r in group if r.live)
    newest = {r.spec_hash: r for r in group}
    return newest[max(newest, key=lambda h: (live[h], newest[h].created))]


def service_resource(name: str, group: Sequence[Replica]) -> Resource | None:
    """A service as it runs: the properties of its dominant spec hash, the count of its
    serving replicas, and any other containers under `stale_containers`."""
    if not group:
        return None
    lead = dominant(group)
    good, stale = split(group, lead.spec_hash)
    props = L.decode(lead.labels.get(L.PROPERTIES))
    props[L.SCALE_PROPERTY] = len(good)
    if stale:
        props[STALE_PROPERTY] = sorted(r.name for r in stale)
    depends = tuple(k for k in lead.labels.get(L.DEPENDS_ON, "").split(",") if k)
    return Resource(
        "service", name, props, depends_on=depends, service=name, payload={"containers": [r.id for r in group]}
    )


def services(api: Any, app: str, key: str | None = None) -> list[Resource]:
    """Service resources of the app (or the one named by key)."""
    groups: dict[str, list[Replica]] = {}
    for replica in replicas(api, app, key):
        groups.setdefault(replica.service, []).append(replica)
    found = [service_resource(name, group) for name, group in sorted(groups.items())]
    return [r for r in found if r is not None]


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
        Resource(r.kind, r.name, r.properties, persistent=True, payload=r.payload)
        for r in _simple("volume", [(v.get("Labels") or {}, v["Name"]) for v in found])
    ]


def images(api: Any, app: str, key: str | None = None) -> list[Resource]:
    """Built images of the app, one resource per service; several tags (an interrupted
    rebuild) show as a list so the plan rebuilds and prunes them."""
    with guard(f"listing images of app {app!r}"):
        found = api.images(filters=L.selector(app, key))
    tags: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for image in found:
        image_labels = image.get("Labels") or {}
        service = image_labels.get(L.RESOURCE, "").partition("/")[2]
        repository = L.image_repository(app, service) + ":"
        for tag in image.get("RepoTags") or []:
            if tag.startswith(repository):
                props = L.decode(image_labels.get(L.PROPERTIES))
                tags.setdefault(service, []).append((int(image.get("Created", 0)), tag, props))
    result = []
    for service, entries in sorted(tags.items()):
        entries.sort()
        props = dict(entries[-1][2])
        names = sorted(tag for _, tag, _ in entries)
        if len(names) > 1:
            props["tag"] = names
        result.append(Resource("image", service, props, service=service, payload={"tags": names}))
    return result


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
        result[name] = Resource(kind, name, props, payload={"ids": [ident]})
    return [result[n] for n in sorted(result)]


def observe_all(api: Any, app: str) -> list[Resource]:
    """Everything the app owns: four list calls, made concurrently (the engine's image list
    can be slow on a busy host)."""
    readers = (networks, volumes, images, services)
    with ThreadPoolExecutor(max_workers=len(readers), thread_name_prefix="multicloud-docker-observe") as pool:
        futures = [pool.submit(reader, api, app) for reader in readers]
    return [resource for future in futures for resource in future.result()]


def read_one(api: Any, app: str, key: str) -> Resource | None:
    """One owned resource by key, or None."""
    kind = key.partition("/")[0]
    readers = {"network": networks, "volume": volumes, "image": images, "service": services}
    reader = readers.get(kind)
    if reader is None:
        return None
    found = [r for r in reader(api, app, key) if r.key == key]
    return found[0] if found else None
