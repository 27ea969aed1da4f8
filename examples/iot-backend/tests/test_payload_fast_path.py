"""The payload fast path (a regex for the form devices send) accepts exactly what the JSON decoder accepts and
writes byte-identical rows; whatever it does not take, the decoder judges, with the same reasons."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "ingestion"))

from ingestion_service.payload import CANONICAL, MAX_BYTES, Rejected, canonical_row, decoded_row, row_line

RECEIVED = "2024-11-28T13:20:01.500000+00:00"
KEYS = ("seq", "ts", "temperature", "humidity", "battery")
SEQS = ["0", "1", "17", "-0", "-1", "01", "1.0", "1e3", "true", "null", '"7"', "9223372036854775807",
        "9223372036854775808", "9" * 40, "1732800000123456"]
NUMBERS = [
    "0", "-0", "0.0", "-0.0", "0e0", "-0E-0", "1", "20", "20.5", "21.50", "-7.25", "-100", "-100.0", "-100.00001",
    "-99.99999999999999999", "200", "200.0", "200.00000000000001", "200.0000001", "100", "100.0",
    "100.00000000000001", "100.0000001", "1e2", "1E2", "1e+2", "1e-2", "2.5e1", "1e-50", "-1e-50", "8e-46",
    "7e-46", "1.1754943508222875e-38", "1.1754942e-38", "-1.1754943508222875e-38", "1.2e-38", "5e-324", "2e-308",
    "946684800", "946684799.9999999", "946684800.0000001", "4102444800", "4102444800.0", "4102444800.0000001",
    "4102444799.9999995", "1732800000.25", "1732800000.9999996", "1.7328e9", "1e400", "-1e400", "NaN", "Infinity",
    "-Infinity", "true", "false", "null", '"20"', "[20]", "{}", "01", "1.", ".5", "+1", "1e", "- 1", "1_0",
    "9" * 400, "123456789012345678901234567890", "-" + "9" * 30, "0x10", "\u0661",
]


def outcome(call: object) -> object:
    """A row, or the rejection's reason and text."""
    try:
        return call()  # type: ignore[operator]
    except Rejected as exc:
        return ("rejected", exc.reason, str(exc))


def both(payload: bytes) -> tuple[object, object]:
    """row_line (fast path first) and the decoder alone, on one payload."""
    return (outcome(lambda: row_line("dev-1", payload, RECEIVED)),
            outcome(lambda: decoded_row("dev-1", payload, RECEIVED)))


def compose(values: dict[str, str], colon: str = ": ", comma: str = ", ") -> bytes:
    """A JSON object written by hand from value texts, in the given key order."""
    return ("{" + comma.join(f'"{k}"{colon}{v}' for k, v in values.items()) + "}").encode()


def generated(rng: random.Random, n: int) -> list[bytes]:
    """Payloads around the canonical form: value texts from the edges, spacing, key sets and orders, duplicates,
    escapes, and random byte damage."""
    def number(low: float, high: float) -> str:
        if rng.random() < 0.3:
            return rng.choice(NUMBERS)
        value = rng.uniform(low, high)
        return rng.choice([repr(value), repr(round(value, rng.randint(0, 3))), str(int(value)), f"{value:e}"])

    out: list[bytes] = []
    for _ in range(n):
        values = {"seq": rng.choice(SEQS) if rng.random() < 0.3 else str(rng.randrange(2**64)),
                  "ts": number(9e8, 4.2e9), "temperature": number(-110, 210)}
        for key in ("humidity", "battery"):
            if rng.random() < 0.6:
                values[key] = number(-5, 105)
        if rng.random() < 0.1:
            keys = list(values)
            rng.shuffle(keys)
            values = {k: values[k] for k in keys}
        colon, comma = rng.choice([(": ", ", "), (":", ","), (" : ", " , "), (":\t", ",\n"), (": ", ",")])
        text = compose(values, colon, comma)
        roll = rng.random()
        if roll < 0.05:  # a duplicate key: json.loads keeps the last one
            key = rng.choice(KEYS)
            text = text[:-1] + f', "{key}": {rng.choice(NUMBERS)}}}'.encode()
        elif roll < 0.08:
            text = text.replace(b'"seq"', b'"s\\u0065q"').replace(b'"ts"', b'"\\u0074s"')
        elif roll < 0.1:
            text = rng.choice([b" ", b"\n", b"\xef\xbb\xbf"]) + text + rng.choice([b"", b" ", b"\n"])
        elif roll < 0.12:
            text = text[:-1] + b', "extra": {"seq": 1}}'
        elif roll < 0.2:
            damaged = bytearray(text)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(damaged))
                damaged[at:at + rng.randint(0, 2)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2)))
            text = bytes(damaged)
        out.append(text)
    return out


