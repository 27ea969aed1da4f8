"""The telemetry payload schema and its validation; the device id comes from the topic only.

A payload is a JSON object, at most 1 KiB:
    {"seq": 17, "ts": 1732800000.25, "temperature": 21.5, "humidity": 40.0, "battery": 87}
- seq (required): integer 0 ≤ seq < 2**63, unique per device (the message id; redeliveries with
  the same seq are stored once)
- ts (required): Unix seconds (number) when the device took the reading, 2000-01-01 ≤ ts < 2100-01-01
- temperature (required): °C, -100 ≤ t ≤ 200
- humidity (optional): %, 0 ≤ h ≤ 100;  battery (optional): %, 0 ≤ b ≤ 100
Other keys are rejected. Numbers must also fit their column: the three measurements are stored as
`real` (float4), so a value that rounds to zero there (1e-50) is rejected as "range", as are NaN and
infinities (JSON's NaN/Infinity extensions) and integers beyond bigint for seq.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from datetime import UTC, datetime

MAX_BYTES = 1024
TS_MIN, TS_MAX = 946_684_800.0, 4_102_444_800.0
ALLOWED = frozenset({"seq", "ts", "temperature", "humidity", "battery"})
TOPIC_DEVICE = re.compile(r"\Adevices/([a-z0-9][a-z0-9-]{0,62})/telemetry\Z")
FLOAT4 = struct.Struct("f")
FLOAT4_MIN_NORMAL = 1.1754943508222875e-38  # below it float4 is subnormal, and may round to zero
TEMPERATURE_MIN, TEMPERATURE_MAX, PERCENT_MAX = -100.0, 200.0, 100.0
SEQ_LIMIT = 2**63
# JSON's number grammar exactly (possessive: what follows a number is never part of one)
_NUMBER = rb"(-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][-+]?[0-9]++)?+)"
# The form devices send (json.dumps of the documented keys in the documented order, spaces optional): its values
# are read without a JSON decoder. No duplicate keys, escapes, nesting or literals can match it.
CANONICAL = re.compile(
    rb'\{"seq": ?(0|[1-9][0-9]*+), ?"ts": ?' + _NUMBER + rb', ?"temperature": ?' + _NUMBER
    + rb'(?:, ?"humidity": ?' + _NUMBER + rb')?(?:, ?"battery": ?' + _NUMBER + rb")?\}"
)
# a measurement's text -> its value and repr (values recur); a dict read inline, not functools.lru_cache: that
# costs ~0.2 µs more per row here (bench/ingest_parse.py)
_MEASURES: dict[bytes, tuple[float, str]] = {}
MEASURES_CACHED = 4096
_ABSENT = (1.0, "")  # an optional measurement not sent: passes every check, written as ''


class Rejected(ValueError):
    """A message that is not a valid reading; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _number(body: dict[str, object], key: str, low: float, high: float, required: bool) -> float | None:
    value = body.get(key)
    if value is None:
        if required:
            raise Rejected("schema", f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Rejected("schema", f"{key} must be a number in [{low}, {high}]")
    return float(value)


def _real(body: dict[str, object], key: str, low: float, high: float, required: bool) -> float | None:
    """A measurement stored as PostgreSQL `real`: in range, and not rounding to zero in float4 (underflow)."""
    value = _number(body, key, low, high, required)
    if value and abs(value) < FLOAT4_MIN_NORMAL and not FLOAT4.unpack(FLOAT4.pack(value))[0]:
        raise Rejected("range", f"{key} underflows the real column")
    return value


@functools.lru_cache(maxsize=16384)  # the topics seen last (a device sends many readings); refusals are not kept
def device_of(topic: str) -> str:
    """Return the device id in `devices/<id>/telemetry`, or raise Rejected."""
    match = TOPIC_DEVICE.match(topic)
    if match is None:
        raise Rejected("topic", "topic is not devices/<id>/telemetry")
    return match.group(1)


def timestamp_text(seconds: float) -> str:
    """Unix seconds as an ISO 8601 UTC timestamp with microseconds (rounded as datetime.fromtimestamp rounds),
    as PostgreSQL reads a timestamptz; fixed width for years of four digits, so such texts sort as the instants
    they name."""
    whole = math.floor(seconds)
    micro = round((seconds - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    return "%s.%06d+00:00" % (_second_text(whole), micro)  # noqa: UP031 (cheaper than the f-string here)


@functools.lru_cache(maxsize=4096)
def _second_text(whole: int) -> str:
    """A whole Unix second as ISO 8601 UTC date and time (readings arrive many to a second)."""
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def row_line(device_id: str, payload: bytes, received_at: float | str) -> tuple[str, float]:
    """Validate a payload; return its row as one line of COPY text (tab-separated, '' for a missing value,
    timestamps as timestamp_text), and its ts. `received_at` may be given already as timestamp_text."""
    if len(payload) > MAX_BYTES:
        raise Rejected("too_large", f"payload over {MAX_BYTES} bytes")
    received = received_at if isinstance(received_at, str) else timestamp_text(received_at)
    match = CANONICAL.fullmatch(payload)
    row = None if match is None else canonical_row(device_id, match, received)
    return row if row is not None else decoded_row(device_id, payload, received)


def canonical_row(device_id: str, match: re.Match[bytes], received: str) -> tuple[str, float] | None:
    """row_line for a payload in the CANONICAL form, without a JSON decoder; None (decode it) unless every value
    is clearly valid: zeros and values near float4's underflow are left to the decoder (JSON's -0 is the integer 0,
    and underflow needs a closer look)."""
    seq, ts_text, temperature_text, humidity_text, battery_text = match.groups()
    ts, measures = float(ts_text), _MEASURES
    temperature, temperature_repr = measures.get(temperature_text) or _measure(temperature_text)
    humidity, humidity_repr = _ABSENT if humidity_text is None else measures.get(humidity_text) or _measure(
        humidity_text)
    battery, battery_repr = _ABSENT if battery_text is None else measures.get(battery_text) or _measure(battery_text)
    if ((len(seq) < 19 or int(seq) < SEQ_LIMIT) and TS_MIN <= ts <= TS_MAX  # 18 digits are always < 2**63
            and TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX and abs(temperature) >= FLOAT4_MIN_NORMAL
            and FLOAT4_MIN_NORMAL <= humidity <= PERCENT_MAX and FLOAT4_MIN_NORMAL <= battery <= PERCENT_MAX):
        return (f"{device_id}\t{seq.decode()}\t{timestamp_text(ts)}\t{temperature_repr}\t{humidity_repr}\t"
                f"{battery_repr}\t{received}\n"), ts
    return None


def _measure(text: bytes) -> tuple[float, str]:
    """A measurement's value and repr, remembered (the cache is emptied when full)."""
    value = float(text)
    if len(_MEASURES) >= MEASURES_CACHED:
        _MEASURES.clear()
    found = _MEASURES[text] = value, repr(value)
    return found


def decoded_row(device_id: str, payload: bytes, received: str) -> tuple[str, float]:
    """row_line through the JSON decoder: any payload, every rejection reason."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: ~1,000 nested arrays fit in MAX_BYTES
        raise Rejected("json", "payload is not JSON") from exc
    if not isinstance(body, dict):
        raise Rejected("schema", "payload is not a JSON object")
    extra = body.keys() - ALLOWED
    if extra:
        raise Rejected("schema", f"unknown keys: {', '.join(sorted(extra))[:100]}")
    seq = body.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < SEQ_LIMIT:
        raise Rejected("schema", "seq must be an integer in [0, 2**63)")
    ts = _number(body, "ts", TS_MIN, TS_MAX, True) or 0.0
    temperature = _real(body, "temperature", TEMPERATURE_MIN, TEMPERATURE_MAX, True)
    humidity = _real(body, "humidity", 0.0, PERCENT_MAX, False)
    battery = _real(body, "battery", 0.0, PERCENT_MAX, False)
    fields = (device_id, str(seq), timestamp_text(ts), repr(temperature), _opt(humidity), _opt(battery), received)
    return "\t".join(fields) + "\n", ts


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)
