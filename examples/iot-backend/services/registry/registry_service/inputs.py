"""Checks on what callers send: ids, storable text, bounded metadata, time instants, short validation errors."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from pydantic.error_wrappers import ErrorDict  # pydantic 1 defines it for type checkers only

DEVICE_ID_RULE = "^[a-z0-9][a-z0-9-]{0,62}$"
DEVICE_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")  # \Z: "$" would also accept a trailing newline
MAX_NAME_CHARS = 200
MAX_METADATA_BYTES = 4096  # as compact JSON, UTF-8
MAX_METADATA_DEPTH = 8
MAX_COMMAND_CHARS = 64
MAX_ARGS_BYTES = 4096
MAX_OFFSET = 10_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
NUMBER = re.compile(r"\A[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL text and jsonb hold neither NUL nor lone surrogates
EXCERPT = 80


def excerpt(value: object) -> str:
    """A short printable rendering of a caller's value, for error messages (never the whole value)."""
    text = repr(value)
    return text if len(text) <= EXCERPT else f"{text[:EXCERPT]}… ({len(text)} chars)"


def check_device_id(device_id: str) -> str:
    """Return the id if it is a valid device id; raise 422 otherwise."""
    if not DEVICE_ID.match(device_id):
        raise HTTPException(422, f"device id {excerpt(device_id)} must match {DEVICE_ID_RULE}")
    return device_id


def check_text(field: str, value: str, max_chars: int) -> str:
    """Return the text if the database can store it and it is short enough; raise ValueError otherwise."""
    if len(value) > max_chars:
        raise ValueError(f"{field} is longer than {max_chars} characters")
    if UNSTORABLE.search(value):
        raise ValueError(f"{field} holds a NUL or an unpaired surrogate, which cannot be stored")
    return value


def check_json(field: str, value: Any, max_bytes: int) -> Any:
    """Return a JSON value if storable (finite numbers, storable text, bounded depth and size); else ValueError."""
    walk(field, value, 0)
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError as exc:
        raise ValueError(f"{field} holds a number JSON cannot carry (NaN or infinity)") from exc
    if len(encoded) > max_bytes:
        raise ValueError(f"{field} is larger than {max_bytes} bytes as JSON")
    return value


def text_rule(field: str, max_chars: int) -> Callable[[str], str]:
    """A pydantic validator for a text field: storable and at most max_chars long."""
    return lambda value: check_text(field, value, max_chars)


def json_rule(field: str, max_bytes: int) -> Callable[[Any], Any]:
    """A pydantic validator for a JSON field: storable, bounded in depth and size."""
    return lambda value: check_json(field, value, max_bytes)


def walk(field: str, value: Any, depth: int) -> None:
    """Check every key and string in a JSON value for storable text, and its nesting depth."""
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"{field} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        check_text(field, value, MAX_METADATA_BYTES)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field} holds a number JSON cannot carry (NaN or infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(f"{field} key", key, MAX_METADATA_BYTES)
            walk(field, item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            walk(field, item, depth + 1)


def instant(name: str, value: str | None) -> datetime | None:
    """Parse a time given as ISO 8601 (UTC when no offset) or Unix seconds; raise 422 naming the accepted forms."""
    if value is None:
        return None
    text = value.strip()
    if NUMBER.match(text):
        seconds = float(text)
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise HTTPException(422, f"{name}={excerpt(text)} is out of range: Unix seconds must lie between"
                                f" {MIN_SECONDS} and {MAX_SECONDS} (years 1 to 9999); milliseconds are not accepted")
        return EPOCH + timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise HTTPException(422, f"{name}={excerpt(text)} is neither ISO 8601 (2026-01-31T12:00:00Z) nor Unix seconds"
                            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_error(error: ErrorDict) -> dict[str, Any]:
    """One validation error without the caller's input (pydantic's context can hold the whole body)."""
    return {
        "loc": [part if isinstance(part, int) else str(part)[:EXCERPT] for part in list(error.get("loc", ()))[:8]],
        "msg": str(error.get("msg", ""))[:200],
        "type": str(error.get("type", ""))[:80],
    }


async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """422 with at most 10 short errors: never an echo of the request body."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    content: dict[str, Any] = {"detail": [short_error(e) for e in errors[:10]]}
    if len(errors) > 10:
        content["more_errors"] = len(errors) - 10
    return JSONResponse(status_code=422, content=content)
