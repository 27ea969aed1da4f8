"""The awslogs log driver of the emulated tasks: each container's output goes to its CloudWatch
Logs stream `PREFIX/CONTAINER/TASK-ID` in the emulated Logs service, about once a second and
once more when the task stops, so `multicloud logs` (FilterLogEvents) reads what ran."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_aws.dataplane.tasks import EmulatedTask

BATCH = 5000
"""Events per PutLogEvents (CloudWatch's limit is 10,000)."""


def log_streams(task: EmulatedTask, definition: Any) -> dict[str, tuple[str, str, str]]:
    """Container name -> (region, group, stream) for the task's containers that use awslogs."""
    found: dict[str, tuple[str, str, str]] = {}
    for container in definition.container_definitions:
        config = container.get("logConfiguration") or {}
        options: Mapping[str, str] = config.get("options") or {}
        if config.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
            continue
        prefix = options.get("awslogs-stream-prefix")
        name = str(container.get("name"))
        stream = f"{prefix}/{name}/{task.id}" if prefix else task.id
        found[name] = (str(options.get("awslogs-region") or task.region_name), str(options["awslogs-group"]), stream)
    return found


def missing_group(task: EmulatedTask, streams: Mapping[str, tuple[str, str, str]]) -> str | None:
    """Why the task cannot start when a log group it names does not exist (ECS fails it), else None."""
    from moto.logs.models import logs_backends

    for region, group, _ in streams.values():
        if group not in logs_backends[task.account_id][region].groups:
            return ("ResourceInitializationError: failed to validate logger args: create stream has been retried "
                    f"1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified "
                    f"log group {group} does not exist.")
    return None


class LogShipper:
    """Copies containers' new output into their streams; one copy at a time."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], int] = {}

    def ship(self, task: EmulatedTask) -> None:
        """Send what the task's containers printed since the last call (the driver's errors are dropped)."""
        from moto.logs.models import logs_backends

        with self._lock:
            for container, (region, group, stream) in task.log_streams.items():
                last = self._last.get((task.key, container), 0)
                text = self.plane.logs(task.key, container, timestamps=True, since=last / 1e9 if last else None)
                events = []
                for line in text.splitlines():
                    stamp, _, message = line.partition(" ")
                    nanos = _nanos(stamp)
                    if nanos is not None and nanos > last:
                        events.append({"timestamp": nanos // 1_000_000, "message": message})
                        last = nanos
                if not events:
                    continue
                self._last[(task.key, container)] = last
                logs = logs_backends[task.account_id][region]
                try:
                    if stream not in logs.groups[group].streams:
                        logs.create_log_stream(group, stream)
                    for start in range(0, len(events), BATCH):
                        logs.put_log_events(group, stream, events[start:start + BATCH])
                except Exception:  # noqa: S112  the group was deleted under a running task: its lines are lost
                    continue

    def forget(self, task: EmulatedTask) -> None:
        """Drop what is remembered of a stopped task."""
        with self._lock:
            for container in task.log_streams:
                self._last.pop((task.key, container), None)


def _nanos(stamp: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return None
    digits = (fraction + "000000000")[:9]
    return int(seconds) * 1_000_000_000 + int(digits) if digits.isdigit() else None
