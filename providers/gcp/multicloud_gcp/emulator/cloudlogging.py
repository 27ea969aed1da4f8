"""The emulated Cloud Logging (API v2 `entries.list`): what the data plane's instances really printed.

Cloud Run sends each line a container writes to Cloud Logging as a LogEntry of resource type
`cloud_run_revision` (labels project_id, service_name, revision_name, configuration_name,
location), log `run.googleapis.com/stdout`, the instance's ID in `labels.instanceId`. Here the
lines are read from the instances' containers (`docker logs` with timestamps) whenever entries
are listed and just before an instance stops, so they outlive it. Filters take the query
language's comparisons (`=`, `!=`, `>`, `>=`, `<`, `<=`, `:`) on resource.type, resource.labels.*,
labels.*, logName, severity, textPayload and timestamp, joined by AND; anything else is refused
with INVALID_ARGUMENT rather than misread.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from multicloud_gcp.emulator.faults import ApiError

Json = dict[str, Any]
SERVICE = "google.logging.v2.LoggingServiceV2"
RESOURCE_TYPE = "cloud_run_revision"
TERM = re.compile(r'^([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|!=|=|>|<|:)\s*("(?:[^"\\]|\\.)*"|\S+)$')
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')
FIELDS = ("resource.type", "logName", "severity", "textPayload", "timestamp", "insertId")


STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?")


def _stamp(text: str) -> datetime:
    """A timestamp of a filter or an entry (nanoseconds cut to microseconds); INVALID_ARGUMENT
    when it is not RFC 3339."""
    match = STAMP.fullmatch(text.strip().strip('"'))
    if match is None:
        raise ApiError("INVALID_ARGUMENT", f"Invalid timestamp {text!r} in the filter")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = match.group(3) or "Z"
    offset = "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{offset}")


def _terms(text: str) -> list[tuple[str, str, str]]:
    """(field, operator, value) of each AND-ed comparison of a filter; INVALID_ARGUMENT otherwise."""
    tokens = TOKEN.findall(text)
    terms, current = [], ""
    for word in [*tokens, "AND"]:
        if word == "AND":
            if not current:
                raise ApiError("INVALID_ARGUMENT", f"Unparseable filter: {text!r}")
            match = TERM.match(current.strip())
            known = match is not None and (
                match.group(1) in FIELDS or match.group(1).startswith(("resource.labels.", "labels."))
            )
            if match is None or not known:
                raise ApiError("INVALID_ARGUMENT", f"Unsupported filter term {current.strip()!r} (the emulator "
                               "takes FIELD OP VALUE terms joined by AND)")
            value = match.group(3)
            if value.startswith('"'):
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            terms.append((match.group(1), match.group(2), value))
            current = ""
        elif word in ("OR", "NOT") or word.startswith(("(", "-")):
            raise ApiError("INVALID_ARGUMENT", f"Unsupported filter operator {word!r} in {text!r} (only AND)")
        else:
            current += word if not current or current[-1] in "=<>:!" or word[0] in "=<>:!" else f" {word}"
    return terms


def _field(entry: Json, path: str) -> str | None:
    """An entry's value at a dotted field path (None when absent)."""
    value: Any = entry
    for part in path.split(".") if not path.startswith(("resource.labels.", "labels.")) else _label_path(path):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return str(value)


def _label_path(path: str) -> list[str]:
    """resource.labels.KEY / labels.KEY split so that KEY may hold dots."""
    if path.startswith("resource.labels."):
        return ["resource", "labels", path.removeprefix("resource.labels.")]
    return ["labels", path.removeprefix("labels.")]


def matches(entry: Json, terms: Iterable[tuple[str, str, str]]) -> bool:
    """True when an entry satisfies every comparison."""
    for field, operator, wanted in terms:
        found = _field(entry, field)
        if field == "timestamp":
            if found is None:
                return False
            left, right = _stamp(found), _stamp(wanted)
            ok = {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
                  "<": left < right, "<=": left <= right, ":": left == right}[operator]
        elif operator == "=":
            ok = found == wanted
        elif operator == "!=":
            ok = found != wanted
        elif operator == ":":
            ok = found is not None and wanted.lower() in found.lower()
        else:
            ok = found is not None and {">": found > wanted, ">=": found >= wanted, "<": found < wanted,
                                        "<=": found <= wanted}[operator]
        if not ok:
            return False
    return True


