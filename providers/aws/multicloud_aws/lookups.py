"""Find one of the app's objects by its deterministic name or tag; reads only, None if absent."""

from __future__ import annotations

from typing import Any

from multicloud.errors import NotFoundError
from multicloud_aws import names
from multicloud_aws.clients import guard
from multicloud_aws.context import Context


def security_group_id(ctx: Context, app: str) -> str | None:
    """The id of the app's own security group in the target's VPC."""
    with guard("looking up the app's security group"):
        found = ctx.client("ec2").describe_security_groups(Filters=[
            {"Name": f"tag:{names.TAG_APP}", "Values": [app]},
            {"Name": "group-name", "Values": [names.security_group(app)]},
            {"Name": "vpc-id", "Values": [ctx.vpc()]}])["SecurityGroups"]
    return str(found[0]["GroupId"]) if found else None


def namespace_id(ctx: Context, app: str, name: str) -> str | None:
    """The id of the app's Cloud Map namespace of that name (marked by its description)."""
    client = ctx.client("servicediscovery")
    with guard("looking up the Cloud Map namespace"):
        for page in client.get_paginator("list_namespaces").paginate(
                Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"}]):
            for entry in page["Namespaces"]:
                if entry.get("Description") == names.marker(app) and entry["Name"] == name:
                    return str(entry["Id"])
    return None


def cloud_map_service(ctx: Context, app: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The app's Cloud Map service of that name in that namespace (Id, Arn), or None."""
    ns = namespace_id(ctx, app, namespace)
    if ns is None:
        return None
    client = ctx.client("servicediscovery")
    with guard(f"looking up Cloud Map service {name}"):
        for page in client.get_paginator("list_services").paginate(
                Filters=[{"Name": "NAMESPACE_ID", "Values": [ns], "Condition": "EQ"}]):
            for entry in page["Services"]:
                if entry["Name"] == name and entry.get("Description") == names.marker(app):
                    return dict(entry)
    return None


def describe_load_balancer(ctx: Context, name: str) -> dict[str, Any] | None:
    """The NLB of that name as described (ARN, state, DNS name), or None."""
    try:
        with guard("looking up the load balancer"):
            found = ctx.client("elbv2").describe_load_balancers(Names=[name])["LoadBalancers"]
    except NotFoundError:
        return None
    return dict(found[0]) if found else None


def load_balancer_arn(ctx: Context, name: str) -> str | None:
    """The ARN of the NLB of that name."""
    found = describe_load_balancer(ctx, name)
    return str(found["LoadBalancerArn"]) if found else None


def target_group_arn(ctx: Context, name: str) -> str | None:
    """The ARN of a target group by name."""
    try:
        with guard(f"looking up target group {name}"):
            found = ctx.client("elbv2").describe_target_groups(Names=[name])["TargetGroups"]
    except NotFoundError:
        return None
    return str(found[0]["TargetGroupArn"]) if found else None


def secret_arn(ctx: Context, name: str) -> str:
    """The full ARN of a secret by name; raises NotFoundError when it does not exist."""
    with guard(f"looking up secret {name}"):
        return str(ctx.client("secretsmanager").describe_secret(SecretId=name)["ARN"])


def role_arn(ctx: Context, app: str) -> str:
    """The ARN of the app's execution role; raises NotFoundError when it does not exist."""
    with guard("looking up the execution role"):
        return str(ctx.client("iam").get_role(RoleName=names.role(app))["Role"]["Arn"])
