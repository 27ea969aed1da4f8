"""Ingestion's Python CPU per received message, stage by stage, without a broker or a database (issue 15).

A read buffer of 10,000 QoS 1 PUBLISHes as the broker hands them to ingestion (the payloads of
iotsim.fastpub and of the simulator, alternately, on 4 devices' topics) goes through the stages of
Consumer._handle: mqtt_codec.split (PUBLISHes decoded), payload.device_of, payload.row_line (and the
JSON decoder's path alone, where the code has one), then the publish -> commit histogram (one observe()
per message, and metrics.observe_all per batch of 250 where the code has it; needs prometheus_client,
which the ingestion image has). Figures: CPU time of this thread per message, best of --repeat.

    .venv/bin/python bench/ingest_parse.py [--repeat 15] [--ref COMMIT] [--in-image]

--ref COMMIT measures the ingestion code of that commit (git archive) instead of the working tree's: run it
with the commit before a change for before/after figures. --in-image runs in the ingestion image (Debian's
Python and prometheus_client, as deployed), built as the example's tests build it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SERVICE = Path("examples/iot-backend/services/ingestion")
MESSAGES, BATCH = 10_000, 250


def publish_buffer(mq: ModuleType) -> bytearray:
    """MESSAGES QoS 1 PUBLISHes (MQTT v5, no properties), as one read buffer."""
    rng, buffer = random.Random(15), bytearray()
    for i in range(MESSAGES):
        ts = 1732800000.25 + i / 1000 + rng.random() / 1e4
        if i % 2:  # iotsim.fastpub
            reading = {"seq": 1732800000000000 + i, "ts": ts, "temperature": round(rng.uniform(15, 30), 2),
                       "humidity": 50.0}
        else:  # the simulator (iotsim.device), the documented example's keys
            reading = {"seq": 1732800000000000 + i, "ts": ts, "temperature": round(rng.uniform(15, 30), 2),
                       "humidity": round(rng.uniform(20, 80), 1), "battery": rng.randint(10, 100)}
        body = mq.utf8(f"devices/dev-{i % 4}/telemetry") + struct.pack("!H", i % 65535 + 1) + b"\x00"
        buffer += mq.packet(mq.PUBLISH, 0x02, body + json.dumps(reading).encode())
    return buffer


def best(repeat: int, stages: list[tuple[str, Callable[[], object]]]) -> list[tuple[str, float]]:
    """Each stage's least CPU time of this thread over `repeat` rounds (the stages take turns, so that other
    work on the machine weighs on each alike), in µs per message."""
    times: dict[str, list[float]] = {name: [] for name, _run in stages}
    for _ in range(repeat):
        for name, run in stages:
            started = time.thread_time()
            run()
            times[name].append(time.thread_time() - started)
    return [(name, min(runs) / MESSAGES * 1e6) for name, runs in times.items()]


def measure(code: Path, repeat: int) -> list[tuple[str, float]]:
    """Each stage's µs per message, for the ingestion code under `code`."""
    sys.path.insert(0, str(code))
    mq = importlib.import_module("ingestion_service.mqtt_codec")
    payload = importlib.import_module("ingestion_service.payload")
    buffer = publish_buffer(mq)
    parse_publish = getattr(mq, "parse_publish", None)  # before split decoded PUBLISHes itself

    def decode() -> list[object]:
        packets, used = mq.split(buffer)
        assert used == len(buffer)
        return [parse_publish(p) for p in packets] if parse_publish else packets

    def topic_payload(m: object) -> tuple[str, bytes]:  # a tuple, or (before) a Publish object
        return (m[0], m[1]) if isinstance(m, tuple) else (m.topic, m.payload)  # type: ignore[attr-defined]

    topics, bodies = zip(*map(topic_payload, decode()), strict=True)
    devices = [payload.device_of(t) for t in topics]
    now = payload.timestamp_text(time.time())
    pairs = list(zip(devices, bodies, strict=True))

    def pipeline() -> None:
        for m in decode():
            topic, body = topic_payload(m)
            payload.row_line(payload.device_of(topic), body, now)

    stages = [
        ("split: PUBLISHes decoded", decode),
        ("device_of", lambda: [payload.device_of(t) for t in topics]),
        ("row_line", lambda: [payload.row_line(d, b, now) for d, b in pairs]),
    ]
    if hasattr(payload, "decoded_row"):
        stages.append(("  (its JSON decoder path alone)", lambda: [payload.decoded_row(d, b, now) for d, b in pairs]))
    stages.append(("the three in one pass", pipeline))
    stages += histogram_stages(code)
    return best(repeat, stages)


def histogram_stages(code: Path) -> list[tuple[str, Callable[[], object]]]:
    """The latency histogram: one observe() per message, and per batch where the code can."""
    try:
        prometheus = importlib.import_module("prometheus_client")
        metrics = importlib.import_module("ingestion_service.metrics")
    except ImportError:
        print(f"(no prometheus_client for {code}: histogram stages skipped; --in-image has it)")
        return []
    bounds = metrics.LATENCY._upper_bounds[:-1]
    histogram = prometheus.Histogram("bench_latency", "bench", buckets=bounds,
                                     registry=prometheus.CollectorRegistry())
    rng = random.Random(4)
    amounts = [rng.uniform(0.002, 0.08) for _ in range(MESSAGES)]
    batches = [amounts[i:i + BATCH] for i in range(0, MESSAGES, BATCH)]

    def one_by_one() -> None:
        for amount in amounts:
            histogram.observe(amount)

    stages: list[tuple[str, Callable[[], object]]] = [("latency histogram, observe() each", one_by_one)]
    if hasattr(metrics, "observe_all"):
        stages.append((f"latency histogram, observe_all per {BATCH}",
                       lambda: [metrics.observe_all(histogram, batch) for batch in batches]))
    return stages


def extracted(ref: str, into: Path) -> Path:
    """The ingestion service's code at commit `ref`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, str(SERVICE)], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / SERVICE


def in_image(args: argparse.Namespace, code: Path) -> None:
    """Run this script in the ingestion image on `code` (mounted read-only)."""
    sys.path[:0] = [str(REPO / "examples" / "iot-backend" / "tests")]
    from stack import build_images, docker  # the example's image builder (the tests' tags)

    image = build_images(("ingestion",))["ingestion"]
    label = f"{args.ref or 'working tree'} in the ingestion image"
    script = "/bench/ingest_parse.py"
    print(docker("run", "--rm", "--user", "0", "-v", f"{code}:/code:ro", "-v", f"{Path(__file__)}:{script}:ro",
                 "--entrypoint", "python3", image, script, "--code", "/code", "--label", label,
                 "--repeat", str(args.repeat), timeout=600))


def main() -> None:
    """Parse the options and print µs per message for each stage."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--ref", help="measure the ingestion code of this commit")
    parser.add_argument("--in-image", action="store_true", help="run in the ingestion image")
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)  # the service folder (inside the image)
    parser.add_argument("--label", help=argparse.SUPPRESS)  # what --code is
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        code = args.code or (extracted(args.ref, Path(tmp)) if args.ref else REPO / SERVICE)
        if args.in_image:
            in_image(args, code)
            return
        where = f"{args.label or args.ref or 'working tree'}, Python {sys.version.split()[0]}"
        print(f"ingestion per received message ({where}; {MESSAGES} PUBLISHes, best of {args.repeat}, CPU µs)")
        for name, micros in measure(code, args.repeat):
            print(f"  {name:<42} {micros:7.2f} µs")


if __name__ == "__main__":
    main()
