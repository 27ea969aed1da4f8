"""Provisioning benchmark for the IoT example, both ways an operator can register a fleet, in one run:

1. one device per request (`POST /devices`), from --workers concurrent API clients;
2. bulk (`POST /devices/bulk`, --bulk devices per request), from --bulk-workers clients.

For each: devices registered per second through the API and until the broker accepts them (every
registration's credential version loaded), the round trip of a probe message published every
20 ms meanwhile (publish -> broker -> back to the same device), the CPU each container spent per
device, and a sample of the new devices actually connecting. Goals (issue 4): >= 200 devices/s
for 1,000 devices; probe p99 <= 100 ms meanwhile.

Runs the stack with plain docker (images built once, cached by layers) on 127.0.0.1 only, then
removes it.

    .venv/bin/python bench/provision.py [--devices 1000] [--workers 16] [--bulk 100] [--bulk-workers 4]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iot-backend"
sys.path[:0] = [str(EXAMPLE), str(EXAMPLE / "tests"), str(Path(__file__).resolve().parent)]

from container_cpu import container_cpu_ns, host_busy_ns  # noqa: E402
from iotsim.api import RegistryClient  # noqa: E402
from iotsim.device import Device  # noqa: E402
from stack import DockerStack, build_images  # noqa: E402

RATE_GOAL, PROBE_P99_GOAL_MS = 200.0, 100.0


class Probe:
    """A device that publishes to its own command topic and times each message's return."""

    def __init__(self, device: Device, interval: float = 0.02) -> None:
        self.device = device
        self.interval = interval
        self.sent: dict[str, float] = {}
        self.rtts: list[tuple[float, float]] = []  # (sent at, round trip seconds)
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
        """Stop publishing."""
        self._stop.set()

    def between(self, start: float, end: float) -> list[float]:
        """Round trips (ms) of probes sent within [start, end]."""
        return [rtt * 1000 for at, rtt in self.rtts if start <= at <= end]

    def lost_between(self, start: float, end: float) -> int:
        """Probes sent within [start, end] that have not come back."""
        return sum(1 for at in self.sent.values() if start <= at <= end)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values, or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Mode:
    """One way of registering the fleet, and what it measured."""

    label: str
    bulk: int
    workers: int
    api_rate: float = 0.0
    broker_rate: float = 0.0
    probes: list[float] = field(default_factory=list)
    lost: int = 0
    connected: str = ""
    cpu_ms: dict[str, float] = field(default_factory=dict)
    others_cores: float = 0.0


def provision(stack: DockerStack, api: RegistryClient, probe: Probe, mode: Mode, n: int) -> None:
    """Register n devices this way; fill in the mode's figures."""
    tag = f"{'bulk' if mode.bulk else 'one'}-{random.randrange(16**6):06x}"

    def register(i: int) -> list[dict[str, object]]:
        if mode.bulk:
            return api.register_many([f"{tag}-{j}" for j in range(i, min(n, i + mode.bulk))])
        return [api.register(f"{tag}-{i}")]

    cpu0, busy0 = container_cpu_ns(stack), host_busy_ns()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=mode.workers) as pool:
        results = [row for chunk in pool.map(register, range(0, n, mode.bulk or 1)) for row in chunk]
    api_done = time.perf_counter()
    status = api.broker_status()
    deadline = time.monotonic() + 60
    while status["applied"] < status["version"] and time.monotonic() < deadline:
        time.sleep(0.01)
        status = api.broker_status()
    broker_done = time.perf_counter()
    cpu1, busy1 = container_cpu_ns(stack), host_busy_ns()
    time.sleep(1.0)  # probes sent just before the end come back
    mode.api_rate, mode.broker_rate = n / (api_done - start), n / (broker_done - start)
    mode.probes, mode.lost = probe.between(start, broker_done), probe.lost_between(start, broker_done)
    used: dict[str, float] = {}
    for name, ns in cpu1.items():
        service = name.removeprefix(f"{stack.prefix}-").rsplit("-", 1)[0]
        used[service] = used.get(service, 0.0) + (ns - cpu0.get(name, ns))
    mode.cpu_ms = {service: ns / 1e6 / n for service, ns in used.items()}
    mode.others_cores = max(0.0, (busy1 - busy0) - sum(used.values())) / 1e9 / (broker_done - start)
    ok = 0
    sample = random.sample(results, min(10, len(results)))
    for row in sample:
        device = Device(str(row["id"]), row["mqtt"]["password"], stack.mqtt_url)  # type: ignore[index]
        try:
            device.connect(timeout=5)
            device.close()
            ok += 1
        except ConnectionError:
            pass
    mode.connected = f"{ok}/{len(sample)}"


