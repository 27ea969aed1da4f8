"""Ingestion benchmark for the IoT example, in one run:

1. the broker's raw rates, QoS 1 and QoS 0: `mosquitto_pub --repeat N` -> `mosquitto_sub -C N`
   (a device publishing to its own command topic, so only the broker is measured);
2. end to end, for one and two ingestion replicas: QoS 1 telemetry published flat out, the rate
   at which rows are committed, and the latency from publish to row at a paced 2,000 msg/s.

Everything runs on the local engine (publishers and subscribers in containers on the stack's
network, nothing leaves 127.0.0.1 / the docker network), then the stack is removed.
Goals (issue 4): end-to-end QoS 1 >= 0.8 x raw broker QoS 1; p99 <= 50 ms at 2,000 msg/s.

    .venv/bin/python bench/ingest_throughput.py [--raw 20000] [--e2e 20000] [--paced-seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iot-backend"
sys.path[:0] = [str(EXAMPLE), str(EXAMPLE / "tests")]

from iotsim.api import RegistryClient  # noqa: E402
from stack import DockerStack, build_images, docker  # noqa: E402

RAW_SCRIPT = """
set -e
mosquitto_sub -h broker -u "$DEV" -P "$PW" -i raw-sub -q "$QOS" -t "devices/$DEV/commands" -C "$N" -W 120 >/dev/null &
sub=$!
sleep 0.5
start=$(date +%s.%N)
mosquitto_pub -h broker -u "$DEV" -P "$PW" -i raw-pub -q "$QOS" -t "devices/$DEV/commands" --repeat "$N" \
  -m '{"seq":1,"ts":1732800000.25,"temperature":21.5,"humidity":40.0,"battery":87}'
