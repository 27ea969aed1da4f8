"""Cloud Run's autoscaler in the emulator: each revision's instances, started and stopped by load.

A revision keeps at least its min instances; a request goes to the instance serving the fewest
(below the revision's concurrency), to a new instance when every one is full and fewer than max
run (a cold start), or waits for a free slot when max run (429 after `QUEUE_WAIT`). An instance
above min that served nothing for `idle_seconds` is stopped, so a min-0 revision scales to zero.
Session affinity: every instance has an unguessable token the front sets as the GAESA cookie;
a request carrying one goes back to that instance while it runs and has room.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_docker.dataplane import DataPlane, Unit

Json = dict[str, Any]
DEFAULT_MAX = 100
IDLE_SECONDS = 60.0
"""How long an idle instance above min is kept (Cloud Run keeps them up to 15 minutes)."""
QUEUE_WAIT = 10.0
"""How long a request waits for a free instance at max instances before the front answers 429."""


@dataclass
class Instance:
    """One running instance of a revision: its data-plane unit key and its load."""

    key: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class Pool:
    """A revision's instances and its scaling bounds; `make(index)` is the unit of instance index."""

    revision: str
    port: int
    concurrency: int
    minimum: int
    maximum: int
    affinity: bool
    make: Callable[[int], Unit]
    instances: dict[int, Instance] = field(default_factory=dict)
    held: bool = False
    """A rollout's new revision before it serves: its instances are not stopped for being idle."""

    def free_index(self) -> int:
        """The lowest instance index not in use."""
        return next(i for i in range(len(self.instances) + 1) if i not in self.instances)


@dataclass(frozen=True)
class Lease:
    """One request's place on an instance; give it back with `Scaler.release`."""

    revision: str
    index: int
    key: str
    port: int
    token: str
    affinity: bool


def bounds(service: Json, revision: Json) -> tuple[int, int, int]:
    """(min, max, concurrency) of a revision: the larger of the revision's and the service's min,
    the revision's max (Cloud Run's 100 when unset, never below min) and its request concurrency."""
    scaling = revision.get("scaling") or {}
    minimum = max(int(scaling.get("minInstanceCount") or 0),
                  int((service.get("scaling") or {}).get("minInstanceCount") or 0))
    maximum = int(scaling.get("maxInstanceCount") or 0) or DEFAULT_MAX
    concurrency = int(revision.get("maxInstanceRequestConcurrency") or 0) or 80
    return minimum, max(maximum, minimum, 1), concurrency


