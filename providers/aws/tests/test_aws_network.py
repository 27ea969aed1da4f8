"""Issue 16, AWS items 6 and 7: where tasks and the NLB are placed when only `vpc` is given, and what
ECS and ELBv2 refuse for a while or beyond a limit (taught to the emulator in multicloud_aws.refusals),
each test failing on a provider that ignores it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws import gaps
from multicloud_aws.provider import AwsEcsProvider

from multicloud.errors import ApplyFailedError, UserError
from multicloud.testing.contract import SECRET_VALUE, contract_spec

SERVICE = {"image": "registry.example.com/contract/app:1"}
ENV = {"CONTRACT_TOKEN": SECRET_VALUE}


def _network(provider: AwsEcsProvider, *, public: bool = True) -> tuple[str, dict[str, str]]:
    """A VPC in two zones: public subnets pub-a, pub-b1, pub-b2 (a route table to an internet gateway)
    and private ones priv-a, priv-b (the main route table, no route out); its id and the subnet ids."""
    ec2 = provider.ctx.client("ec2")
    second = int(uuid.uuid4().hex[:2], 16)
    vpc = ec2.create_vpc(CidrBlock=f"10.{second}.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    layout = [("priv-a", "a"), ("priv-b", "b")] + ([("pub-a", "a"), ("pub-b1", "b"), ("pub-b2", "b")] if public else [])
    for index, (name, zone) in enumerate(layout):
        subnets[name] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{second}.{index}.0/24",
                                          AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
    if public:
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
        for name in ("pub-a", "pub-b1", "pub-b2"):
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnets[name])
    return vpc, subnets


def test_vpc_without_subnets_places_tasks_and_nlb_in_one_public_subnet_per_zone(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any) -> None:
    provider = make_provider()
    vpc, subnets = _network(provider)
    provider = make_provider(vpc=vpc)
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    try:
        assert deployment.apply().ok  # AWS (and the emulator) refuse an NLB with two subnets in one zone
        expected = sorted([subnets["pub-a"], min(subnets["pub-b1"], subnets["pub-b2"])])
        balancers = provider.ctx.client("elbv2").describe_load_balancers()["LoadBalancers"]
        ours = [b for b in balancers if b["VpcId"] == vpc]
        assert [sorted(z["SubnetId"] for z in b["AvailabilityZones"]) for b in ours] == [expected]
        described = provider.ctx.client("ecs").describe_services(cluster=app_name, services=["api", "worker"])
        for service in described["services"]:
            assert sorted(service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == expected
    finally:
        deployment.destroy()


def test_a_vpc_without_public_subnets_is_refused_naming_the_setting(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any) -> None:
    vpc, _ = _network(make_provider(), public=False)
    deployment = deploy(contract_spec(app_name, SERVICE), make_provider(vpc=vpc), ENV, target="test")
    try:
        with pytest.raises(ApplyFailedError) as failed:
            deployment.apply()
        errors = [step.error for step in failed.value.result.failed]
        assert errors and all(isinstance(e, UserError) and "no public subnet" in str(e) for e in errors), errors
        assert "`subnets`" in str(errors[0].hint)
    finally:
        deployment.destroy()


@pytest.mark.parametrize("propagating", [gaps.set_linked_role_seconds, gaps.set_attach_seconds],
                         ids=["new-account-service-linked-role", "target-group-just-attached"])
def test_create_service_is_repeated_while_aws_propagates(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any,
        propagating: Callable[[float], None]) -> None:
    deployment = deploy(contract_spec(app_name, SERVICE), make_provider(), ENV, target="test")
    propagating(0.6)  # CreateService refused for 0.6 s: from the first one, or from the listener's creation
    try:
        assert deployment.apply().ok
    finally:
        propagating(0)
        deployment.destroy()


def test_destroy_deletes_more_than_ten_revisions_in_batches(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any) -> None:
    provider = make_provider(keep_revisions=20)
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    ecs = provider.ctx.client("ecs")
    assert deployment.apply().ok
    family = f"{app_name}-api"
    current = ecs.describe_services(cluster=app_name, services=["api"])["services"][0]["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    fields = ("family", "containerDefinitions", "cpu", "memory", "networkMode", "requiresCompatibilities",
              "executionRoleArn")
    for _ in range(11):
        ecs.register_task_definition(**{k: definition[k] for k in fields})
    with pytest.raises(Exception, match="up to 10"):  # what AWS answers to more in one call
        ecs.delete_task_definitions(taskDefinitions=[f"{family}:{n}" for n in range(1, 12)])
    assert deployment.destroy().ok
    left = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    assert left == []


def test_tasks_are_linux_amd64_and_a_throttled_nlb_health_read_is_polled_again(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any) -> None:
    provider = make_provider()
    deployment = deploy(contract_spec(app_name, SERVICE), provider, ENV, target="test")
    ecs = provider.ctx.client("ecs")
    try:
        gaps.inject("elbv2", "DescribeLoadBalancers", times=3)  # the NLB's health reads among them
        assert deployment.apply().ok
        assert gaps.pending_faults() == 0
        arn = ecs.describe_services(cluster=app_name, services=["api"])["services"][0]["taskDefinition"]
        platform = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"].get("runtimePlatform")
        assert platform == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
        assert not deployment.plan().has_changes
    finally:
        deployment.destroy()
