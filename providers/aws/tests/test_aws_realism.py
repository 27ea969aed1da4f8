"""What real AWS does that moto alone hides (issue 16, AWS items), taught to the emulator
(multicloud_aws.gaps) so each test fails on a provider that ignores it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from multicloud_aws import gaps
from multicloud_aws.provider import AwsEcsProvider

from multicloud.testing.contract import SECRET_VALUE, contract_spec

SERVICE = {"image": "registry.example.com/contract/app:1"}
ENV = {"CONTRACT_TOKEN": SECRET_VALUE}
DRAIN_SECONDS = 2.5


@pytest.fixture
def provider(make_provider: Callable[..., AwsEcsProvider]) -> AwsEcsProvider:
    return make_provider()


@pytest.fixture
def draining() -> Iterator[float]:
    """Deleted ECS services stay DRAINING, tasks running, for DRAIN_SECONDS."""
    gaps.set_draining_seconds(DRAIN_SECONDS)
    yield DRAIN_SECONDS
    gaps.set_draining_seconds(0)


def test_destroy_waits_for_draining_services_before_cluster_cloud_map_and_security_group(
        provider: AwsEcsProvider, app_name: str, deploy: Any, tagged: Any, draining: float) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert deployment.apply().ok
    ecs = provider.ctx.client("ecs")
    started = time.monotonic()
    result = deployment.destroy()
    assert result.ok, result
    assert time.monotonic() - started >= draining
    assert tagged(provider, app_name) == []
    assert [c for c in ecs.describe_clusters(clusters=[app_name])["clusters"] if c["status"] == "ACTIVE"] == []


def test_the_emulator_refuses_deletes_while_a_service_drains(
        provider: AwsEcsProvider, app_name: str, deploy: Any, draining: float) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert deployment.apply().ok
    ecs, ec2 = provider.ctx.client("ecs"), provider.ctx.client("ec2")
    discovery = provider.ctx.client("servicediscovery")
    try:
        api = ecs.describe_services(cluster=app_name, services=["api"])["services"][0]
        with pytest.raises(Exception, match="ClusterContainsServicesException"):
            ecs.delete_cluster(cluster=app_name)
        ecs.delete_service(cluster=app_name, service="api", force=True)
        assert ecs.describe_services(cluster=app_name, services=["api"])["services"][0]["status"] == "DRAINING"
        ecs.delete_service(cluster=app_name, service="worker", force=True)
        with pytest.raises(Exception, match="ClusterContainsTasksException"):
            ecs.delete_cluster(cluster=app_name)
        registry = api["serviceRegistries"][0]["registryArn"].rsplit("/", 1)[-1]
        with pytest.raises(Exception, match="ResourceInUse"):
            discovery.delete_service(Id=registry)
        group = api["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"][0]
        with pytest.raises(Exception, match="DependencyViolation"):
            ec2.delete_security_group(GroupId=group)
        time.sleep(draining)
        assert ecs.describe_services(cluster=app_name, services=["api"])["services"] == []
    finally:
        assert deployment.destroy().ok


def test_apply_after_destroy_recreates_the_cluster_the_tagging_api_still_lists(
        provider: AwsEcsProvider, app_name: str, deploy: Any, tagged: Any) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert deployment.apply().ok
    assert deployment.destroy().ok
    listed = provider.ctx.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "multicloud:app", "Values": [app_name]}])["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in listed if ":cluster/" in r["ResourceARN"]]  # INACTIVE, still listed
    try:
        assert "cluster/" + app_name in {c.key for c in deployment.plan().changes if c.action.value == "create"}
        assert deployment.apply().ok
        ecs = provider.ctx.client("ecs")
        assert ecs.describe_clusters(clusters=[app_name])["clusters"][0]["status"] == "ACTIVE"
        assert len(ecs.list_services(cluster=app_name)["serviceArns"]) == 2
        assert not deployment.plan().has_changes
    finally:
        assert deployment.destroy().ok
    assert tagged(provider, app_name) == []


def test_creating_a_service_waits_while_a_deleted_one_of_its_name_drains(
        provider: AwsEcsProvider, app_name: str, deploy: Any, draining: float) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert deployment.apply().ok
    ecs = provider.ctx.client("ecs")
    try:
        ecs.delete_service(cluster=app_name, service="worker", force=True)  # someone deleted it; it drains
        result = deployment.apply()
        assert result.ok, result
        worker = ecs.describe_services(cluster=app_name, services=["worker"])["services"]
        assert [s["status"] for s in worker] == ["ACTIVE"]
    finally:
        assert deployment.destroy().ok


def test_target_groups_drain_and_turn_healthy_fast_and_older_ones_are_updated(
        provider: AwsEcsProvider, app_name: str, deploy: Any) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert deployment.apply().ok
    elbv2 = provider.ctx.client("elbv2")

    def timings() -> list[tuple[int, int, int, str]]:
        arns = tagged_target_groups(provider, app_name)
        groups = elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"]
        return [(g["HealthCheckIntervalSeconds"], g["HealthyThresholdCount"], g["UnhealthyThresholdCount"],
                 _attribute(elbv2, g["TargetGroupArn"], "deregistration_delay.timeout_seconds")) for g in groups]

    try:
        assert timings() == [(10, 2, 2, "30")]
        group = tagged_target_groups(provider, app_name)[0]
        elbv2.modify_target_group(TargetGroupArn=group, HealthCheckIntervalSeconds=30, HealthyThresholdCount=5)
        elbv2.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "300"}])  # as an older apply left it
        planned = deployment.plan()
        changed = [(c.key, [f.path for f in c.fields]) for c in planned.changes if c.action.value != "no-op"]
        assert changed == [("port/api.http", ["health_check.healthy", "health_check.interval"])]
        assert deployment.apply(planned).ok
        assert timings() == [(10, 2, 2, "30")]
        assert not deployment.plan().has_changes
    finally:
        assert deployment.destroy().ok


def tagged_target_groups(provider: AwsEcsProvider, app: str) -> list[str]:
    """The app's target group ARNs, by the tagging API."""
    found = provider.ctx.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "multicloud:app", "Values": [app]}],
        ResourceTypeFilters=["elasticloadbalancing:targetgroup"])
    return [r["ResourceARN"] for r in found["ResourceTagMappingList"]]