class CloudLogging:
    """Log entries of every instance the data plane ran, collected from its containers."""

    def __init__(self) -> None:
        self._entries: list[Json] = []
        self._seen: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        self.sources: Callable[[], list[tuple[str, Json]]] = list
        """Returns (unit key, labels) of every running instance: service, revision, location, project."""
        self.reader: Callable[[str], list[tuple[str, str, str]]] = lambda key: []
        """Returns (member, container ID, `docker logs --timestamps` text) per container of a unit."""

    def collect(self, key: str | None = None, labels: Json | None = None) -> None:
        """Take the lines not taken yet from one instance (or from every running one)."""
        pairs = [(key, labels or {})] if key is not None else self.sources()
        for unit, resource in pairs:
            for member, container, text in self.reader(unit):
                self._take(unit, resource, member, container, text)

    def _take(self, unit: str, resource: Json, member: str, container: str, text: str) -> None:
        lines = text.splitlines()
        with self._lock:
            start = self._seen.get((unit, member, container), 0)
            self._seen[(unit, member, container)] = len(lines)
            for index, line in enumerate(lines[start:], start):
                stamp, _, message = line.partition(" ")
                digest = hashlib.sha256(f"{container}/{index}".encode()).hexdigest()[:20]
                project = resource.get("project_id", "")
                self._entries.append({
                    "logName": f"projects/{project}/logs/run.googleapis.com%2Fstdout",
                    "resource": {"type": RESOURCE_TYPE, "labels": dict(resource)},
                    "textPayload": message,
                    "timestamp": stamp,
                    "receiveTimestamp": stamp,
                    "severity": "DEFAULT",
                    "insertId": digest,
                    "labels": {"instanceId": hashlib.sha256(unit.encode()).hexdigest()[:32], "container": member},
                })

    def list_entries(self, names: list[str], filter_text: str, order: str, page_size: int, token: str) -> Json:
        """entries.list: the entries of the named projects that match, in timestamp order."""
        projects = [n.removeprefix("projects/") for n in names if re.fullmatch(r"projects/[^/]+", n)]
        if not names or len(projects) != len(names):
            raise ApiError("INVALID_ARGUMENT", "resourceNames must name one or more projects/PROJECT_ID",
                           (("resource_names", "required"),))
        order = order.strip().lower() or "timestamp asc"
        if order not in ("timestamp asc", "timestamp desc"):
            raise ApiError("INVALID_ARGUMENT", f"orderBy must be 'timestamp asc' or 'timestamp desc', not {order!r}")
        terms = _terms(filter_text) if filter_text.strip() else []
        self.collect()
        with self._lock:
            found = [e for e in self._entries if e["resource"]["labels"].get("project_id") in projects]
        found = [e for e in found if matches(e, terms)]
        found.sort(key=lambda e: _stamp(e["timestamp"]), reverse=order.endswith("desc"))
        size = page_size if 0 < page_size <= 1000 else 50
        start = int(token) if token.isdigit() else 0
        page: Json = {"entries": copy.deepcopy(found[start : start + size])}
        if start + size < len(found):
            page["nextPageToken"] = str(start + size)
        return page


def handlers(logging: CloudLogging, request: Json) -> dict[str, tuple[str, Any]]:
    """method -> (resource, call) for the Cloud Logging methods the emulator serves."""
    names = [str(n) for n in request.get("resourceNames") or []]
    return {
        "ListLogEntries": (",".join(names), lambda: logging.list_entries(
            names, str(request.get("filter", "")), str(request.get("orderBy", "")),
            int(request.get("pageSize") or 0), str(request.get("pageToken") or ""))),
    }
