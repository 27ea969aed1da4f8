"""Every replace_on field of the aws-ecs resources converges in one apply: the namespace, the
NLB's placement (subnets, VPC), a public port's number, the cluster; and objects
a killed apply left (a target group without its listener, an older copy) are finished or removed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.provider import AwsEcsProvider

from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.spec import spec_from_dict
from multicloud.testing.contract import SECRET_VALUE

ENV = {"CONTRACT_TOKEN": SECRET_VALUE}


def _spec(app: str, *, port: int = 8080, protocol: str = "http") -> Any:
    service = {"image": "registry.example.com/contract/app:1"}
    return spec_from_dict({
        "name": app,
        "services": {
            "api": {**service, "ports": [{"name": "http", "port": port, "protocol": protocol, "expose": "public"}]},
            "worker": {**service, "depends_on": ["api"], "env": {"API": "${services.api.host}",
                                                                  "TOKEN": "${secrets.token}"}},
        },
        "secrets": {"token": {"from_env": "CONTRACT_TOKEN"}},
        "targets": {"test": {"provider": "aws-ecs"}},
    })


def _other_vpc(provider: AwsEcsProvider) -> dict[str, Any]:
    ec2 = provider.ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    return {"vpc": vpc, "subnets": [subnet]}


def _one_default_subnet(provider: AwsEcsProvider) -> list[str]:
    return provider.ctx.subnets()[:1]


CHANGES: dict[str, tuple[Callable[[AwsEcsProvider, str], dict[str, Any]], dict[str, Any], set[str]]] = {
    # name: (new settings from the provider and app, new spec arguments, keys that must be replaced)
    "namespace": (lambda p, app: {"namespace": f"{app}.other"}, {},
                  {"namespace/{app}", "discovery/api", "discovery/worker"}),
    "port number": (lambda p, app: {}, {"port": 8081}, {"port/api.http"}),
    "subnets": (lambda p, app: {"subnets": _one_default_subnet(p)}, {}, {"load-balancer/{app}", "port/api.http"}),
    "vpc": (lambda p, app: _other_vpc(p), {}, {"security-group/{app}", "load-balancer/{app}", "port/api.http"}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_replace_on_field_converges_in_one_apply(change: str, make_provider: Callable[..., AwsEcsProvider],
                                                 app_name: str, deploy: Any, tagged: Any) -> None:
    settings_of, spec_args, replaced = CHANGES[change]
    first = make_provider()
    deploy(_spec(app_name), first, ENV, target="test").apply()
    provider = make_provider(**settings_of(first, app_name))
    changed = deploy(_spec(app_name, **spec_args), provider, ENV, target="test")
    try:
        planned = changed.plan()
        acted = {c.key for c in planned.changes if c.action is Action.REPLACE}
        assert acted == {k.format(app=app_name) for k in replaced}, plan_text(planned)
        result = changed.apply(planned)
        assert result.ok, [(s.key, str(s.error)) for s in result.failed]
        assert not changed.plan().has_changes, plan_text(changed.plan())
        kinds = Counter(arn.split(":")[5].split("/")[0] for arn in tagged(provider, app_name))
        assert kinds["loadbalancer"] == 1 and kinds["targetgroup"] == 1 and kinds["security-group"] == 1
        spaces = provider.ctx.client("servicediscovery").list_namespaces()["Namespaces"]
        assert len([n for n in spaces if n.get("Description") == f"multicloud:{app_name}"]) == 1
        _assert_wired(provider, app_name)
    finally:
        changed.destroy()
    assert tagged(provider, app_name) == []


def _assert_wired(provider: AwsEcsProvider, app: str) -> None:
    """The api service forwards from the one listener through the one target group, and is
    registered in the Cloud Map service of the current namespace."""
    elbv2 = provider.ctx.client("elbv2")
    ecs = provider.ctx.client("ecs")
    api = ecs.describe_services(cluster=app, services=["api"])["services"][0]
    groups = [b["targetGroupArn"] for b in api["loadBalancers"]]
    balancer = next(r for r in provider.observe(app) if r.kind == "load-balancer")
    lb = elbv2.describe_load_balancers(Names=[balancer.properties["name"]])["LoadBalancers"][0]["LoadBalancerArn"]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    assert [a["TargetGroupArn"] for x in listeners for a in x["DefaultActions"]] == groups
    registry = api["serviceRegistries"][0]["registryArn"]
    discovery = provider.ctx.client("servicediscovery")
    service = discovery.get_service(Id=registry.rsplit("/", 1)[-1])["Service"]
    namespace = next(r for r in provider.observe(app) if r.kind == "namespace")
    assert discovery.get_namespace(Id=service["NamespaceId"])["Namespace"]["Name"] == namespace.properties["name"]


def test_cluster_setting_moves_the_services(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                            deploy: Any, tagged: Any) -> None:
    first = make_provider()
    deploy(_spec(app_name), first, ENV, target="test").apply()
    shared = f"{app_name}-shared"
    first.ctx.client("ecs").create_cluster(clusterName=shared)
    provider = make_provider(cluster=shared)
    changed = deploy(_spec(app_name), provider, ENV, target="test")
    try:
        planned = changed.plan()
        assert {c.key for c in planned.changes if c.action is Action.REPLACE} == {"service/api", "service/worker"}
        assert changed.apply(planned).ok
        assert not changed.plan().has_changes, plan_text(changed.plan())
        assert {r.key for r in provider.observe(app_name) if r.kind == "cluster"} == set()
    finally:
        changed.destroy()
        first.ctx.client("ecs").delete_cluster(cluster=shared)
    assert tagged(provider, app_name) == []


def test_a_target_group_without_its_listener_is_finished(make_provider: Callable[..., AwsEcsProvider],
                                                          app_name: str, deploy: Any, tagged: Any) -> None:
    provider = make_provider()
    deployment = deploy(_spec(app_name), provider, ENV, target="test")
    deployment.apply()
    elbv2 = provider.ctx.client("elbv2")
    for listener in elbv2.describe_listeners(LoadBalancerArn=_lb_arn(provider, app_name))["Listeners"]:
        elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    try:
        planned = deployment.plan()
        assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
            ("port/api.http", Action.UPDATE)], plan_text(planned)
        assert deployment.apply(planned).ok
        assert not deployment.plan().has_changes
        assert len(elbv2.describe_listeners(LoadBalancerArn=_lb_arn(provider, app_name))["Listeners"]) == 1
    finally:
        deployment.destroy()
    assert tagged(provider, app_name) == []


def test_an_older_copy_of_a_target_group_is_deleted(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                    deploy: Any, tagged: Any) -> None:
    provider = make_provider()
    old = deploy(_spec(app_name, port=9000), provider, ENV, target="test")
    old.apply()
    # what a create-before-delete killed before its delete leaves: the new group beside the old
    new = deploy(_spec(app_name), provider, ENV, target="test")
    port = next(r for r in new.plan().changes if r.key == "port/api.http").after
    assert port is not None
    from multicloud_aws import balancer

    from multicloud.planner import Change

    balancer.port(provider.ctx, app_name, Change(Action.CREATE, port.key, None, port))
    try:
        ports = [r for r in provider.observe(app_name) if r.kind == "port"]
        assert [r.key for r in ports] == ["port/api.http"] * 2 and len({r.instance for r in ports}) == 2
        assert new.apply().ok
        assert not new.plan().has_changes, plan_text(new.plan())
        assert [r.key for r in provider.observe(app_name) if r.kind == "port"] == ["port/api.http"]
    finally:
        new.destroy()
    assert tagged(provider, app_name) == []


def _lb_arn(provider: AwsEcsProvider, app: str) -> str:
    balancer = next(r for r in provider.observe(app) if r.kind == "load-balancer")
    return str(balancer.payload["arn"])
