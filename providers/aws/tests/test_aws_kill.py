"""Kill trials on aws-ecs: `multicloud apply` (a real subprocess against the emulator) is
killed with SIGKILL right after a chosen API call took effect, including between dependent
objects (a target group made, its listener not yet); the next apply must converge, with
`plan --detailed-exitcode` = 0 and no duplicate objects. MULTICLOUD_KILL_TRIALS sets how many
trials run (5 by default; 20 for the figures in the report)."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from multicloud_aws import gaps
from multicloud_aws.provider import AwsEcsProvider

from multicloud.contract import RunningEmulator
from multicloud.spec import load
from multicloud.testing.contract import SECRET_VALUE
from multicloud.testing.kill import kill, run_trial, trial_count

READS = ("Describe", "List", "Get", "Discover")
FORCED = [
    ("elbv2", "CreateTargetGroup"),  # the group exists, its listener not yet
    ("servicediscovery", "CreatePrivateDnsNamespace"),
    ("elbv2", "CreateLoadBalancer"),
    ("ecs", "RegisterTaskDefinition"),
    ("ecs", "CreateService"),
    ("elbv2", "CreateListener"),
]
"""Kill right after the first call of these; the other trials kill after a random call."""
SEED = int(os.environ.get("MULTICLOUD_KILL_SEED", "10"))


def _point(trial: int) -> tuple[str, tuple[str, str] | int]:
    """What trial number `trial` does and where it kills: it creates the app (the first ones
    killed after the first call of a FORCED operation, the rest after a random mutation), or
    every other one replaces the public port (9000 -> 8080: a second target group is made
    before the first is deleted) and is killed after one of its few mutations."""
    if trial < len(FORCED):
        return "create", FORCED[trial]
    rng = random.Random(SEED + trial)
    return ("replace", rng.randint(1, 8)) if trial % 2 == 0 else ("create", rng.randint(1, 28))


def _spec_file(path: Path, app: str, port: int = 8080) -> Path:
    service = {"image": "registry.example.com/contract/app:1"}
    data = {
        "name": app,
        "services": {
            "api": {**service, "ports": [{"name": "http", "port": port, "protocol": "http", "expose": "public"}]},
            "worker": {**service, "depends_on": ["api"],
                       "env": {"API_URL": "${services.api.url}", "TOKEN": "${secrets.token}"}},
            "extra": dict(service),
        },
        "secrets": {"token": {"from_env": "CONTRACT_TOKEN"}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("trial", range(trial_count()))
def test_kill_9_then_apply_converges(trial: int, aws: RunningEmulator, make_provider: Callable[..., AwsEcsProvider],
                                     app_name: str, deploy: Any, tagged: Any, tmp_path: Path) -> None:
    scenario, point = _point(trial)
    if scenario == "replace":
        before = load(_spec_file(tmp_path / "before.yaml", app_name, port=9000))
        deploy(before, make_provider(), {"CONTRACT_TOKEN": SECRET_VALUE}).apply()
    spec_file = _spec_file(tmp_path / "multicloud.yaml", app_name)
    env = {**os.environ, **aws.environment, "CONTRACT_TOKEN": SECRET_VALUE,
           "MULTICLOUD_STATE_DIR": str(tmp_path / "state")}
    mutations = [0]
    pid: list[int] = []

    def watcher(service: str, operation: str) -> None:
        if operation.startswith(READS) or not pid:
            return
        mutations[0] += 1
        if point == (service, operation) or point == mutations[0]:
            gaps.watch(None)
            kill(pid[0])

    gaps.watch(watcher)
    label = f"{scenario}: " + (f"after {point[1]}" if isinstance(point, tuple) else f"after mutation {point}")
    outcome = run_trial(spec_file, "aws", env, point=label, arm=pid.append, disarm=lambda: gaps.watch(None))
    print(f"aws kill trial {trial}: {outcome}")
    provider = make_provider()
    try:
        assert outcome.converged, outcome.output
        kinds = Counter(arn.split(":")[5].split("/")[0] for arn in tagged(provider, app_name))
        assert (kinds["loadbalancer"], kinds["targetgroup"], kinds["security-group"]) == (1, 1, 1), kinds
        assert (kinds["service"], kinds["cluster"]) == (3, 1), kinds
        spaces = provider.ctx.client("servicediscovery").list_namespaces()["Namespaces"]
        assert len([n for n in spaces if n.get("Description") == f"multicloud:{app_name}"]) == 1
    finally:
        deploy(load(spec_file), provider, {"CONTRACT_TOKEN": SECRET_VALUE}).destroy()
    assert tagged(provider, app_name) == []
