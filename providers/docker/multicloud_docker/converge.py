"""Level-based convergence of a service's replicas: the same routine creates, scales,
replaces and repairs, starting each time from the containers that exist."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from multicloud.errors import ProviderError
from multicloud.resources import Resource
from multicloud_docker import images
from multicloud_docker import labels as L
from multicloud_docker.containers import create_replica, remove, wait_ready
from multicloud_docker.observe import Replica, replicas, split

Say = Callable[[str], None]


def converge(api: Any, app: str, resource: Resource, timeouts: tuple[float, int], say: Say) -> None:
    """Make replicas 1..N run the desired spec hash, one container each, and remove the rest.

    Rolling (create-before-delete): per index, start the new replica, wait until it is
    healthy if an old one still serves there, then remove the old. Fixed host ports
    (delete-before-create): remove every stale container first, then create. A failure
    leaves labelled containers; a new replica that never became healthy is left stopped
    (for its logs) while the old one keeps serving, and the next apply converges again.
    `timeouts` is (seconds a new replica gets to become healthy, seconds a stop waits)."""
    props = resource.properties
    digest = L.spec_hash(props)
    count = int(props[L.SCALE_PROPERTY])
    rollout_timeout, stop_timeout = timeouts
    group = replicas(api, app, resource.key)
    good, stale = split(group, digest)
    for index in [i for i in good if i > count]:
        stale.append(good.pop(index))
    missing = [i for i in range(1, count + 1) if i not in good]
    if missing:
        _ensure_image(api, app, resource, say)
    if resource.replace_mode == "delete-before-create":
        remove_all(api, stale, stop_timeout, say)
        _create_many(api, app, resource, missing, say)
        return
    by_index: dict[int, list[Replica]] = {}
    for replica in stale:
        by_index.setdefault(replica.index, []).append(replica)
    serving = {i for i in missing if any(r.live for r in by_index.get(i, []))}
    fresh = [i for i in missing if i not in serving]  # nothing serves there: no need to roll
    remove_all(api, [r for i in fresh for r in by_index.pop(i, [])], stop_timeout, say)
    _create_many(api, app, resource, fresh, say)
    for index in sorted(serving):
        old = by_index.pop(index, [])
        name = L.container_name(app, resource.name, index, digest)
        remove_all(api, [r for r in old if r.name == name], stop_timeout, say)
        old = [r for r in old if r.name != name]
        ident = _create(api, app, resource, index, say)
        if old:
            say(f"waiting for {name} to become healthy before removing the replica it replaces")
            verdict = wait_ready(api, ident, rollout_timeout)
            if not verdict.ready:
                with suppress(Exception):
                    api.stop(ident, timeout=stop_timeout)
                raise ProviderError(
                    f"{resource.key}: new replica {name} did not become healthy ({verdict.message}); "
                    f"the old replica keeps serving and the new one is left stopped for its logs",
                    hint=f"see `multicloud logs {resource.name}`; the next apply tries again",
                )
        remove_all(api, old, stop_timeout, say)
    remove_all(api, [r for rest in by_index.values() for r in rest], stop_timeout, say)


def delete_service(api: Any, app: str, key: str, stop_timeout: int, say: Say) -> None:
    """Remove every container of a service resource; a failure leaves the rest labelled."""
    remove_all(api, replicas(api, app, key), stop_timeout, say)


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


def _create_many(api: Any, app: str, resource: Resource, indices: Sequence[int], say: Say) -> None:
    """Create replicas concurrently; raise the first failure after trying all."""
    if len(indices) <= 1:
        for index in indices:
            _create(api, app, resource, index, say)
        return
    with ThreadPoolExecutor(max_workers=min(4, len(indices)), thread_name_prefix="multicloud-docker-new") as pool:
        futures = [pool.submit(_create, api, app, resource, i, say) for i in indices]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


def _create(api: Any, app: str, resource: Resource, index: int, say: Say) -> str:
    ident = create_replica(api, app, resource, index)
    say(f"started {L.container_name(app, resource.name, index, L.spec_hash(resource.properties))}")
    return ident


def _ensure_image(api: Any, app: str, resource: Resource, say: Say) -> None:
    ref = str(resource.properties["image"])
    if ref.startswith(L.image_repository(app, resource.name) + ":"):
        images.require_built(api, ref)
    else:
        images.ensure_pulled(api, ref, say)
