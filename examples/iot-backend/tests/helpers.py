"""Small helpers shared by the tests: polling and device set-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from iotsim.api import RegistryClient
from iotsim.device import Device

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """Call probe until it returns something truthy; return that, or the last value at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def new_device(api: RegistryClient, broker_url: str, name: str = "test", ca_file: str | None = None) -> Device:
    """Register a device (waiting until the broker has loaded it) and connect it (TLS: verifying `ca_file`)."""
    answer = api.register(name=name, wait_active=5)
    assert answer["active_on_broker"] is True
    device = Device(answer["id"], answer["mqtt"]["password"], broker_url, ca_file=ca_file)
    device.connect()
    return device


def stored_seqs(api: RegistryClient, device_id: str) -> list[int]:
    """Every stored seq of a device (up to 10,000), newest first."""
    return [row["seq"] for row in api.readings(device_id, limit=10000)]
