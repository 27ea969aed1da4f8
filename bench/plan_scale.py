"""Load and plan time for 10 / 100 / 1,000 services against the in-memory provider.

Measures loading a spec file fresh (YAML -> Spec, the compiled-form cache off) and compiled (the
cache's entry reused: what every load after the first does while nothing it read changed), then
desired + observe + plan on an empty target, and a no-op re-plan after apply; medians of --repeat.
Run: .venv/bin/python bench/plan_scale.py [--repeat 5]
Goals: plan for 1,000 services < 1 s; loading them <= 100 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from multicloud.api import Deployment
from multicloud.spec import load
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


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fresh_load(path: Path) -> None:
    """Load with the compiled-form cache turned off."""
    os.environ["MULTICLOUD_NO_CACHE"] = "1"
    try:
        load(path)
    finally:
        del os.environ["MULTICLOUD_NO_CACHE"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-plan-scale-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # a cache of its own, emptied at the end
    header = f"{'services':>9} {'load(fresh)':>12} {'load(compiled)':>15} {'plan(new)':>10} {'plan(no-op)':>12}"
    print(f"{header} {'changes':>8}")
    figures: dict[int, float] = {}
    try:
        for count in (10, 100, 1000):
            path = work / f"spec-{count}.yaml"
            path.write_text(spec_text(count))
            fresh_s = timed(lambda path=path: fresh_load(path), args.repeat)
            spec = load(path)  # compiles it
            compiled_s = timed(lambda path=path: load(path), args.repeat)
            figures[count] = compiled_s
            provider = MemoryProvider(cloud=MemoryCloud())
            deployment = Deployment(spec, "mem", provider=provider, environ={"TOKEN": "t"})
            plan_new = timed(deployment.plan, args.repeat)
            planned = deployment.plan()
            deployment.apply(planned)
            plan_noop = timed(deployment.plan, args.repeat)
            assert not deployment.plan().has_changes
            loads_ms = f"{fresh_s * 1000:10.1f}ms {compiled_s * 1000:13.1f}ms"
            plans_ms = f"{plan_new * 1000:8.1f}ms {plan_noop * 1000:10.1f}ms"
            print(f"{count:>9} {loads_ms} {plans_ms} {len(planned.changes):>8}")
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print("goal: plan for 1,000 services < 1 s (plan = desired + observe + diff, load excluded)")
    met = "met" if figures[1000] <= 0.1 else "NOT met"
    print(f"goal: load of 1,000 services <= 100 ms: {met} ({figures[1000] * 1000:.1f} ms compiled)")


if __name__ == "__main__":
    main()
