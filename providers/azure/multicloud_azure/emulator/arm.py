"""What every emulated ARM resource provider shares: injected faults, long-running operations,
the request log, and ARM's ways of writing times and locations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class Fault:
    """An injected failure: the next `times` matching requests get `status` (or are slowed)."""

    status: int = 500
    times: int = 1
    method: str | None = None
    path_contains: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    code: str = ""

    def matches(self, method: str, path: str) -> bool:
        """True when this fault applies to a request."""
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class Operation:
    """A long-running operation as Azure-AsyncOperation reports it."""

    id: str
    kind: str
    group: tuple[str, str, str]
    location: str
    started: float
    done_at: float
    failed: str | None = None


@dataclass
class RequestRecord:
    """One request the emulator answered."""

    method: str
    path: str
    status: int
    at: float


def now_iso() -> str:
    """Wall-clock time as ARM writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def location_name(value: str) -> str:
    """A location as ARM normalises it ('West Europe' -> 'westeurope')."""
    return value.replace(" ", "").lower()


class RequestLog:
    """Injected faults and the log of answered requests (with watchers), as the ARM server uses them."""

    lock: threading.RLock
    clock: Callable[[], float]
    faults: list[Fault]
    requests: list[RequestRecord]
    watchers: list[Callable[[str, str, int], None]]

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the next matching requests."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return and consume the first armed fault matching a request, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times > 0]
            return None

    def record(self, method: str, path: str, status: int) -> None:
        """Log an answered request and tell the watchers."""
        with self.lock:
            self.requests.append(RequestRecord(method, path, status, self.clock()))
            watchers = list(self.watchers)
        for watcher in watchers:
            watcher(method, path, status)

    def count(self, method: str, path_contains: str = "") -> int:
        """How many requests of a method (on paths containing a text) were answered."""
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and path_contains in r.path)
