"""Broker restarts and ingestion replicas coming and going lose nothing and store nothing twice."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from iotsim.device import Device
from stack import DockerStack, docker

pytestmark = pytest.mark.docker


def stream(devices: list[Device], rate: float, seconds: float) -> threading.Thread:
    """Publish round-robin at `rate` messages per second in the background."""

    def run() -> None:
        started = time.monotonic()
        for i in range(int(rate * seconds)):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            devices[i % len(devices)].publish()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_stored_exactly_once(api: RegistryClient, devices: list[Device], timeout: float = 15.0) -> None:
    """Every acknowledged seq is stored, once (the primary key forbids twice; check nothing is missing)."""

    def missing() -> dict[str, int]:
        gaps = {}
        for d in devices:
            stored = stored_seqs(api, d.device_id)
            assert len(stored) == len(set(stored))
            lost = set(d.stats.acked_seqs) - set(stored)
            if lost:
                gaps[d.device_id] = len(lost)
        return gaps

    deadline = time.monotonic() + timeout
    gaps = missing()
    while gaps and time.monotonic() < deadline:
        time.sleep(0.3)
        gaps = missing()
    assert not gaps, f"acknowledged but not stored: {gaps}"


def received(stack: DockerStack, replica: int) -> float:
    """Messages one ingestion replica received."""
    return stack.metric("ingestion_messages_received_total", replica)


def test_two_replicas_split_the_load(stack: DockerStack, api: RegistryClient) -> None:
    devices = [new_device(api, stack.mqtt_url, f"split-{i}") for i in range(4)]
    before = [received(stack, r) for r in (1, 2)]
    for _ in range(100):
        for d in devices:
            d.publish()
    assert all(d.wait_acked(10) for d in devices)
    assert_stored_exactly_once(api, devices)
    shares = [received(stack, r) - before[r - 1] for r in (1, 2)]
    assert sum(shares) == 400
    assert min(shares) >= 100, f"load not split: {shares}"
    for d in devices:
        d.close()


def test_broker_restart_mid_stream_loses_nothing_acknowledged(stack: DockerStack, api: RegistryClient) -> None:
    devices = [new_device(api, stack.mqtt_url, f"restart-{i}") for i in range(3)]
    connects = [stack.metric("ingestion_mqtt_connects_total", r) for r in (1, 2)]
    publisher = stream(devices, rate=150, seconds=6)
    time.sleep(2)
    docker("restart", "-t", "10", stack.name("broker"))
    publisher.join(30)
    # generous bounds: the broker's restart competes for two shared cores with everything else
    assert eventually(lambda: all(d.client.is_connected() for d in devices), timeout=45)
    assert all(d.wait_acked(30) for d in devices)
    assert stack.ingestion_connected(timeout=30)
    assert all(stack.metric("ingestion_mqtt_connects_total", r) > connects[r - 1] for r in (1, 2))
    acked = sum(len(d.stats.acked_seqs) for d in devices)
    assert acked >= 600, f"only {acked} of 900 acknowledged"
    assert_stored_exactly_once(api, devices)
    for d in devices:
        d.close()


def test_stopping_one_replica_loses_nothing(stack: DockerStack, api: RegistryClient) -> None:
    devices = [new_device(api, stack.mqtt_url, f"scale-{i}") for i in range(3)]
    publisher = stream(devices, rate=200, seconds=5)
    time.sleep(1.5)
    docker("stop", "-t", "10", stack.name("ingestion", 2))
    publisher.join(30)
    assert all(d.wait_acked(10) for d in devices)
    assert_stored_exactly_once(api, devices)
    assert sum(len(d.stats.acked_seqs) for d in devices) == 1000
    docker("start", stack.name("ingestion", 2))
    assert stack.ingestion_connected(timeout=30)
    for d in devices:
        d.close()


def test_killed_replica_gets_its_messages_back_on_restart(stack: DockerStack, api: RegistryClient) -> None:
    devices = [new_device(api, stack.mqtt_url, f"crash-{i}") for i in range(3)]
    publisher = stream(devices, rate=200, seconds=4)
    time.sleep(1.5)
    docker("kill", stack.name("ingestion", 1))  # SIGKILL: no drain, its session keeps what it was sent
    publisher.join(30)
    assert all(d.wait_acked(10) for d in devices)
    docker("start", stack.name("ingestion", 1))  # same client id: the session resumes, unacked messages return
    assert stack.ingestion_connected(timeout=30)
    assert_stored_exactly_once(api, devices, timeout=20)
    for d in devices:
        d.close()
