"""A service's replicas: create a generation, scale one in place, remove exactly one.

A generation is the set of replicas one create made (labelled `multicloud.generation`); it
is the service's instance, so a new one can start beside the old one and the engine removes
the old one only once the new one is healthy (create-before-delete)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from multicloud.resources import Resource
from multicloud_docker import images
from multicloud_docker import labels as L
from multicloud_docker.containers import create_replica, remove
from multicloud_docker.observe import Replica, replicas

Say = Callable[[str], None]


def create_service(api: Any, app: str, resource: Resource, say: Say) -> str:
    """Start replicas 1..N of the desired spec as a new generation beside whatever runs;
    return the generation. A failure leaves a partial generation (labelled) that the next
    plan scales up or removes."""
    generation = secrets.token_hex(4)
    count = int(resource.properties[L.SCALE_PROPERTY])
    if count:
        _ensure_image(api, app, resource, say)
    _create_many(api, app, resource, range(1, count + 1), generation=generation, say=say)
    return generation


def scale_service(api: Any, app: str, before: Resource, after: Resource, *, stop_timeout: int, say: Say) -> None:
    """Bring the generation observed in `before` to the replica count of `after`: start the
    missing indices, remove those above the count. A failure leaves the generation part-way,
    which the next plan shows as a replica count to change."""
    generation = before.instance
    members = [r for r in replicas(api, app, after.key) if r.generation == generation]
    count = int(after.properties[L.SCALE_PROPERTY])
    held = {r.index for r in members}
    missing = [i for i in range(1, count + 1) if i not in held]
    if missing:
        _ensure_image(api, app, after, say)
    _create_many(api, app, after, missing, generation=generation, say=say)
    remove_all(api, [r for r in members if r.index > count], stop_timeout, say)


def delete_service(api: Any, app: str, before: Resource, stop_timeout: int, say: Say) -> None:
    """Remove exactly the containers of the instance observed in `before`, never a newer
    generation; gone already counts as done. A failure leaves the rest labelled."""
    doomed = set((before.payload or {}).get("containers") or ())
    remove_all(api, [r for r in replicas(api, app, before.key) if r.id in doomed], stop_timeout, say)


def remove_all(api: Any, found: Sequence[Replica], stop_timeout: int, say: Say) -> None:
    """Stop and remove containers concurrently; raise the first failure after trying all."""
    if not found:
        return

    def one(replica: Replica) -> None:
        remove(api, replica.id, replica.name, stop_timeout)
        say(f"removed {replica.name}")

    with ThreadPoolExecutor(max_workers=min(4, len(found)), thread_name_prefix="multicloud-docker-rm") as pool:
        futures = [pool.submit(one, r) for r in found]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def _create_many(api: Any, app: str, resource: Resource, indices: Sequence[int], *, generation: str, say: Say) -> None:
    """Create replicas concurrently; raise the first failure after trying all."""

    def one(index: int) -> None:
        name = create_replica(api, app, resource, index, generation)
        say(f"started {name}")

    if len(indices) <= 1:
        for index in indices:
            one(index)
        return
    with ThreadPoolExecutor(max_workers=min(4, len(indices)), thread_name_prefix="multicloud-docker-new") as pool:
        futures = [pool.submit(one, i) for i in indices]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def _ensure_image(api: Any, app: str, resource: Resource, say: Say) -> None:
    ref = str(resource.properties["image"])
    if ref.startswith(L.image_repository(app, resource.name) + ":"):
        images.require_built(api, ref)
    else:
        images.ensure_pulled(api, ref, say)