class Scaler:
    """Every revision's pool of instances on one data plane; a thread stops idle instances."""

    def __init__(self, plane: DataPlane, idle_seconds: float = IDLE_SECONDS) -> None:
        self.plane = plane
        self.idle_seconds = idle_seconds
        self.queue_wait = QUEUE_WAIT
        self.on_stop: Callable[[str], None] = lambda key: None
        """Called with an instance's unit key just before it is stopped (its logs are read then)."""
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._reap_forever, name="cloudrun-scaler", daemon=True)
        self._thread.start()

    def ensure(self, pool: Pool, *, start: int) -> Pool:
        """Keep a revision's pool (bounds and unit factory replaced, running instances reapplied
        with it) and run at least `start` instances (capped by max); returns the pool kept."""
        with self._lock:
            current = self._pools.get(pool.revision)
            if current is not None:
                pool.instances = current.instances
            self._pools[pool.revision] = pool
            while len(pool.instances) < min(max(start, pool.minimum), pool.maximum):
                index = pool.free_index()
                pool.instances[index] = Instance(pool.make(index).key)
            units = [pool.make(i) for i in pool.instances]
            self._lock.notify_all()
        for unit in units:
            self.plane.apply(unit)
        return pool

    def drop(self, revision: str) -> None:
        """Stop every instance of a revision and forget it."""
        with self._lock:
            pool = self._pools.pop(revision, None)
            self._lock.notify_all()
        for instance in (pool.instances.values() if pool else ()):
            self._stop(instance.key)

    def revisions(self) -> set[str]:
        """The revisions that have a pool."""
        with self._lock:
            return set(self._pools)

    def keys(self, revision: str) -> list[str]:
        """The unit keys of a revision's instances."""
        with self._lock:
            pool = self._pools.get(revision)
            return [i.key for i in pool.instances.values()] if pool else []

    def owner(self, token: str, revisions: list[str]) -> str | None:
        """Which of these revisions runs the instance a session-affinity token names (None: none)."""
        with self._lock:
            for revision in revisions:
                pool = self._pools.get(revision)
                instances = pool.instances.values() if pool is not None and pool.affinity else ()
                if any(secrets.compare_digest(i.token, token) for i in instances):
                    return revision
        return None

    def lease(self, revision: str, token: str = "") -> Lease | None:
        """A place for one request on an instance of the revision (its affinity instance first),
        starting one when all are full and fewer than max run; None when the revision has no pool
        or no slot freed within `queue_wait`."""
        deadline = time.monotonic() + self.queue_wait
        with self._lock:
            while True:
                pool = self._pools.get(revision)
                if pool is None:
                    return None
                index = self._place(pool, token)
                if index is not None:
                    instance = pool.instances[index]
                    instance.in_flight += 1
                    instance.last_used = time.monotonic()
                    fresh = None
                    break
                if len(pool.instances) < pool.maximum:
                    index = pool.free_index()
                    fresh = pool.make(index)
                    instance = pool.instances[index] = Instance(fresh.key, in_flight=1)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(min(left, 0.5))
        if fresh is not None:
            self.plane.apply(fresh)
        return Lease(revision, index, instance.key, pool.port, instance.token, pool.affinity)

    @staticmethod
    def _place(pool: Pool, token: str) -> int | None:
        """The index of the instance a request goes to: the affinity one when it has room, else one
        of the least loaded below concurrency, at random; None when every one is full."""
        room = {i: inst for i, inst in pool.instances.items() if inst.in_flight < pool.concurrency}
        if pool.affinity and token:
            pinned = next((i for i, inst in room.items() if secrets.compare_digest(inst.token, token)), None)
            if pinned is not None:
                return pinned
        return min(room, key=lambda i: (room[i].in_flight, random.random()), default=None)

    def release(self, lease: Lease) -> None:
        """Give back a request's place; the instance is idle from now when it was its last."""
        with self._lock:
            pool = self._pools.get(lease.revision)
            instance = pool.instances.get(lease.index) if pool else None
            if instance is not None and instance.key == lease.key:
                instance.in_flight = max(0, instance.in_flight - 1)
                instance.last_used = time.monotonic()
            self._lock.notify_all()

    def reap(self) -> list[str]:
        """Stop the instances above each revision's min that have been idle for `idle_seconds`
        (the newest first); return their unit keys."""
        now = time.monotonic()
        stopped: list[str] = []
        with self._lock:
            for pool in (p for p in self._pools.values() if not p.held):
                for index in sorted(pool.instances, reverse=True):
                    instance = pool.instances[index]
                    idle = instance.in_flight == 0 and now - instance.last_used >= self.idle_seconds
                    if idle and len(pool.instances) > pool.minimum:
                        del pool.instances[index]
                        stopped.append(instance.key)
        for key in stopped:
            self._stop(key)
        return stopped

    def _stop(self, key: str) -> None:
        """Stop one instance, telling `on_stop` first (its failure does not keep the instance)."""
        try:
            self.on_stop(key)
        finally:
            self.plane.remove(key)

    def _reap_forever(self) -> None:
        while not self._stopping.wait(min(1.0, max(self.idle_seconds / 4, 0.1))):
            self.reap()

    def close(self) -> None:
        """Stop the reaper thread (instances are the data plane's to remove)."""
        self._stopping.set()
        self._thread.join(timeout=5)
