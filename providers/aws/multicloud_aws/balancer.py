"""Create and delete the app's NLB and its public ports (an `ip` target group and the
listener forwarding to it). Each step is idempotent: a failure leaves tagged objects that the
next apply finds and finishes; the spec-hash tag is written last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multicloud.errors import RetryableError
from multicloud.planner import Action, Change
from multicloud_aws import names
from multicloud_aws.clients import NOT_FOUND_CODES, error_code, guard
from multicloud_aws.context import Context
from multicloud_aws.desired import DEREGISTRATION_DELAY
from multicloud_aws.infra import ignore_missing, observed_arn, tag_hash
from multicloud_aws.lookups import load_balancer_arn, target_group_arn


def load_balancer(ctx: Context, app: str, change: Change) -> None:
    """Create the app's internet-facing NLB (named after its placement, so a moved one can
    exist beside the old); delete the observed one (its listeners go with it)."""
    client = ctx.client("elbv2")
    resource = change.resource
    name = str(resource.properties["name"])
    if change.action is Action.DELETE:
        arn = observed_arn(change) or load_balancer_arn(ctx, name)
        if arn:
            with guard(f"deleting load balancer {name}"):
                ignore_missing(lambda: client.delete_load_balancer(LoadBalancerArn=arn))
        return
    arn = load_balancer_arn(ctx, name)
    if arn is None:
        with guard(f"creating load balancer {name}"):
            arn = client.create_load_balancer(
                Name=name, Type="network", Scheme=resource.properties["scheme"], Subnets=ctx.subnets(),
                Tags=names.tag_list(names.resource_tags(app, resource, **names.created())),
            )["LoadBalancers"][0]["LoadBalancerArn"]
    tag_hash(ctx, "load-balancer", str(arn), resource)


def port(ctx: Context, app: str, change: Change) -> None:
    """Create a public port: an `ip` target group and the listener of its NLB forwarding to
    it (the group is found by name when a killed apply made it already); delete the observed
    group and the listeners that forward to it."""
    client = ctx.client("elbv2")
    resource = change.resource
    props = resource.properties
    if change.action is Action.DELETE:
        arn = observed_arn(change) or target_group_arn(ctx, str(props["target_group"]))
        if arn:
            with guard(f"deleting target group {props['target_group']}"):
                for listener in _listeners_forwarding_to(client, arn):
                    ignore_missing(lambda: client.delete_listener(ListenerArn=listener))  # noqa: B023
                ignore_missing(lambda: client.delete_target_group(TargetGroupArn=arn))
        return
    lb = load_balancer_arn(ctx, str(props["load_balancer"]))
    if lb is None:
        raise RetryableError(f"load balancer {props['load_balancer']} does not exist yet")
    group = target_group_arn(ctx, str(props["target_group"]))
    with guard(f"creating target group {props['target_group']}"):
        if group is None:
            tags = names.resource_tags(app, resource, resource.service, **names.created(),
                                       **{names.TAG_LOAD_BALANCER: str(props["load_balancer"])})
            group = client.create_target_group(
                Name=props["target_group"], Protocol=props["protocol"], Port=props["port"], VpcId=ctx.vpc(),
                TargetType="ip", HealthCheckProtocol="TCP", Tags=names.tag_list(tags), **_health_check(props),
            )["TargetGroups"][0]["TargetGroupArn"]
        else:
            client.modify_target_group(TargetGroupArn=group, **_health_check(props))
        client.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(DEREGISTRATION_DELAY)}])
        action = [{"Type": "forward", "TargetGroupArn": group}]
        slot = (props["port"], props["protocol"])
        listeners = client.describe_listeners(LoadBalancerArn=lb)["Listeners"]
        existing = [x for x in listeners if (x["Port"], x["Protocol"]) == slot]
        if not existing:
            client.create_listener(LoadBalancerArn=lb, Protocol=props["protocol"], Port=props["port"],
                                   DefaultActions=action)
        elif [a.get("TargetGroupArn") for a in existing[0].get("DefaultActions", [])] != [group]:
            client.modify_listener(ListenerArn=existing[0]["ListenerArn"], DefaultActions=action)
    tag_hash(ctx, "port", str(group), resource)


def _health_check(props: Mapping[str, Any]) -> dict[str, Any]:
    """The target group's health check timings, as ELBv2 parameters."""
    check = props["health_check"]
    return {"HealthCheckIntervalSeconds": check["interval"], "HealthyThresholdCount": check["healthy"],
            "UnhealthyThresholdCount": check["unhealthy"]}


def _listeners_forwarding_to(client: Any, group: str) -> list[str]:
    """The ARNs of listeners (of any NLB the group serves) that forward to a target group."""
    try:
        found = client.describe_target_groups(TargetGroupArns=[group])["TargetGroups"]
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            return []
        raise
    result = []
    for lb in found[0].get("LoadBalancerArns", []) if found else []:
        listeners = ignore_missing(lambda: client.describe_listeners(LoadBalancerArn=lb))  # noqa: B023
        for listener in (listeners or {}).get("Listeners", []):
            if any(a.get("TargetGroupArn") == group for a in listener.get("DefaultActions", [])):
                result.append(str(listener["ListenerArn"]))
    return result
