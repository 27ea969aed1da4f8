"""kill -9 of an apply at several points, then another apply: it converges, with no
duplicate or orphaned containers and nothing unlabelled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import SECRET, containers_by_service, deployment, free_port, three_service_spec
from multicloud_docker import labels as L

from multicloud.planner import Action

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]
DRIVER = Path(__file__).parent / "apply_driver.py"


def apply_until_killed(data: dict[str, Any], after_events: int, stop_at: str | None = None) -> list[str]:
    """Run an apply in a subprocess and SIGKILL it after N events (or at the first event
    containing `stop_at`); return the events it printed."""
    env = os.environ | {"TOKEN_VALUE": SECRET}
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), json.dumps(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    seen: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            seen.append(line.rstrip("\n"))
            if len(seen) >= after_events or (stop_at and stop_at in line):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    return seen


def apply_killed_after(data: dict[str, Any], seconds: float) -> list[str]:
    """Run an apply in a subprocess and SIGKILL it `seconds` after it started (wherever it
    is then); return the events it printed."""
    env = os.environ | {"TOKEN_VALUE": SECRET}
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), json.dumps(data)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        text=True,
    )
    timer = threading.Timer(seconds, lambda: proc.poll() is None and os.kill(proc.pid, signal.SIGKILL))
    timer.start()
    assert proc.stdout is not None
    try:
        seen = [line.rstrip("\n") for line in proc.stdout]
    finally:
        timer.cancel()
        proc.wait(timeout=60)
        proc.stdout.close()
    return seen


def assert_converged(engine: Any, app: str, expected: dict[str, int]) -> None:
    """Exactly one running container per desired replica, all of the desired spec."""
    groups = containers_by_service(engine, app)
    assert {s: len(g) for s, g in groups.items()} == expected
    for service, group in groups.items():
        hashes = {c["Labels"][L.SPEC_HASH] for c in group}
        indices = sorted(int(c["Labels"][L.REPLICA]) for c in group)
        assert len(hashes) == 1, (service, hashes)
        assert indices == list(range(1, expected[service] + 1)), (service, indices)
        assert all(c["State"] == "running" for c in group), [(c["Names"], c["State"]) for c in group]
    networks = engine.networks(filters={"label": [f"{L.APP}={app}"]})
    assert len(networks) == 1


def test_kill_minus_9_at_several_points_then_apply_converges(engine: Any, app: str) -> None:
    port = free_port()
    data = three_service_spec(app, port)
    # each run starts from what the killed one left: mid-build, between api's two replicas,
    # right after web's container started (before its health was awaited)
    for marker in ("building", f"started {app}_api_1_", f"started {app}_web_1_"):
        events = apply_until_killed(data, 10_000, stop_at=marker)
        assert marker in events[-1], events
        assert "finished" not in events
    final = deployment(data)
    assert final.apply().ok
    assert_converged(engine, app, {"web": 1, "api": 2, "store": 1})
    assert not final.plan().has_changes


def test_kill_during_rolling_replace_leaves_old_serving_then_converges(engine: Any, app: str) -> None:
    port = free_port()
    deployment(three_service_spec(app, port)).apply()
    changed = three_service_spec(app, port, api_env={"LEVEL": "2"})
    events = apply_until_killed(changed, 10_000, stop_at="service/api\twaiting for health")
    assert any("waiting for health" in e for e in events), events
    # between the halves of create-before-delete: the old generation still serves beside the
    # new one; observe shows both instances and the plan removes the old one
    observed = [r for r in deployment(changed).provider.observe(app) if r.key == "service/api"]
    assert len(observed) == 2 and "LEVEL" not in observed[0].properties["env"]
    planned = deployment(changed).plan()
    assert [(c.id, c.action) for c in planned.changes if c.action is not Action.NOOP][-1] == (
        f"service/api#{observed[0].instance}",
        Action.DELETE,
    )
    assert deployment(changed).apply().ok
    assert_converged(engine, app, {"web": 1, "api": 2, "store": 1})


def test_kill_during_a_health_wait_then_reapply_returns_only_when_healthy(engine: Any, app: str) -> None:
    slow = {
        "name": app,
        "services": {
            "slow": {
                "image": "multicloud-test/app:1",
                "command": ["sh", "-c", "sleep 6; exec python3 /app/app.py"],
                "ports": [{"name": "http", "port": 8080}],
                "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 60},
            }
        },
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }
    events = apply_until_killed(slow, 10_000, stop_at="service/slow\twaiting for health")
    assert "waiting for health" in events[-1] and "finished" not in events
    again = deployment(slow)
    assert not again.plan().has_changes  # it exists as desired, it is only not healthy yet
    result = again.apply()
    (waited,) = result.steps
    assert (waited.key, waited.outcome) == ("service/slow", "skipped") and result.changed == 0
    desired = next(r for r in again.provider.desired(again.target_spec, {}) if r.key == "service/slow")
    assert again.provider.health(app, desired).state.value == "healthy"  # at once: apply returned only then
    # status is the engine's own verdict, which follows the provider's probe within an interval
    deadline = time.monotonic() + 10
    while [(s.healthy, s.state) for s in again.status()] != [(1, "running")] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(s.healthy, s.state) for s in again.status()] == [(1, "running")]


KILL_TRIALS = 20


def test_kill_minus_9_at_random_points_of_replaces_then_apply_converges(
    engine: Any, app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each trial replaces web (fixed host port: delete-before-create) and api (2 replicas:
    create-before-delete), kills the apply at a random moment, then applies once more."""
    seed = int(os.environ.get("MULTICLOUD_KILL_SEED") or time.time())
    rng = random.Random(seed)
    port = free_port()
    deployment(three_service_spec(app, port)).apply()
    report = []
    for trial in range(KILL_TRIALS):
        data = three_service_spec(app, port, greeting=f"g{trial}", api_env={"LEVEL": str(trial)})
        delay = rng.uniform(1.0, 9.0)
        events = apply_killed_after(data, delay)
        last = events[-1] if events else "(nothing printed)"
        survivors = {s: len(g) for s, g in containers_by_service(engine, app).items()}
        final = deployment(data)
        result = final.apply()
        assert result.ok, (trial, delay, last, result)
        assert_converged(engine, app, {"web": 1, "api": 2, "store": 1})
        assert not final.plan().has_changes, (trial, delay, last)
        report.append((trial, round(delay, 2), "finished" in events, survivors, result.changed, last[:90]))
    with capsys.disabled():
        print(f"\nkill trials (seed {seed}): trial, kill after s, apply had finished, containers left, "
              "steps the next apply changed, last event")
        for row in report:
            print("  ", *row, sep=" | ")
