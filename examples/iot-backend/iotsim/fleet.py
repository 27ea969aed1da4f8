"""A fleet of simulated devices: register through the API, connect, publish at a rate, report."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from iotsim.api import RegistryClient
from iotsim.device import Device


@dataclass(frozen=True)
class Report:
    """What a run sent, what the broker acknowledged and what failed."""

    devices: int
    sent: int
    acked: int
    failed: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        """The report as a plain dict."""
        return {"devices": self.devices, "sent": self.sent, "acknowledged": self.acked, "failed": self.failed,
                "seconds": round(self.seconds, 3)}


def format_report(report: Report) -> str:
    """One human-readable line."""
    rate = report.sent / report.seconds if report.seconds else 0.0
    return (f"devices={report.devices} sent={report.sent} acknowledged={report.acked} failed={report.failed} "
            f"in {report.seconds:.1f} s ({rate:.0f} msg/s)")


class Fleet:
    """Devices registered through the registry, each with its own MQTT connection."""

    def __init__(self, api: RegistryClient, broker_url: str, ca_file: str | None = None) -> None:
        self.api = api
        self.broker_url = broker_url
        self.ca_file = ca_file
        self.devices: list[Device] = []

    def register(self, count: int, prefix: str = "sim", workers: int = 8) -> list[Device]:
        """Register `count` devices (in parallel) and keep their one-time credentials."""
        tag = secrets.token_hex(3)

        def one(i: int) -> Device:
            answer = self.api.register(f"{prefix}-{tag}-{i}", name=f"simulated {i}")
            return Device(answer["id"], answer["mqtt"]["password"], self.broker_url, ca_file=self.ca_file)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            new = list(pool.map(one, range(count)))
        self.devices += new
        return new

    def connect(self, retry_refused: float = 5.0) -> None:
        """Connect every device (new credentials reach the broker within about half a second)."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda d: d.connect(retry_refused=retry_refused), self.devices))

    def run(self, rate: float, duration: float, qos: int = 1, grace: float = 10.0) -> Report:
        """Publish `rate` messages per second in total, round-robin, for `duration` seconds."""
        started = time.monotonic()
        total = max(1, int(rate * duration))
        for i in range(total):
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.devices[i % len(self.devices)].publish(qos=qos)
        for device in self.devices:
            device.wait_acked(max(0.0, started + duration + grace - time.monotonic()))
        return self.report(time.monotonic() - started)

    def report(self, seconds: float) -> Report:
        """Totals over every device; a publish still unacknowledged counts as failed."""
        sent = sum(d.stats.sent for d in self.devices)
        acked = sum(d.stats.acked for d in self.devices)
        failed = sum(d.stats.failed + d.unacked() for d in self.devices)
        return Report(len(self.devices), sent, acked, failed, seconds)

    def close(self) -> None:
        """Disconnect every device."""
        for device in self.devices:
            device.close()
