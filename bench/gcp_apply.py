"""gcp-cloudrun against the Cloud Run emulator: wall time of apply, no-op apply, one-env-change
apply (a new revision), rollback and destroy of an IoT-shaped app, through the unmodified
run_v2 clients over REST and gRPC, with request counts.

Run: .venv/bin/python bench/gcp_apply.py [--runs 5] [--op-seconds 0] [--services 4]
Each emulated long-running operation takes --op-seconds (0: done at once); figures are medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict


def iot_spec(app: str, services: int, release: str) -> Any:
    """A WebSocket broker, an ingestion service reading a secret, and small HTTP services."""
    found: dict[str, Any] = {
        "broker": {
            "image": "registry.example.com/iot/broker:1",
            "ports": [{"name": "mqtt-ws", "port": 8080, "protocol": "mqtt-ws", "expose": "public"}],
            "resources": {"cpu": 1, "memory": "512Mi"},
            "healthcheck": {"tcp": 8080},
        },
        "ingestion": {
            "image": "registry.example.com/iot/ingestion:1",
            "replicas": 2,
            "resources": {"cpu": 1, "memory": "512Mi"},  # it works between requests: instance billing
            "env": {
                "MQTT_URL": "${services.broker.url}",
                "DATABASE_URL": "${secrets.database_url}",
                "RELEASE": release,
            },
            "depends_on": ["broker"],
        },
    }
    for i in range(max(0, services - 2)):
        found[f"api{i}"] = {
            "image": "registry.example.com/iot/api:1",
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}],
            "healthcheck": {"http": "/healthz"},
        }
    return spec_from_dict(
        {
            "name": app,
            "services": found,
            "secrets": {"database_url": {"from_env": "DATABASE_URL"}},
            "targets": {"gcp": {"provider": "gcp-cloudrun"}},
        }
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_run(running: RunningCloudRun, transport: str, services: int) -> dict[str, tuple[float, int]]:
    """Apply, no-op apply, change one service, roll it back, destroy: (seconds, requests) each."""
    app = f"bench-{uuid.uuid4().hex[:6]}"
    provider = CloudRunProvider(running.settings(transport))
    environ = {"DATABASE_URL": "postgres://bench:pw@db.example.com/iot"}

    def deployment(release: str) -> Deployment:
        return Deployment(
            iot_spec(app, services, release),
            "gcp",
            provider=provider,
            environ=environ,
            retry=RetryPolicy(attempts=5, base_delay=0.05),
            health_timeout=60,
        )

    figures: dict[str, tuple[float, int]] = {}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("apply", lambda: deployment("1").apply()),
        ("no-op apply", lambda: deployment("1").apply()),
        ("change one service", lambda: deployment("2").apply()),
        ("rollback", lambda: deployment("2").rollback("ingestion")),
        ("destroy", lambda: deployment("2").destroy()),
    ]
    for name, action in steps:
        before = len(running.model.requests)
        seconds = timed(action)
        figures[name] = (seconds, len(running.model.requests) - before)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--op-seconds", type=float, default=0.0)
    args = parser.parse_args()
    running = CloudRunEmulator().start()
    try:
        running.model.faults.slow_operations(args.op_seconds)
        print(
            f"gcp-cloudrun vs the Cloud Run emulator: {args.services} services, operations take "
            f"{args.op_seconds:g}s, median of {args.runs} runs"
        )
        for transport in ("rest", "grpc"):
            one_run(running, transport, args.services)  # warm-up: imports, connections
            runs = [one_run(running, transport, args.services) for _ in range(args.runs)]
            for step in runs[0]:
                seconds = statistics.median(r[step][0] for r in runs)
                requests = statistics.median(r[step][1] for r in runs)
                print(f"  {transport:4}  {step:20} {seconds * 1000:8.1f} ms  {requests:4.0f} requests")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
