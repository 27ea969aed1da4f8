"""Parsing of memory sizes ("512Mi", "1Gi", "1G") and durations ("10s", "1m30s", 5)."""

from __future__ import annotations

import re

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
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_memory(value: object) -> int:
    """Return a memory size in bytes; raise ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 512Mi or 1Gi")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _MEMORY.match(value)
        if match and match.group(2).lower() in _MEMORY_UNITS:
            return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
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
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
            return sum(float(n) * scale[u] for n, u in parts)
    raise ValueError(f"{value!r} is not a duration; use a number of seconds or e.g. 10s, 1m30s")
