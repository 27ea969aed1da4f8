"""Which emulator server an API call came through, and which data plane runs what was created
through each server: emulators in one process share moto's backends, and each runs only its own."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

_lock = threading.Lock()
_runners: dict[str, Any] = {}
_calling = threading.local()


def note_call(headers: Mapping[str, str] | None) -> None:
    """Remember the server port the current API call came to (its Host header's), for this thread."""
    _calling.port = str((headers or {}).get("Host") or "").rpartition(":")[2]


def calling_port() -> str:
    """The port of the emulator server the current API call came to ('' in process)."""
    return str(getattr(_calling, "port", ""))


def port_of(server: str | int) -> str:
    """The port of an emulator server given as its endpoint URL (AWS_ENDPOINT_URL) or its port."""
    return str(server).rstrip("/").rpartition(":")[2]


def attach_runner(port: int, runner: Any) -> None:
    """Hand what is created through the server on `port` to a data plane's scheduler (None detaches it)."""
    with _lock:
        if runner is None:
            _runners.pop(str(port), None)
        else:
            _runners[str(port)] = runner


def runner_of(created: Any) -> Any:
    """The scheduler of the server an object was created through (`multicloud_server`), or None."""
    with _lock:
        return _runners.get(str(getattr(created, "multicloud_server", "")))
