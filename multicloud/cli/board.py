"""Where an apply stands, resource by resource, folded from the engine's events; times are
seconds since the apply began (the engine's own are per step). No rendering here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from multicloud.contract import Event

STATES = {
    "start": "running",
    "progress": "running",
    "waiting": "waiting",
    "retry": "retrying",
    "done": "done",
    "failed": "failed",
    "blocked": "blocked",
    "skipped": "unchanged",
}
"""The state a resource is in after an event of each kind (other kinds: running)."""
FINISHED = ("done", "unchanged", "failed", "blocked")
ORDER = ("done", "unchanged", "running", "waiting", "retrying", "pending", "failed", "blocked")
"""The states in the order the summary names them."""


@dataclass(frozen=True)
class Row:
    """One resource: its state, last message, and when (since the apply began) it started and finished."""

    resource: str
    state: str = "pending"
    message: str = ""
    started: float | None = None
    finished: float | None = None

    def elapsed(self, now: float) -> float | None:
        """Seconds from the apply's start to this resource's end (or to now while it runs); None before it starts."""
        if self.finished is not None:
            return self.finished
        return now if self.started is not None else None


class Board:
    """The rows of one apply, in plan order (resources first named by an event are added last);
    safe to update from the engine's threads while a display reads it."""

    def __init__(self, resources: Sequence[str] = (), *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.began = clock()
        self._lock = threading.Lock()
        self._rows = {key: Row(key) for key in resources}

    def now(self) -> float:
        """Seconds since the apply began."""
        return self.clock() - self.began

    def update(self, event: Event) -> Row:
        """Fold one event in; return the resource's row after it."""
        at = self.now()
        with self._lock:
            row = self._rows.get(event.resource, Row(event.resource))
            state = STATES.get(event.kind, "running")
            started = row.started
            if started is None and state != "blocked":  # the event's own time runs from its step's start
                started = max(0.0, at - event.elapsed)
            finished = at if state in FINISHED else None
            row = replace(row, state=state, message=event.message, started=started, finished=finished)
            self._rows[event.resource] = row
            return row

    def rows(self) -> list[Row]:
        """The rows now, in order."""
        with self._lock:
            return list(self._rows.values())

    def counts(self) -> dict[str, int]:
        """How many resources are in each state (every state of ORDER, zeros included)."""
        counts = dict.fromkeys(ORDER, 0)
        for row in self.rows():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: the non-zero counts by state and the time since the apply began."""
        counts = self.counts()
        parts = [f"{n} {state}" for state, n in counts.items() if n]
        total = sum(counts.values())
        if not total:
            return f"nothing to change · {self.now():.1f}s"
        return f"{total} resource{'s' if total != 1 else ''}: {', '.join(parts)} · {self.now():.1f}s"
