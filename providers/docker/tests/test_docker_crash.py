"""kill -9 of an apply at several points, then another apply: it converges, with no
duplicate or orphaned containers and nothing unlabelled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
