"""Provisioning benchmark for the IoT example: devices registered per second through the API (until
the broker accepts them), and the round trip of a probe message published all the while.

Runs the stack with plain docker (images built once, cached by layers) on 127.0.0.1 only, then
removes it. Goals (issue 4): >= 200 devices/s for 1,000 devices; probe p99 <= 100 ms meanwhile.

    .venv/bin/python bench/provision.py [--devices 1000] [--workers 16]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iot-backend"
sys.path[:0] = [str(EXAMPLE), str(EXAMPLE / "tests")]

from iotsim.api import RegistryClient  # noqa: E402
from iotsim.device import Device  # noqa: E402
from stack import DockerStack, build_images  # noqa: E402


class Probe:
    """A device that publishes to its own command topic and times each message's return."""

    def __init__(self, device: Device, interval: float = 0.02) -> None:
        self.device = device
        self.interval = interval
        self.sent: dict[str, float] = {}
        self.rtts: list[tuple[float, float]] = []  # (sent at, round trip seconds)
        self.lost = 0
        self._stop = threading.Event()
        device.client.on_message = self._on_message
        device.client.subscribe(f"devices/{device.device_id}/commands", qos=1)
        time.sleep(0.3)

    def _on_message(self, _c: object, _u: object, msg: object) -> None:
        now = time.perf_counter()
        key = msg.payload.decode()  # type: ignore[attr-defined]
        started = self.sent.pop(key, None)
        if started is not None:
            self.rtts.append((started, now - started))

    def run(self, seconds: float) -> None:
        """Publish one probe every interval for at most `seconds`."""
        deadline = time.perf_counter() + seconds
        n = 0
        while not self._stop.is_set() and time.perf_counter() < deadline:
            n += 1
            key = f"probe-{n}"
            self.sent[key] = time.perf_counter()
            self.device.client.publish(f"devices/{self.device.device_id}/commands", key, qos=1)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop publishing; count probes that never came back."""
        self._stop.set()
        time.sleep(0.5)
        self.lost = len(self.sent)

    def between(self, start: float, end: float) -> list[float]:
        """Round trips (ms) of probes sent within [start, end]."""
        return [rtt * 1000 for at, rtt in self.rtts if start <= at <= end]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16, help="concurrent registration requests")
    parser.add_argument("--bulk", type=int, default=0,
                        help="register through POST /devices/bulk, this many devices per request (0: one per request)")
    args = parser.parse_args()
    n = min(max(args.devices, 1), 20_000)

    t0 = time.perf_counter()
    images = build_images()
    print(f"images ready in {time.perf_counter() - t0:.1f} s")
    stack = DockerStack(images, ingestion_replicas=1)
    try:
        stack.start()
        api = RegistryClient(stack.api_url, stack.admin_token)
        answer = api.register("bench-probe", wait_active=5)
        probe_device = Device(answer["id"], answer["mqtt"]["password"], stack.mqtt_url)
        probe_device.connect()
        probe = Probe(probe_device)
        prober = threading.Thread(target=probe.run, args=(n / 50 + 60,), daemon=True)
        prober.start()
        time.sleep(2.0)  # baseline
        baseline_end = time.perf_counter()

        tag = f"bench-{random.randrange(16**6):06x}"
        def register(i: int) -> list[dict[str, object]]:
            if args.bulk:
                return api.register_many([f"{tag}-{j}" for j in range(i, min(n, i + args.bulk))])
            return [api.register(f"{tag}-{i}")]

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            chunks = pool.map(register, range(0, n, args.bulk or 1))
            results = [row for chunk in chunks for row in chunk]
        api_done = time.perf_counter()
        status = api.call("GET", "/broker/status")
        deadline = time.monotonic() + 60
        while status["applied"] < status["version"] and time.monotonic() < deadline:
            time.sleep(0.01)
            status = api.call("GET", "/broker/status")
        broker_done = time.perf_counter()
        time.sleep(1.0)
        probe.stop()

        sample = random.sample(results, min(20, len(results)))
        refused = 0
        for row in sample:
            mqtt = row["mqtt"]
            device = Device(str(row["id"]), mqtt["password"], stack.mqtt_url)  # type: ignore[index]
            try:
                device.connect(timeout=5)
                device.close()
            except ConnectionError:
                refused += 1

        during = probe.between(start, broker_done)
        base = probe.between(0, baseline_end)
        api_rate = n / (api_done - start)
        usable_rate = n / (broker_done - start)
        mode = f"POST /devices/bulk, {args.bulk} per request" if args.bulk else "POST /devices, one per request"
        print(f"\nprovisioned {n} devices ({mode}) with {args.workers} concurrent API clients")
        print(f"  registered through the API : {api_done - start:6.2f} s  {api_rate:7.0f} devices/s")
        print(f"  accepted by the broker     : {broker_done - start:6.2f} s  {usable_rate:7.0f} devices/s"
              f"   (goal >= 200)   sample of {len(sample)} connect: {len(sample) - refused} ok")
        print(f"probe round trip (publish -> broker -> back), every {probe.interval * 1000:.0f} ms")
        print(f"  idle        : n={len(base):4d}  p50 {pct(base, 50):6.1f} ms  p99 {pct(base, 99):6.1f} ms")
        print(f"  provisioning: n={len(during):4d}  p50 {pct(during, 50):6.1f} ms  p99 {pct(during, 99):6.1f} ms"
              f"  max {max(during, default=float('nan')):6.1f} ms  (goal p99 <= 100)  lost {probe.lost}")
        if during:
            print(f"  mean during provisioning {statistics.fmean(during):.1f} ms")
        probe_device.close()
        ok = usable_rate >= 200 and pct(during, 99) <= 100 and refused == 0
        print(f"\nresult: {'meets' if ok else 'MISSES'} the goals")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
