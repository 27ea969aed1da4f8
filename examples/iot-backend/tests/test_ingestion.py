"""Malformed payloads are counted and dropped; ingestion stays healthy and keeps storing."""

from __future__ import annotations

import json
import time

import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from stack import DockerStack, docker, free_port

pytestmark = pytest.mark.docker

MALFORMED = {
    "json": b"{not json",
    "schema": json.dumps({"seq": 1, "ts": time.time()}).encode(),  # temperature missing
}
MORE_SCHEMA = [
    json.dumps({"seq": "7", "ts": time.time(), "temperature": 20}).encode(),  # seq not an integer
    json.dumps({"seq": 8, "ts": time.time(), "temperature": "hot"}).encode(),
    json.dumps({"seq": 9, "ts": time.time(), "temperature": 20, "device_id": "someone-else"}).encode(),
    json.dumps([1, 2, 3]).encode(),
]


def rejected(stack: DockerStack, reason: str) -> float:
    """Rejected messages of one reason, over both replicas."""
    return sum(stack.metric("ingestion_messages_rejected_total", r, f'reason="{reason}"') for r in (1, 2))


def test_malformed_payloads_are_counted_and_ingestion_stays_healthy(stack: DockerStack, api: RegistryClient) -> None:
    device = new_device(api, stack.mqtt_url, "sloppy")
    before = {reason: rejected(stack, reason) for reason in ("json", "schema", "too_large")}
    device.publish(payload=MALFORMED["json"])
    device.publish(payload=MALFORMED["schema"])
    for payload in MORE_SCHEMA:
        device.publish(payload=payload)
    device.publish(payload=b"{" + b" " * 2000 + b"}")
    good = device.publish()
    assert device.wait_acked(5)

    def counted() -> bool:
        return (
            rejected(stack, "json") - before["json"] == 1
            and rejected(stack, "schema") - before["schema"] == 1 + len(MORE_SCHEMA)
            and rejected(stack, "too_large") - before["too_large"] == 1
        )

    assert eventually(counted, timeout=5.0), "rejections not counted in /metrics"
    assert eventually(lambda: stored_seqs(api, device.device_id) == [good], timeout=5.0)
    for replica in (1, 2):
        health = stack.health(replica)
        assert health["status"] == "ok"
        assert health["mqtt_connected"] is True and health["mqtt_subscribed"] is True
    device.close()


def test_metrics_expose_received_stored_rejected_and_batch_latency(stack: DockerStack) -> None:
    import urllib.request

    with urllib.request.urlopen(stack.metrics_url(1), timeout=5) as response:
        text = response.read().decode()
    for name in (
        "ingestion_messages_received_total",
        "ingestion_readings_stored_total",
        "ingestion_messages_rejected_total",
        "ingestion_batch_seconds_bucket",
        "ingestion_publish_to_commit_seconds_bucket",
    ):
        assert name in text


# Runs in a replica (its prometheus_client): the bulk observation exposes what one observe() per amount does.
BULK_SCRIPT = """
import json, random
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from ingestion_service import metrics
bounds = metrics.LATENCY._upper_bounds[:-1]
amounts = [*bounds, -1.0, 0.0, 31.0, 1e9] + [random.Random(4).uniform(0, 6) for _ in range(5000)]
texts = []
for bulk in (False, True):
    registry = CollectorRegistry()
    histogram = Histogram("latency_probe", "probe", buckets=bounds, registry=registry)
    if bulk:
        metrics.observe_all(histogram, amounts[:7])
        metrics.observe_all(histogram, amounts[7:])
        metrics.observe_all(histogram, [])
    else:
        for amount in amounts:
            histogram.observe(amount)
    texts.append([line for line in generate_latest(registry).decode().splitlines() if "_created" not in line])
print(json.dumps(texts))
"""


def test_latency_observed_per_batch_exposes_the_same_histogram(stack: DockerStack) -> None:
    one_by_one, bulk = json.loads(docker("exec", stack.name("ingestion", 1), "python3", "-c", BULK_SCRIPT))
    sums = [next(float(line.split()[1]) for line in text if line.startswith("latency_probe_sum"))
            for text in (one_by_one, bulk)]
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)
    assert [line for line in one_by_one if "_sum" not in line] == [line for line in bulk if "_sum" not in line]
    assert any(line.startswith('latency_probe_bucket{le="0.005"} 3.0') for line in bulk)  # -1, 0 and the bound


def test_a_replica_consumes_over_websockets(stack: DockerStack, api: RegistryClient) -> None:
    """ws://broker:8080/mqtt (Cloud Run's only way in): a replica in its own share group gets every message."""
    replica = 9
    stack.ports[f"ingestion-{replica}"] = port = free_port()
    env = {**stack.env("ingestion"), "MQTT_URL": "ws://broker:8080/mqtt", "MQTT_SHARE_GROUP": "ws-check"}
    stack._run("ingestion", env, {port: stack.services["ingestion"].ports[0].port}, replica=replica)
    try:
        assert eventually(lambda: stack.subscribed(replica), timeout=60), stack.logs()
        device = new_device(api, stack.mqtt_url, "over-ws")
        seqs = [device.publish() for _ in range(20)]
        assert device.wait_acked(10)
        assert eventually(lambda: stack.metric("ingestion_messages_received_total", replica) == 20, timeout=10)
        assert eventually(lambda: sorted(stored_seqs(api, device.device_id)) == sorted(seqs), timeout=10)
        device.close()
    finally:
        docker("stop", "-t", "10", stack.name("ingestion", replica))  # drains and ends its session