def test_the_fast_path_agrees_with_the_decoder_on_generated_payloads() -> None:
    rng = random.Random(15)
    fast = 0
    for payload in generated(rng, 20_000):
        if len(payload) > MAX_BYTES:
            continue
        got, expected = both(payload)
        assert got == expected, payload
        match = CANONICAL.fullmatch(payload)
        fast += match is not None and canonical_row("dev-1", match, RECEIVED) is not None
    assert fast > 1000  # the comparison covered the fast path, not only the fallback


@pytest.mark.parametrize("body", [
    {"seq": 1732800000123456, "ts": 1732800000.2512345, "temperature": 21.37, "humidity": 40.0},  # fastpub
    {"seq": 17, "ts": 1732800000.25, "temperature": 21.5, "humidity": 40.0, "battery": 87},  # the docs, simulator
    {"seq": 0, "ts": 946684800, "temperature": -100, "battery": 100},
    {"seq": 2**63 - 1, "ts": 4102444800.0, "temperature": 200.0, "humidity": 1.2e-38},
])
def test_what_devices_send_takes_the_fast_path_in_both_spacings(body: dict[str, float]) -> None:
    for payload in (json.dumps(body).encode(), json.dumps(body, separators=(",", ":")).encode()):
        match = CANONICAL.fullmatch(payload)
        assert match is not None
        assert canonical_row("dev-1", match, RECEIVED) == decoded_row("dev-1", payload, RECEIVED)


@pytest.mark.parametrize("payload", [
    b'{"seq": 1, "ts": 1732800000, "temperature": -0}',  # the integer 0: "0.0", not "-0.0"
    b'{"seq": 1, "ts": 1732800000, "temperature": -0.0}',
    b'{"seq": 1, "ts": 1732800000, "temperature": 20, "humidity": -0.0}',
    b'{"seq": 1, "ts": 1732800000, "temperature": 1e-50}',
    b'{"seq": 1, "ts": 1732800000, "temperature": 20, "humidity": 8e-46}',
    b'{"seq": 1, "ts": 1732800000, "temperature": 20, "temperature": 300}',
    b'{"seq": 1, "ts": 1732800000, "temperature": NaN}',
    b'{"seq": 9223372036854775808, "ts": 1732800000, "temperature": 20}',
    b'{"seq": 1, "ts": 1e400, "temperature": 20}',
    b'{"seq": 1, "ts": 1732800000, "temperature": 20, "humidity": null}',
    b'{"seq": 1, "ts": 1732800000, "temperature": true}',
])
def test_edge_values_get_the_decoders_verdict(payload: bytes) -> None:
    got, expected = both(payload)
    assert got == expected


def test_hostile_payloads_are_rejected_never_raised() -> None:
    """Anything a device sends ends as a row or a Rejected: deep nesting, bad UTF-8, other encodings, the limit."""
    for payload in (b"[" * 1000, b'{"a":' * 300, b"\xff\xfe{\x00}\x00", b"\xc3\x28", b"", b"{", b"\x00" * 50,
                    '{"seq": 1}'.encode("utf-16"), b'{"seq": 1, "ts": 1732800000, "temperature": 2' + b"0" * 1000):
        result = outcome(lambda p=payload: row_line("dev-1", p, RECEIVED))  # type: ignore[misc]
        assert isinstance(result, tuple) and result[0] == "rejected", payload[:40]
    big = b'{"seq": 1, "ts": 1732800000.' + b"1" * MAX_BYTES + b', "temperature": 20}'
    assert CANONICAL.fullmatch(big) is not None and outcome(lambda: row_line("dev-1", big, RECEIVED))[1] == "too_large"
