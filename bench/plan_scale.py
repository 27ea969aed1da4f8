"""Plan time for 10 / 100 / 1,000 services against the in-memory provider.

Measures load (YAML -> Spec), desired + observe + plan on an empty target, and a no-op
re-plan after apply. Run: .venv/bin/python bench/plan_scale.py
Goal: plan for 1,000 services < 1 s.
"""

from __future__ import annotations

import statistics
import time

import yaml

from multicloud.api import Deployment
from multicloud.spec import loads
from multicloud.testing import MemoryCloud, MemoryProvider


def spec_text(count: int) -> str:
    """A spec with `count` services, each depending on the previous ten's first."""
    services = {}
    for i in range(count):
        services[f"svc-{i}"] = {
            "image": f"registry.example.com/app/svc-{i}:1.0",
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "internal" if i % 10 else "public"}],
            "env": {"PEER": f"${{services.svc-{max(i - 1, 0)}.url}}", "TOKEN": "${secrets.token}", "LEVEL": "info"},
            "resources": {"cpu": 0.25, "memory": "512Mi"},
            "healthcheck": {"http": "/healthz"},
            "depends_on": [f"svc-{i - i % 10}"] if i % 10 else [],
        }
    data = {
        "name": "bench",
        "services": services,
        "secrets": {"token": {"from_env": "TOKEN"}},
        "targets": {"mem": {"provider": "memory"}},
    }
    return yaml.safe_dump(data, sort_keys=False)


def timed(fn, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    print(f"{'services':>9} {'load':>9} {'plan(new)':>10} {'plan(no-op)':>12} {'changes':>8}")
    for count in (10, 100, 1000):
        text = spec_text(count)
        load_s = timed(lambda text=text: loads(text))
        spec = loads(text)
        deployment = Deployment(spec, "mem", provider=MemoryProvider(cloud=MemoryCloud()), environ={"TOKEN": "t"})
        plan_new = timed(deployment.plan)
        planned = deployment.plan()
        deployment.apply(planned)
        plan_noop = timed(deployment.plan)
        assert not deployment.plan().has_changes
        figures = f"{load_s * 1000:8.1f}ms {plan_new * 1000:9.1f}ms {plan_noop * 1000:11.1f}ms"
        print(f"{count:>9} {figures} {len(planned.changes):>8}")
    print("goal: plan for 1,000 services < 1 s (plan = desired + observe + diff, load excluded)")


if __name__ == "__main__":
    main()