def verdict(ok: bool) -> str:
    """A goal's verdict."""
    return "met" if ok else "NOT MET"


def report(modes: list[Mode], base: list[float], n: int) -> None:
    """Print both modes side by side, each against the goals."""
    print(f"\nprovisioning {n} devices; probe every 20 ms, idle round trip p50 {pct(base, 50):.1f} ms, "
          f"p99 {pct(base, 99):.1f} ms (n={len(base)})")
    print(f"{'':34}" + "".join(f"{m.label:>30}" for m in modes) + "   goal")
    print(f"{'registered through the API':34}" + "".join(f"{f'{m.api_rate:.0f} devices/s':>30}" for m in modes))
    print(f"{'accepted by the broker':34}" + "".join(f"{f'{m.broker_rate:.0f} devices/s':>30}" for m in modes)
          + f"   >= {RATE_GOAL:.0f}/s")
    print(f"{'  verdict':34}" + "".join(f"{verdict(m.broker_rate >= RATE_GOAL):>30}" for m in modes))
    print(f"{'probe round trip meanwhile':34}"
          + "".join(f"{f'p50 {pct(m.probes, 50):.0f} / p99 {pct(m.probes, 99):.0f} ms':>30}" for m in modes)
          + f"   p99 <= {PROBE_P99_GOAL_MS:.0f} ms")
    print(f"{'  max, probes, lost':34}"
          + "".join(f"{f'{max(m.probes, default=0):.0f} ms, n={len(m.probes)}, {m.lost}':>30}" for m in modes))
    print(f"{'  verdict':34}" + "".join(f"{verdict(pct(m.probes, 99) <= PROBE_P99_GOAL_MS):>30}"
                                        for m in modes))
    print(f"{'new devices connecting (sample)':34}" + "".join(f"{m.connected:>30}" for m in modes))
    for service in ("registry", "auth", "db", "broker"):
        print(f"{f'CPU per device, {service}':34}"
              + "".join(f"{f'{m.cpu_ms[service]:.2f} ms' if service in m.cpu_ms else 'n/a':>30}" for m in modes))
    print(f"{'other work on the machine (cores)':34}" + "".join(f"{m.others_cores:>30.2f}" for m in modes))


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16, help="concurrent clients, one device per request")
    parser.add_argument("--bulk", type=int, default=100, help="devices per bulk request (1..1000)")
    parser.add_argument("--bulk-workers", type=int, default=4, help="concurrent clients, bulk requests")
    args = parser.parse_args()
    n = min(max(args.devices, 1), 20_000)
    modes = [Mode(f"one per request, {args.workers} clients", 0, max(1, min(args.workers, 64))),
             Mode(f"bulk {args.bulk}/request, {args.bulk_workers} clients", min(max(args.bulk, 1), 1000),
                  max(1, min(args.bulk_workers, 64)))]

    t0 = time.perf_counter()
    stack = DockerStack(build_images(), ingestion_replicas=1)
    print(f"images ready in {time.perf_counter() - t0:.1f} s")
    try:
        stack.start()
        api = RegistryClient(stack.api_url, stack.admin_token)
        answer = api.register("bench-probe", wait_active=5)
        probe_device = Device(answer["id"], answer["mqtt"]["password"], stack.mqtt_url)
        probe_device.connect()
        probe = Probe(probe_device)
        threading.Thread(target=probe.run, args=(2 * n / 10 + 120,), daemon=True).start()
        time.sleep(2.0)  # baseline
        base = probe.between(0, time.perf_counter())
        for mode in modes:
            provision(stack, api, probe, mode, n)
            time.sleep(1.0)
        probe.stop()
        probe_device.close()
        report(modes, base, n)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
