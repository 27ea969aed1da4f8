"""Starting an emulator plugin by name, with or without its data plane, and stopping it after use.

`run=True` asks the emulator to run the workload (real containers on a reachable Docker engine);
an emulator whose factory takes no `run` argument serves its API only, and says so in a note.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from multicloud.contract import Emulator, RunningEmulator
from multicloud.errors import PluginError
from multicloud.registry import EMULATORS_GROUP, load_factory


def start_emulator(name: str, *, run: bool = True, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
    """Start the emulator registered as `name`; raises PluginError for a broken plugin (nothing started)."""
    factory = load_factory(name, EMULATORS_GROUP)
    takes_run = _accepts_run(factory)
    emulator = factory(run=run) if takes_run else factory()
    if not isinstance(emulator, Emulator):
        raise PluginError(f"emulator plugin {name!r} does not follow the Emulator contract")
    running = emulator.start(host=host, port=port)
    if run and not takes_run:
        running = replace(running, notes=(*running.notes, "no data plane: this emulator serves its API only"))
    return running


@contextmanager
def emulator(name: str, *, run: bool = True, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningEmulator]:
    """A running emulator for the block; stopped (its containers removed) when the block ends."""
    running = start_emulator(name, run=run, host=host, port=port)
    try:
        yield running
    finally:
        running.stop()


def _accepts_run(factory: object) -> bool:
    try:
        return "run" in inspect.signature(factory).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def start_data_plane(name: str) -> tuple[Any, str | None]:
    """A started data plane (`multicloud_docker.dataplane.DataPlane`) for emulator `name`, or None
    and why there is none (multicloud-docker not installed, no Docker engine reachable)."""
    try:
        from multicloud_docker.dataplane import DataPlane, engine_reachable
    except ImportError:
        return None, "no data plane: install multicloud-docker to run the workload's containers (API only)"
    if not engine_reachable():
        return None, "no data plane: no Docker engine reachable (API only); start one and restart the emulator"
    return DataPlane(name).start(), None


def loopback_address(key: str) -> str:
    """A loopback address of its own for `key` (127.x.y.z, never in 127.0.0.0/16), stable for the key:
    where an emulator publishes what a cloud name stands for. Keys that name the emulator's server
    (its port) keep two live emulators apart."""
    digest = hashlib.sha256(key.encode()).digest()
    return f"127.{1 + digest[0] % 254}.{digest[1]}.{1 + digest[2] % 254}"
