"""Shapes the Cloud Run emulator's bodies share: timestamps, conditions and pages of a listing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from multicloud_gcp.emulator.faults import ApiError

Json = dict[str, Any]


def now() -> str:
    """Now, as an RFC 3339 timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def condition(kind: str, state: str, message: str = "") -> Json:
    """A Cloud Run condition in JSON form."""
    found = {"type": kind, "state": state, "lastTransitionTime": now()}
    if state == "CONDITION_FAILED":
        found.update(message=message, severity="ERROR")
    elif message:
        found["message"] = message
    return found


def page(names: list[str], source: dict[str, Json], key: str, page_size: int, token: str) -> Json:
    """One page of named items and the token of the next; INVALID_ARGUMENT for a bad token."""
    size = page_size if 0 < page_size <= 1000 else 100
    try:
        start = int(token) if token else 0
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token {token!r}") from None
    found: Json = {key: [copy.deepcopy(source[n]) for n in names[start : start + size]]}
    if start + size < len(names):
        found["nextPageToken"] = str(start + size)
    return found
