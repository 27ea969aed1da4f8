"""azure-aci against the ARM emulator: wall time of apply, no-op apply, one-env-change apply
and destroy of an IoT-shaped app, through the real SDK over HTTPS, with request counts.

Run: .venv/bin/python bench/azure_apply.py [--runs 5] [--op-seconds 0.02] [--services 4]
Each emulated long-running operation takes --op-seconds; the figures are medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from multicloud_azure.emulator import AzureEmulator, EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict


def iot_spec(app: str, settings: dict[str, Any], extra: int, level: str) -> Any:
    """A broker with public MQTT and MQTT-over-WebSockets, an ingestion service with a secret,
    and `extra` small HTTP services, all in one group."""
    services: dict[str, Any] = {
        "broker": {
            "image": "registry.example.com/iot/broker:1",
            "ports": [
                {"name": "mqtt", "port": 1883, "protocol": "mqtt", "expose": "public"},
                {"name": "mqtt-ws", "port": 8080, "protocol": "mqtt-ws", "expose": "public"},
            ],
            "healthcheck": {"tcp": 1883},
        },
        "ingestion": {
            "image": "registry.example.com/iot/ingestion:1",
            "env": {
                "MQTT_URL": "${services.broker.url.mqtt}",
                "DATABASE_URL": "${secrets.database_url}",
                "LEVEL": level,
            },
        },
    }
    for index in range(extra):
        services[f"svc{index}"] = {
            "image": "registry.example.com/iot/svc:1",
            "ports": [{"name": "http", "port": 9000 + index, "protocol": "http"}],
            "healthcheck": {"http": "/healthz"},
            "resources": {"cpu": 0.1, "memory": "256Mi"},
        }
    return spec_from_dict(
        {
            "name": app,
            "services": services,
            "secrets": {"database_url": {"from_env": "DATABASE_URL"}},
            "targets": {"azure": {"provider": "azure-aci", **settings}},
        }
    )


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_run(handle: EmulatorHandle, extra: int) -> dict[str, float]:
    settings = {
        "subscription_id": "00000000-0000-0000-0000-00000000beec",
        "resource_group": f"bench-{uuid.uuid4().hex[:6]}",
        "location": "westeurope",
        "arm_endpoint": handle.endpoint,
        "ca_bundle": handle.ca_bundle,
        "poll_interval": 0.05,
    }
    provider = AzureAciProvider(settings)
    app = f"bench-{uuid.uuid4().hex[:6]}"
    environ = {"DATABASE_URL": "postgresql://iot:pw@db.example:5432/iot"}

    def deploy(level: str) -> Deployment:
        return Deployment(
            iot_spec(app, settings, extra, level),
            "azure",
            provider=provider,
            environ=environ,
            retry=RetryPolicy(attempts=5, base_delay=0.2),
        )

    figures = {}
    puts = handle.backend.count("PUT")
    figures["apply (create)"] = timed(lambda: deploy("1").apply())
    figures["no-op apply"] = timed(lambda: deploy("1").apply())
    noop_puts = handle.backend.count("PUT") - puts
    figures["apply (one env change)"] = timed(lambda: deploy("2").apply())
    figures["destroy"] = timed(lambda: deploy("2").destroy())
    figures["PUTs for create + no-op"] = float(noop_puts)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--op-seconds", type=float, default=0.02)
    parser.add_argument("--services", type=int, default=4, help="services in the group (at least 2)")
    args = parser.parse_args()
    handle = AzureEmulator(op_seconds=args.op_seconds).serve()
    os.environ["MULTICLOUD_AZURE_TOKEN"] = handle.token
    os.environ.setdefault("MULTICLOUD_STATE_DIR", f"/tmp/multicloud-bench-{os.getpid()}")
    try:
        one_run(handle, max(0, args.services - 2))  # warm up: SDK import, TLS, first connection
        runs = [one_run(handle, max(0, args.services - 2)) for _ in range(args.runs)]
    finally:
        handle.stop()
    print(
        f"azure-aci on the ARM emulator: {args.services} services in one group, LROs take "
        f"{args.op_seconds * 1000:.0f} ms, median of {args.runs} runs"
    )
    for name in runs[0]:
        values = [r[name] for r in runs]
        if name.startswith("PUTs"):
            print(f"  {name:28} {statistics.median(values):6.0f}")
        else:
            print(f"  {name:28} {statistics.median(values) * 1000:6.0f} ms  (min {min(values) * 1000:.0f})")


if __name__ == "__main__":
    main()
