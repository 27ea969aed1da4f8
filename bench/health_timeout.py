"""How long an apply takes to give up on health, against --health-timeout: (1) an empty plan
whose resources answer health polls slowly (the Cloud Run emulator with every request
delayed), (2) a create whose health poll hangs for good (a provider stuck in a call).

Run: .venv/bin/python bench/health_timeout.py [--timeouts 1 3] [--request-delay 8] [--services 4] [--no-hung]
Prints, per timeout, the wall time of each apply until it failed with a health timeout.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

from multicloud_gcp.emulator import CloudRunEmulator
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.contract import Health
from multicloud.errors import ApplyFailedError
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.testing import MemoryCloud, MemoryProvider


def spec(app: str, services: int, provider: str) -> Any:
    """`services` HTTP services, nothing else."""
    found = {
        f"api{i}": {
            "image": "registry.example.com/bench/api:1",
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}],
        }
        for i in range(services)
    }
    return spec_from_dict({"name": app, "services": found, "targets": {"t": {"provider": provider}}})


def timed_failure(deployment: Deployment) -> float:
    """Seconds until apply raised (it must: nothing becomes healthy in time)."""
    planned = deployment.plan()
    started = time.perf_counter()
    try:
        deployment.apply(planned)
    except ApplyFailedError:
        return time.perf_counter() - started
    raise SystemExit("apply succeeded; the bench expects a health timeout")


class HungHealth(MemoryProvider):
    """A memory provider whose health poll never returns (until the bench ends)."""

    release = threading.Event()

    def health(self, app: str, resource: Resource) -> Health:
        self.release.wait()
        return super().health(app, resource)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeouts", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--request-delay", type=float, default=8.0)
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--no-hung", action="store_true", help="skip case (2) (an engine without a bound hangs)")
    args = parser.parse_args()
    retry = RetryPolicy(attempts=3, base_delay=0.05)
    running = CloudRunEmulator().start()
    try:
        print(f"apply until it gives up on health, {args.services} services, concurrency 4")
        for timeout in args.timeouts:
            app = f"bench-{uuid.uuid4().hex[:6]}"
            provider = CloudRunProvider(running.settings("rest"))
            ready = Deployment(spec(app, args.services, "gcp-cloudrun"), "t", provider=provider, retry=retry)
            ready.apply()
            running.model.faults.request_delay = args.request_delay
            slow = Deployment(
                spec(app, args.services, "gcp-cloudrun"), "t", provider=provider, retry=retry, health_timeout=timeout
            )
            planned = slow.plan()  # slow too, but not part of the health wait
            started = time.perf_counter()
            try:
                slow.apply(planned)
                outcome = "healthy"
            except ApplyFailedError:
                outcome = "health timeout"
            seconds = time.perf_counter() - started
            running.model.faults.request_delay = 0.0
            print(
                f"  --health-timeout {timeout:g}s  empty plan, emulator answers in {args.request_delay:g}s: "
                f"{seconds:6.2f} s ({outcome})"
            )
            if args.no_hung:
                continue
            hung = Deployment(
                spec(f"hung-{app}", args.services, "memory"),
                "t",
                provider=HungHealth(cloud=MemoryCloud()),
                retry=retry,
                health_timeout=timeout,
            )
            print(f"  --health-timeout {timeout:g}s  create, health poll hangs for good:      "
                  f"{timed_failure(hung):6.2f} s")
    finally:
        HungHealth.release.set()
        running.stop()


if __name__ == "__main__":
    main()
