"""Kill trials on azure-aci: `multicloud apply` (a real subprocess against the ARM emulator,
operations slowed so groups stay Creating/Deleting for a while) is killed with SIGKILL at a
random moment after a chosen PUT or DELETE took effect: while a new group provisions, inside a
replace (cpu change: after the DELETE, after the PUT), while a container leaves, while a new
flexible server provisions (before its database and firewall rule). The next apply must return
only once healthy and converge (`plan --detailed-exitcode` = 0), leaving one group (and the
server with its database and rule).
MULTICLOUD_KILL_TRIALS sets how many trials run (5 by default; 20 for the report's figures)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from multicloud_azure import postgres
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.spec import load
from multicloud.testing.kill import kill, run_trial, trial_count

SEED = int(os.environ.get("MULTICLOUD_KILL_SEED", "10"))
SCENARIOS = ("create", "replace", "shrink", "database")
"""What the killed apply does: create the app, replace it (cpu change), drop a container, create
the app with a database (killed once the server's PUT was accepted)."""


def _spec(settings: dict[str, Any], *, cpu: float = 0.5, with_b: bool = True, db: bool = False) -> dict[str, Any]:
    services: dict[str, Any] = {
        "a": {"image": "registry.example.com/a:1", "env": {"TOKEN": "${secrets.token}"},
              "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}],
              "resources": {"cpu": cpu, "memory": "512Mi"}},
    }
    if with_b:
        services["b"] = {"image": "registry.example.com/b:1", "resources": {"cpu": 0.5, "memory": "512Mi"}}
    spec = {"name": "killed", "services": services, "secrets": {"token": {"from_env": "KILL_TOKEN"}},
            "targets": {"azure": {"provider": "azure-aci", **settings}}}
    if db:
        services["a"]["env"]["DATABASE_URL"] = "${resources.db.url}"
        spec["resources"] = {"db": {"type": "postgres", "version": 16, "tier": "small", "database": "orders"}}
    return spec


def _aimed(scenario: str, method: str, path: str) -> bool:
    """True for the request after which the scenario's kill is timed: the flexible server's PUT for
    `database`, else the group's `method`."""
    if scenario == "database":
        return method == "PUT" and "/flexibleServers/" in path and "/databases/" not in path and "/firewallRules/" \
            not in path
    return "/containerGroups/" in path


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("trial", range(trial_count()))
def test_kill_9_then_apply_converges(trial: int, arm: EmulatorHandle, settings: dict[str, Any],
                                     make_provider: Callable[..., AzureAciProvider], tmp_path: Path) -> None:
    rng = random.Random(SEED + trial)
    scenario = SCENARIOS[trial % len(SCENARIOS)]
    env = {**os.environ, **arm.running.environment, "KILL_TOKEN": "kill-s3cret",
           "MULTICLOUD_STATE_DIR": str(tmp_path / "state")}
    before = _spec(settings)
    after = {"create": before, "replace": _spec(settings, cpu=1.0), "shrink": _spec(settings, with_b=False),
             "database": _spec(settings, db=True)}[scenario]
    if scenario in ("replace", "shrink"):
        Deployment(load(_write(tmp_path / "before.yaml", before)), "azure", provider=make_provider(),
                   environ={"KILL_TOKEN": "kill-s3cret"}).apply()
    spec_file = _write(tmp_path / "multicloud.yaml", after)
    method = "PUT" if scenario != "replace" else rng.choice(["PUT", "DELETE"])
    delay = rng.uniform(0.0, 1.2)
    point = f"{scenario}: {delay:.2f}s after the first {method}" + (" of the server" if scenario == "database" else "")
    pid: list[int] = []

    def watcher(seen: str, path: str, status: int) -> None:
        if seen == method and _aimed(scenario, seen, path) and status < 300 and pid:
            arm.backend.watchers.clear()
            threading.Timer(delay, kill, (pid[0],)).start()

    arm.backend.op_seconds = 1.5  # provisioning and deleting take long enough to be caught
    servers = arm.backend.postgres
    assert servers is not None
    servers.op_seconds = 1.5
    arm.backend.watchers.append(watcher)
    try:
        outcome = run_trial(spec_file, "azure", env, point=point, arm=pid.append, disarm=arm.backend.watchers.clear)
    finally:
        servers.op_seconds = 0.02
    print(f"azure kill trial {trial}: {outcome}")
    assert outcome.converged, outcome.output
    provider = make_provider()
    groups = provider.client.list_groups()
    assert [g["name"] for g in groups] == ["killed"]
    assert groups[0]["properties"]["provisioningState"] == "Succeeded", "the re-apply returned before health"
    wanted = {"create": {"a", "b"}, "replace": {"a", "b"}, "shrink": {"a"}, "database": {"a", "b"}}[scenario]
    assert {c["name"] for c in groups[0]["properties"]["containers"]} == wanted
    if scenario == "database":
        (server,) = [s for s in servers.servers.values() if s.resource_group == settings["resource_group"]]
        assert server.state == "Ready" and "orders" in server.databases and postgres.FIREWALL_RULE in server.firewall