def _attribute(elbv2: Any, group: str, key: str) -> str:
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=group)["Attributes"]
    return str(next(a["Value"] for a in attributes if a["Key"] == key))


def test_aws_ecs_waits_ten_minutes_for_health_unless_told(provider: AwsEcsProvider, app_name: str) -> None:
    from multicloud.api import Deployment
    from multicloud.spec import spec_from_dict
    from multicloud.testing.contract import contract_data

    spec = spec_from_dict(contract_data(app_name, SERVICE))
    assert Deployment(spec, "test", provider=provider).effective_health_timeout == 600
    assert Deployment(spec, "test", provider=provider, health_timeout=45).effective_health_timeout == 45


def test_a_circuit_breaker_rollback_fails_the_apply(provider: AwsEcsProvider, app_name: str, deploy: Any) -> None:
    from multicloud.errors import ApplyFailedError

    broken = "registry.example.com/contract/app:broken"
    first = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    assert first.apply().ok
    ecs = provider.ctx.client("ecs")
    before = ecs.describe_services(cluster=app_name, services=["api"])["services"][0]["taskDefinition"]
    gaps.fail_image(broken)
    gaps.set_rollout_seconds(1.0)  # as on AWS, the breaker rolls back after the apply's own read-back
    try:
        second = deploy(contract_spec(app_name, {"image": broken}), provider, ENV, target="test")
        second.health_timeout = 10
        with pytest.raises(ApplyFailedError, match="failed to deploy and ECS rolled back"):
            second.apply()
        api = ecs.describe_services(cluster=app_name, services=["api"])["services"][0]
        assert api["taskDefinition"] == before  # ECS went back; the apply says so instead of succeeding
        assert [d["rolloutState"] for d in api["deployments"]] == ["COMPLETED"]
        assert second.plan().has_changes  # the spec is not what runs
    finally:
        gaps.fail_image(None)
        gaps.set_rollout_seconds(0)
        first.destroy()


def test_public_udp_is_refused_at_plan(provider: AwsEcsProvider, app_name: str, deploy: Any, calls: Any) -> None:
    from multicloud.errors import CapabilityError
    from multicloud.spec import spec_from_dict
    from multicloud.testing.contract import contract_data

    data = contract_data(app_name, SERVICE)
    data["services"]["api"]["ports"][0].update(protocol="udp", port=5683)
    deployment = deploy(spec_from_dict(data), provider, ENV, target="test")
    with pytest.raises(CapabilityError, match="cannot receive UDP"):
        deployment.plan()
    assert calls.mutations() == []
