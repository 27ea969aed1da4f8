"""Parsing of memory sizes ("512Mi", "1Gi", "1G") and durations ("10s", "1m30s", 5)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "t": 1000**4,
    "ti": 1024**4,
    "tb": 1000**4,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
MEMORY_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]([iI]|[bB])?)?\s*$"
"""The memory sizes parse_memory reads, as a JSON Schema pattern."""
DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h))+\s*$"
"""The durations parse_duration reads, as a JSON Schema pattern."""
MAX_MEMORY = 1024**4
"""1Ti: more than any target gives one replica; larger numbers are mistakes (and overflow C longs)."""
MAX_DURATION = 7 * 86400.0
"""A week: longer intervals and timeouts are mistakes (and overflow the engines' nanosecond fields)."""


def parse_memory(value: object, maximum: int = MAX_MEMORY) -> int:
    """Return a memory (or storage) size in bytes, at most `maximum`; raise ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 512Mi or 1Gi")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _MEMORY.match(value)
        if match and match.group(2).lower() in _MEMORY_UNITS:
            size = Decimal(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]
            if size > maximum:
                raise ValueError(f"{value.strip()} is more than the largest size here, {format_memory(maximum)}")
            return int(size)
    raise ValueError(f"{value!r} is not a memory size; use a number of bytes or e.g. 512Mi, 1Gi")


def format_memory(size: int) -> str:
    """Return the shortest exact binary-unit form of a byte count (536870912 -> 512Mi)."""
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def parse_duration(value: object) -> float:
    """Return a duration in seconds from 10, "10s", "1m30s" or "500ms"; raise ValueError."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or e.g. 10s, 1m30s")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if value > MAX_DURATION or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"{value!r} is longer than the longest duration, {MAX_DURATION:g} seconds (a week)")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            scale = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
            seconds = sum((Decimal(n) * scale[u] for n, u in parts), Decimal(0))
            if seconds > MAX_DURATION:
                raise ValueError(f"{text} is longer than the longest duration, {MAX_DURATION:g} seconds (a week)")
            return float(seconds)
    raise ValueError(f"{value!r} is not a duration; use a number of seconds or e.g. 10s, 1m30s")
