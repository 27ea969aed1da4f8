"""aws-ecs against the emulator: apply and no-op re-apply times for 5 and 50 services,
API calls per service, and parallel (concurrency 8) against sequential (concurrency 1).

Run: .venv/bin/python bench/aws_apply.py
Goals: no-op re-apply of 50 services <= 10 read calls and no mutating call;
parallel apply <= 0.3x sequential wall time (with 50 ms per call, as a cloud has).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from typing import Any

from multicloud_aws import gaps
from multicloud_aws.emulator import AwsEmulator, client_factory
from multicloud_aws.provider import AwsEcsProvider

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict

READS = ("Describe", "List", "Get", "Discover")
LATENCY = 0.05
"""Round trip added to every emulated call for the parallel/sequential comparison: the
emulator shares one interpreter with the client, so without it both measure CPU alone."""


def spec(app: str, count: int) -> Any:
    """`count` IoT-like services: every tenth with a public TCP port, all with a secret."""
    services: dict[str, Any] = {}
    for i in range(count):
        public = i % 10 == 0
        services[f"svc-{i}"] = {
            "image": f"registry.example.com/iot/svc-{i}:1.0",
            "ports": [{"name": "mqtt" if public else "http", "port": 10000 + i,
                       "protocol": "mqtt" if public else "http", "expose": "public" if public else "internal"}],
            "env": {"PEER": f"${{services.svc-{max(i - 1, 0)}.url}}", "TOKEN": "${secrets.token}"},
            "replicas": 2 if i % 3 == 0 else 1,
        }
    return spec_from_dict({"name": app, "services": services, "secrets": {"token": {"from_env": "TOKEN"}},
                           "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}}})


def run(endpoint: str, count: int, concurrency: int) -> dict[str, float]:
    """Apply, re-apply and destroy one app; return timings and call counts."""
    made: list[str] = []

    def hook(event_name: str, **_: Any) -> None:
        made.append(event_name.rsplit(".", 1)[-1])

    provider = AwsEcsProvider({"region": "us-east-1"}, client_factory=client_factory(endpoint, hook=hook))
    app = f"bench-{uuid.uuid4().hex[:6]}"
    deployment = Deployment(spec(app, count), "aws", provider=provider, environ={"TOKEN": "bench-token"},
                            concurrency=concurrency, retry=RetryPolicy(attempts=6, base_delay=0.05))
    started = time.perf_counter()
    deployment.apply()
    applied = time.perf_counter() - started
    apply_calls = len(made)
    made.clear()
    started = time.perf_counter()
    deployment.apply()
    noop = time.perf_counter() - started
    reads = sum(1 for op in made if op.startswith(READS))
    writes = len(made) - reads
    deployment.destroy()
    return {"apply_s": applied, "noop_s": noop, "calls_per_service": apply_calls / count,
            "noop_reads": reads, "noop_writes": writes}


def main() -> None:
    os.environ.setdefault("MULTICLOUD_STATE_DIR", tempfile.mkdtemp())
    emulator = AwsEmulator().start()
    try:
        for count in (5, 50):
            figures = run(emulator.endpoint, count, concurrency=8)
            print(f"{count:3} services, concurrency 8: apply {figures['apply_s']:.1f}s, no-op re-apply "
                  f"{figures['noop_s']:.2f}s ({figures['noop_reads']:.0f} reads, {figures['noop_writes']:.0f} writes), "
                  f"{figures['calls_per_service']:.1f} API calls per service")
        gaps.set_latency(LATENCY)
        sequential = run(emulator.endpoint, 20, concurrency=1)["apply_s"]
        parallel = run(emulator.endpoint, 20, concurrency=8)["apply_s"]
        gaps.set_latency(0.0)
        print(f" 20 services, {LATENCY * 1000:.0f} ms per call: sequential apply {sequential:.1f}s, "
              f"parallel (8) {parallel:.1f}s ({parallel / sequential:.2f}x)")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
