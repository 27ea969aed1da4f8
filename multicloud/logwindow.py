"""Which log history to show (`logs --since DURATION --tail N`): the rules every provider shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from multicloud.errors import UserError

T = TypeVar("T")

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment `--since` names: a duration back from now (`90s`, `10m`, `1h30m`, `2d`) or an
    ISO 8601 time (`2026-01-31T12:00:00Z`; no zone means UTC); UserError saying the forms if neither."""
    now = now or datetime.now(UTC)
    cleaned = text.strip()
    if cleaned and _PART.sub("", cleaned) == "":
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(cleaned))
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise UserError(f"--since {text}: longer ago than time began") from None
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--since {text!r}: not a duration (e.g. 90s, 10m, 1h30m, 2d) or an ISO time (2026-01-31T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last(items: Sequence[T], tail: int | None) -> list[T]:
    """The last `tail` items (all when tail is None, none when it is 0)."""
    if tail is None:
        return list(items)
    return list(items[len(items) - tail:]) if tail > 0 else []


def refuse_since(provider: str, since: datetime | None, why: str) -> None:
    """Raise UserError when `--since` is asked of a provider that cannot tell when a line was written."""
    if since is not None:
        raise UserError(f"the {provider} provider cannot apply --since: {why}", hint="use --tail N instead")
