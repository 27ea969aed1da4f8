"""Describe the app's tagged objects in batches and read them back into the properties
`desired` renders (log group, security groups, load balancers, public ports). Reads only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from multicloud_aws import names
from multicloud_aws.clients import NotFoundError, guard
from multicloud_aws.context import Context, chunks
from multicloud_aws.desired import DEFAULT

Items = list[tuple[str, dict[str, str]]]
"""(ARN, tags) of the objects of one kind."""


def read_clusters(ctx: Context, items: Items) -> dict[str, dict[str, Any]]:
    """ACTIVE clusters' properties by ARN, described: the tagging API lists deleted (INACTIVE)
    clusters for days, and nothing can be created in one."""
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(arn for arn, _ in items), 100):
        with guard("describing ECS clusters"):
            clusters = ctx.client("ecs").describe_clusters(clusters=batch)["clusters"]
        found.update({c["clusterArn"]: {"name": c["clusterName"]} for c in clusters if c.get("status") == "ACTIVE"})
    return found


def read_log_groups(ctx: Context, items: Items) -> dict[str, dict[str, Any]]:
    """Log groups' properties by ARN, described."""
    found: dict[str, dict[str, Any]] = {}
    for arn, _ in items:
        name = arn.split(":log-group:", 1)[-1].removesuffix(":*")
        with guard(f"describing log group {name}"):
            groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        match = [g for g in groups if g["logGroupName"] == name]
        if match:
            found[arn] = {"name": name, "retention_days": match[0].get("retentionInDays")}
    return found


def read_security_groups(ctx: Context, items: Items) -> dict[str, dict[str, Any]]:
    """Security groups' properties by ARN (public = ports open to 0.0.0.0/0), described."""
    by_id = {arn.rsplit("/", 1)[-1]: arn for arn, _ in items}
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(by_id), 100):
        groups = _described(lambda b: ctx.client("ec2").describe_security_groups(GroupIds=b)["SecurityGroups"],
                            batch, "describing security groups")
        for group in groups:
            public = sorted({f"{p['IpProtocol']}/{p['FromPort']}" for p in group.get("IpPermissions", [])
                             if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))})
            found[by_id[group["GroupId"]]] = {"name": group["GroupName"], "vpc": _vpc(ctx, group["VpcId"]),
                                              "public": public}
    return found


def read_load_balancers(ctx: Context, items: Items) -> dict[str, dict[str, Any]]:
    """NLBs' properties by ARN, described."""
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(arn for arn, _ in items), 20):
        balancers = _described(
            lambda b: ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=b)["LoadBalancers"],
            batch, "describing load balancers")
        for balancer in balancers:
            subnets = sorted(z["SubnetId"] for z in balancer.get("AvailabilityZones", []))
            found[balancer["LoadBalancerArn"]] = {"name": balancer["LoadBalancerName"], "scheme": balancer["Scheme"],
                                                  "subnets": subnets if ctx.settings.subnets else DEFAULT}
    return found


def read_ports(ctx: Context, items: Items) -> dict[str, dict[str, Any]]:
    """Public ports' properties by target group ARN, described, with whether a listener
    forwards to each (a killed apply may have made a group but not its listener)."""
    tags_of = dict(items)
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(tags_of), 20):
        groups = _described(
            lambda b: ctx.client("elbv2").describe_target_groups(TargetGroupArns=b)["TargetGroups"],
            batch, "describing target groups")
        listened = _forwarded_to(ctx, {lb for g in groups for lb in g.get("LoadBalancerArns", [])})
        for group in groups:
            arn = group["TargetGroupArn"]
            found[arn] = {"target_group": group["TargetGroupName"], "protocol": group["Protocol"],
                          "port": group["Port"], "vpc": _vpc(ctx, group["VpcId"]),
                          "load_balancer": tags_of[arn].get(names.TAG_LOAD_BALANCER),
                          "listening": arn in listened, "health_check": {
                              "interval": group.get("HealthCheckIntervalSeconds"),
                              "healthy": group.get("HealthyThresholdCount"),
                              "unhealthy": group.get("UnhealthyThresholdCount")}}
    return found


def _forwarded_to(ctx: Context, balancers: set[str]) -> set[str]:
    """The target group ARNs that a listener of these NLBs forwards to."""
    found: set[str] = set()
    for lb in sorted(balancers):
        try:
            with guard("listing the load balancer's listeners"):
                listeners = ctx.client("elbv2").describe_listeners(LoadBalancerArn=lb)["Listeners"]
        except NotFoundError:
            continue
        found.update(a["TargetGroupArn"] for x in listeners for a in x.get("DefaultActions", [])
                     if a.get("TargetGroupArn"))
    return found


def _described(call: Callable[[list[str]], list[dict[str, Any]]], batch: list[str],
               doing: str) -> list[dict[str, Any]]:
    """Describe a batch of objects; when one was deleted since it was listed (the call then
    fails for all), describe them one by one and leave out the missing."""
    try:
        with guard(doing):
            return call(batch)
    except NotFoundError:
        if len(batch) == 1:
            return []
    return [found for one in batch for found in _described(call, [one], doing)]


def _vpc(ctx: Context, vpc: str) -> str:
    """`default` for the target's default VPC (when no vpc is set), else the VPC id."""
    return DEFAULT if not ctx.settings.vpc and vpc == ctx.vpc() else vpc


READERS: dict[str, Callable[[Context, Items], dict[str, dict[str, Any]]]] = {
    "cluster": read_clusters,
    "log-group": read_log_groups,
    "security-group": read_security_groups,
    "load-balancer": read_load_balancers,
    "port": read_ports,
}
