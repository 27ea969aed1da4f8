"""Recovery: injected throttling and 5xx, kill -9 mid-apply, rollback, one-service changes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from multicloud_aws import gaps
from multicloud_aws.provider import AwsEcsProvider

from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.testing.contract import SECRET_VALUE, contract_spec

SERVICE = {"image": "registry.example.com/contract/app:1"}
ENV = {"CONTRACT_TOKEN": SECRET_VALUE}


@pytest.fixture
def provider(make_provider: Callable[..., AwsEcsProvider]) -> AwsEcsProvider:
    return make_provider()


def test_throttling_and_server_errors_are_retried(provider: AwsEcsProvider, app_name: str, deploy: Any,
                                                  calls: Any) -> None:
    gaps.inject("ecs", "CreateService", "ThrottlingException", times=4)
    gaps.inject("elbv2", "CreateTargetGroup", "InternalFailure", times=4, status=500)
    gaps.inject("servicediscovery", "CreateService", "ThrottlingException", times=2)
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    try:
        assert deployment.apply().ok
        assert gaps.pending_faults() == 0
        assert Counter(calls.mutations())[("ecs", "CreateService")] >= 2  # botocore retried, then the engine
        assert not deployment.plan().has_changes
    finally:
        deployment.destroy()


@pytest.mark.parametrize("kill_at", [3, 9, 16, 24])
def test_kill_9_mid_apply_then_apply_converges_without_duplicates(
        aws: Any, provider: AwsEcsProvider, app_name: str, deploy: Any, kill_at: int, tagged: Any) -> None:
    driver = Path(__file__).with_name("aws_crash_driver.py")
    done = subprocess.run([sys.executable, str(driver), aws.endpoint, app_name, str(kill_at)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == -9, done.stderr[-2000:]
    deployment = deploy(contract_spec(app_name, SERVICE, with_extra=True), provider, ENV, target="test")
    try:
        assert deployment.apply().ok
        assert not deployment.plan().has_changes, plan_text(deployment.plan())
        arns = tagged(provider, app_name)
        kinds = Counter(arn.split(":")[5].split("/")[0] for arn in arns)
        assert kinds["loadbalancer"] == 1 and kinds["security-group"] == 1 and kinds["targetgroup"] == 1
        assert kinds["service"] == 3 and kinds["cluster"] == 1
        spaces = provider.ctx.client("servicediscovery").list_namespaces()["Namespaces"]
        assert len([n for n in spaces if n["Name"] == f"{app_name}.internal"]) == 1
    finally:
        deployment.destroy()
    assert tagged(provider, app_name) == []


def test_change_one_service_then_roll_it_back(provider: AwsEcsProvider, app_name: str, deploy: Any,
                                             calls: Any) -> None:
    first = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    first.apply()
    ecs = provider.ctx.client("ecs")
    before = ecs.describe_services(cluster=app_name, services=["worker"])["services"][0]["taskDefinition"]
    changed = deploy(contract_spec(app_name, SERVICE, worker_env="2"), provider, ENV, target="test")
    planned = changed.plan()
    acted = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in acted] == [("service/worker", Action.UPDATE)]
    assert [f.path for f in acted[0].fields] == ["task.env.LEVEL"]
    calls.clear()
    changed.apply(planned)
    operations = {op for _, op in calls.mutations()}
    assert operations <= {"RegisterTaskDefinition", "UpdateService", "TagResource"}, operations
    after = ecs.describe_services(cluster=app_name, services=["worker"])["services"][0]["taskDefinition"]
    assert after != before
    try:
        assert provider.rollback(app_name, "worker") == before
        assert ecs.describe_services(cluster=app_name, services=["worker"])["services"][0]["taskDefinition"] == before
        replan = changed.plan()
        assert [c.key for c in replan.changes if c.action is not Action.NOOP] == ["service/worker"]
        calls.clear()
        changed.apply(replan)
        assert ("ecs", "RegisterTaskDefinition") not in calls.mutations()
        assert ecs.describe_services(cluster=app_name, services=["worker"])["services"][0]["taskDefinition"] == after
    finally:
        changed.destroy()


def test_health_timeout_is_honoured_and_a_reapply_waits_for_the_rollout(
        provider: AwsEcsProvider, app_name: str, deploy: Any) -> None:
    from multicloud.errors import ApplyFailedError

    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    gaps.set_rollout_seconds(20.0)  # each ECS deployment stays IN_PROGRESS, 0 tasks running, for 20 s
    try:
        deployment.health_timeout = 3
        with pytest.raises(ApplyFailedError, match="not healthy after 3s"):
            deployment.apply()
        # it gave up while the rollout was still under way (not after waiting for it): 3 s of the 20 s a
        # deployment takes from its CreateService, however long the steps before it took on a busy machine
        ecs = provider.ctx.client("ecs")
        (api,) = ecs.describe_services(cluster=app_name, services=["api"])["services"]
        assert [(d["status"], d["rolloutState"]) for d in api["deployments"]] == [("PRIMARY", "IN_PROGRESS")]
        deployment.health_timeout = 60
        assert deployment.apply().ok  # creates what was blocked; waits for api's rollout, which it leaves alone
        assert not deployment.plan().has_changes
        again = deployment.apply()  # nothing to change: returns at once, every service steady
        assert again.ok and again.changed == 0
        assert {(s.service, s.running, s.state) for s in deployment.status()} == {
            ("api", 1, "running"), ("worker", 1, "running")}
    finally:
        gaps.set_rollout_seconds(0)
        deployment.destroy()