wait $sub
end=$(date +%s.%N)
echo "$start $end"
"""


def raw_rate(stack: DockerStack, device: dict[str, str], qos: int, n: int) -> float:
    """Messages per second from mosquitto_pub --repeat to mosquitto_sub -C, inside the network."""
    env = {**os.environ, "DEV": device["id"], "PW": device["password"], "QOS": str(qos), "N": str(n)}
    out = docker("run", "--rm", "--network", stack.network, "-e", "DEV", "-e", "PW", "-e", "QOS", "-e", "N",
                 "--entrypoint", "sh", stack.images["broker"], "-c", RAW_SCRIPT, env=env, timeout=300)
    start, end = (float(x) for x in out.split()[-2:])
    return n / (end - start)


def publish(stack: DockerStack, devices: list[dict[str, str]], count: int, rate: float) -> dict[str, float]:
    """Run iotsim.load in a container on the network; return its JSON figures."""
    env = {**os.environ, "LOAD_DEVICES": json.dumps(devices)}
    out = docker("run", "--rm", "--network", stack.network, "-e", "LOAD_DEVICES", "-e", "PYTHONPATH=/opt/sim",
                 "-v", f"{EXAMPLE / 'iotsim'}:/opt/sim/iotsim:ro", "--entrypoint", "python3",
                 stack.images["ingestion"], "-m", "iotsim.load", "--broker", "mqtt://broker:1883",
                 "--count", str(count), "--rate", str(rate), env=env, timeout=600)
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


def stored(stack: DockerStack, ids: list[str], expected: int, timeout: float = 120.0) -> dict[str, float]:
    """Wait until `expected` rows of these devices are stored; return count, last stored_at, latency quantiles."""
    where = "device_id IN (" + ",".join(f"'{i}'" for i in ids) + ")"
    deadline = time.monotonic() + timeout
    while True:
        count = int(stack.psql(f"SELECT count(*) FROM readings WHERE {where}") or 0)
        if count >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    row = stack.psql(
        "SELECT count(*), extract(epoch FROM max(stored_at)),"
        " 1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)),"
        " 1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)),"
        f" 1000 * max(extract(epoch FROM stored_at - ts)) FROM readings WHERE {where}"
    )
    n, last, p50, p99, worst = (float(x or 0) for x in row.split("|"))
    return {"count": n, "last_stored": last, "p50_ms": p50, "p99_ms": p99, "max_ms": worst}


def register(api: RegistryClient, tag: str, n: int) -> list[dict[str, str]]:
    """Register n devices (bulk) and return their ids and passwords."""
    answers = api.register_many([f"{tag}-{i}" for i in range(n)], wait_active=10)
    return [{"id": a["id"], "password": a["mqtt"]["password"]} for a in answers]


def end_to_end(stack: DockerStack, api: RegistryClient, replicas: int, args: argparse.Namespace) -> dict[str, float]:
    """Flat-out stored rate and the latency at a paced rate, with this many replicas running."""
    flat = register(api, f"flat{replicas}", args.devices)
    result = publish(stack, flat, args.e2e, 0.0)
    rows = stored(stack, [d["id"] for d in flat], int(result["acked"]))
    rate = rows["count"] / (rows["last_stored"] - result["first_publish"])
    paced = register(api, f"paced{replicas}", args.devices)
    sent = publish(stack, paced, int(args.paced_rate * args.paced_seconds), args.paced_rate)
    lat = stored(stack, [d["id"] for d in paced], int(sent["acked"]))
    return {
        "acked": result["acked"], "failed": result["failed"] + sent["failed"], "stored": rows["count"],
        "rate": rate, "publish_rate": result["acked"] / (result["last_ack"] - result["first_publish"]),
        "p50": lat["p50_ms"], "p99": lat["p99_ms"], "max": lat["max_ms"], "paced_stored": lat["count"],
        "paced_acked": sent["acked"],
    }


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=int, default=20000, help="messages per raw broker run")
    parser.add_argument("--e2e", type=int, default=20000, help="messages per flat-out end-to-end run")
    parser.add_argument("--devices", type=int, default=4, help="publishing devices in end-to-end runs")
    parser.add_argument("--paced-rate", type=float, default=2000.0)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    args = parser.parse_args()
    args.raw, args.e2e = min(args.raw, 1_000_000), min(args.e2e, 1_000_000)

    images = build_images()
    stack = DockerStack(images, ingestion_replicas=2)
    try:
        stack.start()
        api = RegistryClient(stack.api_url, stack.admin_token)
        raw_device = register(api, "raw", 1)[0]
        raw1 = raw_rate(stack, raw_device, 1, args.raw)
        raw0 = raw_rate(stack, raw_device, 0, args.raw * 5)
        print(f"broker raw (mosquitto_pub --repeat -> mosquitto_sub, in-network): QoS 1 {raw1:8.0f} msg/s"
              f"   QoS 0 {raw0:8.0f} msg/s")

        docker("stop", "-t", "10", stack.name("ingestion", 2))  # drains and ends its session
        one = end_to_end(stack, api, 1, args)
        docker("start", stack.name("ingestion", 2))
        if not stack.ingestion_connected(timeout=60):
            raise RuntimeError("replica 2 did not reconnect")
        two = end_to_end(stack, api, 2, args)

        print(f"\nend to end, QoS 1, {args.devices} devices in-network, {args.e2e} messages flat out; latency at "
              f"{args.paced_rate:.0f} msg/s for {args.paced_seconds:.0f} s (publish -> row inserted in its batch)")
        print(f"{'replicas':>8} {'stored msg/s':>13} {'x raw QoS 1':>12} {'publish msg/s':>14} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>8} {'stored/acked':>14} {'failed':>7}")
        for n, r in ((1, one), (2, two)):
            counts = f"{int(r['stored'] + r['paced_stored'])}/{int(r['acked'] + r['paced_acked'])}"
            print(f"{n:>8} {r['rate']:>13.0f} {r['rate'] / raw1:>12.2f} {r['publish_rate']:>14.0f} "
                  f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} {counts:>14} {int(r['failed']):>7}")
        best = max(one["rate"], two["rate"])
        print(f"\ngoals: end-to-end >= 0.8 x raw QoS 1: {'met' if best >= 0.8 * raw1 else 'MISSED'} "
              f"({best / raw1:.2f}x);  p99 <= 50 ms at {args.paced_rate:.0f} msg/s: "
              f"{'met' if min(one['p99'], two['p99']) <= 50 else 'MISSED'}")
        print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
