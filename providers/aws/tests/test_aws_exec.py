"""`multicloud exec` on ECS: refused, naming what is missing, before anything is started."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from multicloud_aws.desired import cluster_name
from multicloud_aws.provider import AwsEcsProvider

from multicloud.errors import UserError
from multicloud.terminal import Terminal

TERMINAL = Terminal(None, io.BytesIO(), io.BytesIO())


def _service(provider: AwsEcsProvider, app: str, name: str, *, enabled: bool) -> None:
    """An ECS service as the emulator keeps it (made directly: exec only reads it)."""
    ecs, ec2 = provider.ctx.client("ecs"), provider.ctx.client("ec2")
    cluster = cluster_name(app, provider.settings)
    ecs.create_cluster(clusterName=cluster)
    family = ecs.register_task_definition(
        family=f"{app}-{name}", containerDefinitions=[{"name": name, "image": "busybox", "memory": 128}],
        requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{app}-{name}", Description="exec test", VpcId=vpc)["GroupId"]
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=family, desiredCount=1, launchType="FARGATE",
        enableExecuteCommand=enabled,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )


def test_refused_without_enable_execute_command_or_the_plugin(
    make_provider: Callable[..., AwsEcsProvider], app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider()
    with pytest.raises(UserError, match="ECS service 'ghost' is not deployed"):
        provider.exec(app_name, "ghost", ["sh"], replica=1, terminal=TERMINAL)
    _service(provider, app_name, "closed", enabled=False)
    with pytest.raises(UserError, match="does not have enableExecuteCommand set, which ECS Exec needs"):
        provider.exec(app_name, "closed", ["sh"], replica=1, terminal=TERMINAL)
    _service(provider, app_name, "open", enabled=True)
    ecs, cluster = provider.ctx.client("ecs"), cluster_name(app_name, provider.settings)

    def flag() -> bool | None:
        return ecs.describe_services(cluster=cluster, services=["open"])["services"][0].get("enableExecuteCommand")

    ecs.update_service(cluster=cluster, service="open", desiredCount=1)  # kept when not given, as AWS does
    assert flag() is True
    ecs.update_service(cluster=cluster, service="closed", enableExecuteCommand=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match="ECS Exec needs AWS's session-manager-plugin on PATH"):
        provider.exec(app_name, "open", ["sh"], replica=1, terminal=TERMINAL)
    # moto has no ExecuteCommand, so the session itself is not reached here
