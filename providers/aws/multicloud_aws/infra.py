"""Create, update and delete the app's shared objects: log group, role, security group,
cluster, Cloud Map, secrets and repositories (the NLB and its ports: multicloud_aws.balancer).
Each step is idempotent: a failure leaves tagged objects that the next apply finds and
finishes; the spec-hash tag is written last, so an object carrying it is complete."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.errors import NotFoundError, ProviderError, RetryableError, UserError
from multicloud.planner import Action, Change
from multicloud.resources import Resource, Sensitive, fingerprint
from multicloud.retry import RetryPolicy, wait_for
from multicloud_aws import names
from multicloud_aws.clients import NOT_FOUND_CODES, error_code, guard
from multicloud_aws.context import Context
from multicloud_aws.lookups import (
    cloud_map_service,
    namespace_id,
    security_group_id,
)
from multicloud_aws.releasing import until_released

Handler = Callable[[Context, str, Change], None]


def tag_hash(ctx: Context, kind: str, arn_or_name: str, resource: Resource) -> None:
    """Write the spec-hash tag that certifies an object as complete."""
    value = {names.TAG_HASH: fingerprint(resource.properties)}
    with guard(f"tagging {resource.key}"):
        if kind == "log-group":
            ctx.client("logs").tag_resource(resourceArn=arn_or_name, tags=value)
        elif kind == "role":
            ctx.client("iam").tag_role(RoleName=arn_or_name, Tags=names.tag_list(value))
        elif kind == "security-group":
            ctx.client("ec2").create_tags(Resources=[arn_or_name], Tags=names.tag_list(value))
        else:
            ctx.client("elbv2").add_tags(ResourceArns=[arn_or_name], Tags=names.tag_list(value))


def log_group(ctx: Context, app: str, change: Change) -> None:
    """Create the log group, set its retention; delete it with its logs."""
    client = ctx.client("logs")
    name = names.log_group(app)
    if change.action is Action.DELETE:
        with guard(f"deleting log group {name}"):
            ignore_missing(lambda: client.delete_log_group(logGroupName=name))
        return
    resource = change.resource
    with guard(f"creating log group {name}"):
        try:
            client.create_log_group(logGroupName=name, tags=names.resource_tags(app, resource))
        except Exception as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        client.put_retention_policy(logGroupName=name, retentionInDays=resource.properties["retention_days"])
        arn = client.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["arn"].removesuffix(":*")
    tag_hash(ctx, "log-group", arn, resource)


def role(ctx: Context, app: str, change: Change) -> None:
    """Create the task execution role with an inline policy: pull images, write logs, read
    the app's secrets; delete it."""
    client = ctx.client("iam")
    name = names.role(app)
    if change.action is Action.DELETE:
        with guard(f"deleting role {name}"):
            ignore_missing(lambda: client.delete_role_policy(RoleName=name, PolicyName="multicloud"))
            ignore_missing(lambda: client.delete_role(RoleName=name))
        return
    resource = change.resource
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    secrets = f"arn:{ctx.partition}:secretsmanager:{ctx.region}:*:secret:{resource.properties['secrets']}"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": "*", "Action": [
            "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage", "logs:CreateLogStream", "logs:PutLogEvents"]},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets}]}
    with guard(f"creating role {name}"):
        try:
            client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                               Description=f"multicloud task execution role of {app}",
                               Tags=names.tag_list(names.resource_tags(app, resource)))
        except Exception as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            tags = names.tag_dict(client.get_role(RoleName=name)["Role"].get("Tags"))
            if tags.get(names.TAG_APP) != app:
                raise UserError(f"IAM role {name} exists and is not multicloud's for {app}",
                                hint="delete it, or give the target an `execution_role_arn`") from exc
        client.put_role_policy(RoleName=name, PolicyName="multicloud", PolicyDocument=json.dumps(policy))
    tag_hash(ctx, "role", name, resource)


def security_group(ctx: Context, app: str, change: Change) -> None:
    """Create the app's security group in the target's VPC: all traffic from itself, public
    ports from anywhere; delete the observed one (a group in another VPC stays until then)."""
    client = ctx.client("ec2")
    if change.action is Action.DELETE:
        group = _object_id(change) or security_group_id(ctx, app)
        if group:
            with guard(f"deleting security group {group}"):
                until_released(ctx, lambda: ignore_missing(lambda: client.delete_security_group(GroupId=group)))
        return
    resource = change.resource
    group = security_group_id(ctx, app)
    with guard(f"creating security group {names.security_group(app)}"):
        if group is None:
            group = client.create_security_group(
                GroupName=names.security_group(app), Description=f"multicloud app {app}", VpcId=ctx.vpc(),
                TagSpecifications=[{"ResourceType": "security-group",
                                    "Tags": names.tag_list(names.resource_tags(app, resource, **names.created()))}],
            )["GroupId"]
        current = client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        wanted: list[dict[str, Any]] = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]}]
        for entry in resource.properties["public"]:
            protocol, port = entry.split("/")
            wanted.append({"IpProtocol": protocol, "FromPort": int(port), "ToPort": int(port),
                           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
        have = {_rule_key(p) for p in current}
        add = [p for p in wanted if _rule_key(p) not in have]
        drop = [_clean_rule(p) for p in current if _rule_key(p) not in {_rule_key(w) for w in wanted}]
        if add:
            client.authorize_security_group_ingress(GroupId=group, IpPermissions=add)
        if drop:
            client.revoke_security_group_ingress(GroupId=group, IpPermissions=drop)
    tag_hash(ctx, "security-group", group, resource)


def observed_arn(change: Change) -> str | None:
    """The ARN of the object a delete addresses: the one observed, which may be an older copy."""
    payload = change.before.payload if change.before is not None else None
    return str(payload["arn"]) if isinstance(payload, Mapping) and payload.get("arn") else None


def _object_id(change: Change) -> str | None:
    """The id at the end of the observed object's ARN (sg-..., ns-..., srv-...)."""
    arn = observed_arn(change)
    return arn.rstrip("/").rsplit("/", 1)[-1] if arn else None


def _rule_key(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    sources = tuple(sorted([r["CidrIp"] for r in rule.get("IpRanges", [])] +
                           [g["GroupId"] for g in rule.get("UserIdGroupPairs", [])]))
    return rule["IpProtocol"], rule.get("FromPort"), rule.get("ToPort"), sources


def _clean_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: rule[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in rule}
    cleaned["IpRanges"] = [{"CidrIp": r["CidrIp"]} for r in rule.get("IpRanges", [])]
    cleaned["UserIdGroupPairs"] = [{"GroupId": g["GroupId"]} for g in rule.get("UserIdGroupPairs", [])]
    return cleaned


def cluster(ctx: Context, app: str, change: Change) -> None:
    """Create the app's ECS cluster (refusing one of the same name that is not the app's)."""
    client = ctx.client("ecs")
    name = str(change.resource.properties["name"])
    if change.action is Action.DELETE:
        with guard(f"deleting cluster {name}"):
            until_released(ctx, lambda: ignore_missing(lambda: client.delete_cluster(cluster=name)))
        return
    with guard(f"creating cluster {name}"):
        found = client.describe_clusters(clusters=[name], include=["TAGS"]).get("clusters", [])
        active = [c for c in found if c.get("status") == "ACTIVE"]
        if active and names.tag_dict(active[0].get("tags")).get(names.TAG_APP) != app:
            raise UserError(f"ECS cluster {name} exists and is not multicloud's for {app}",
                            hint=f"set the target's `cluster: {name}` to deploy into it")
        cluster_tags = names.tag_list(names.resource_tags(app, change.resource), lower=True)
        client.create_cluster(clusterName=name, tags=cluster_tags,
                              settings=[{"name": "containerInsights", "value": "enabled"}])


def namespace(ctx: Context, app: str, change: Change) -> None:
    """Create the Cloud Map private DNS namespace in the VPC (beside an older one of another
    name); delete the observed one with the app's Cloud Map services still in it (Cloud Map
    refuses to delete a namespace that holds services; the ECS services registered there move
    to their new Cloud Map services in their own steps)."""
    client = ctx.client("servicediscovery")
    name = str(change.resource.properties["name"])
    if change.action is Action.DELETE:
        current = _object_id(change) or namespace_id(ctx, app, name)
        if current:
            with guard(f"deleting Cloud Map namespace {name}"):
                pages = client.get_paginator("list_services").paginate(
                    Filters=[{"Name": "NAMESPACE_ID", "Values": [current], "Condition": "EQ"}])
                for entry in [e for page in pages for e in page["Services"]]:
                    if entry.get("Description") == names.marker(app):
                        _delete_registry(ctx, client, entry["Id"])
                _wait_operation(ctx, until_released(ctx, lambda: ignore_missing(
                    lambda: client.delete_namespace(Id=current))))
        return
    if namespace_id(ctx, app, name):
        return
    with guard(f"creating Cloud Map namespace {name}"):
        started = client.create_private_dns_namespace(
            Name=name, Vpc=ctx.vpc(), Description=names.marker(app),
            Tags=names.tag_list(names.resource_tags(app, change.resource)))
        _wait_operation(ctx, started)


def _wait_operation(ctx: Context, started: Any, timeout: float = 300.0) -> None:
    """Poll a Cloud Map operation until it succeeds; raise when it fails or takes too long."""
    if not started or "OperationId" not in started:
        return

    def succeeded() -> bool | None:
        operation = ctx.client("servicediscovery").get_operation(OperationId=started["OperationId"])["Operation"]
        if operation["Status"] == "FAIL":
            raise ProviderError(f"Cloud Map operation failed: {operation.get('ErrorMessage', '')}")
        return True if operation["Status"] == "SUCCESS" else None

    wait_for(succeeded, RetryPolicy.within(timeout, base_delay=0.2, max_delay=5.0),
             timed_out=lambda: RetryableError("Cloud Map operation still running; the next apply resumes it"))


def discovery(ctx: Context, app: str, change: Change) -> None:
    """Create a Cloud Map service (A records, multivalue) for a spec service in its namespace;
    update its TTL; delete the observed one with its instances."""
    resource = change.resource
    records = {"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": resource.properties["ttl"]}]}
    registry(ctx, app, change, records, HealthCheckCustomConfig={"FailureThreshold": 1})


def registry(ctx: Context, app: str, change: Change, records: Mapping[str, Any], **create: Any) -> dict[str, Any]:
    """Create the Cloud Map service of a resource (its `name` in its `namespace`) with these DNS
    records, or update their TTL; delete the observed one with its instances. Returns the service
    ({} after a delete)."""
    client = ctx.client("servicediscovery")
    resource = change.resource
    namespace_name = str(resource.properties["namespace"])
    if change.action is Action.DELETE:
        found = _object_id(change) or (cloud_map_service(ctx, app, resource.name, namespace_name) or {}).get("Id")
        if found:
            with guard(f"deleting Cloud Map service {resource.properties['name']}"):
                _delete_registry(ctx, client, found)
        return {}
    current = cloud_map_service(ctx, app, resource.name, namespace_name)
    with guard(f"creating Cloud Map service {resource.name}"):
        if current is None:
            ns = namespace_id(ctx, app, namespace_name)
            if ns is None:
                raise RetryableError(f"the Cloud Map namespace {namespace_name} does not exist yet")
            return dict(client.create_service(
                Name=resource.name, NamespaceId=ns, DnsConfig=records, Description=names.marker(app),
                Tags=names.tag_list(names.resource_tags(app, resource, resource.service)), **create)["Service"])
        client.update_service(Id=current["Id"], Service={"DnsConfig": {"DnsRecords": records["DnsRecords"]}})
        return dict(current)


def _delete_registry(ctx: Context, client: Any, service_id: str) -> None:
    """Delete a Cloud Map service with its instances, waiting while the tasks of a draining ECS
    service still hold it (ResourceInUse); a failure leaves it, maybe without instances."""

    def attempt() -> None:
        _deregister_instances(client, service_id)
        ignore_missing(lambda: client.delete_service(Id=service_id))

    until_released(ctx, attempt)


def _deregister_instances(client: Any, service_id: str) -> None:
    """Deregister every instance of a Cloud Map service (it cannot be deleted with them)."""
    try:
        instances = [i["Id"] for page in client.get_paginator("list_instances").paginate(ServiceId=service_id)
                     for i in page["Instances"]]
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES or isinstance(exc, NotFoundError):
            return
        raise
    for instance in instances:
        ignore_missing(lambda: client.deregister_instance(ServiceId=service_id, InstanceId=instance))  # noqa: B023


def secret(ctx: Context, app: str, change: Change) -> None:
    """Store a secret value in Secrets Manager, tagged with its digest (never its value);
    delete it without a recovery window, so the name can be reused at once."""
    client = ctx.client("secretsmanager")
    resource = change.resource
    name = str(resource.properties["name"])
    if change.action is Action.DELETE:
        with guard(f"deleting secret {name}"):
            ignore_missing(lambda: client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True))
        return
    value = resource.properties["value"]
    assert isinstance(value, Sensitive)
    tags = names.resource_tags(app, resource, resource.service, **{names.TAG_DIGEST: value.digest})
    with guard(f"storing secret {name}"):
        try:
            client.create_secret(Name=name, SecretString=value.reveal(), Tags=names.tag_list(tags),
                                 Description=f"multicloud app {app}")
        except Exception as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
            client.put_secret_value(SecretId=name, SecretString=value.reveal())
            client.tag_resource(SecretId=name, Tags=names.tag_list(tags))


def repository(ctx: Context, app: str, change: Change) -> None:
    """Create a service's ECR repository; delete it with its images."""
    client = ctx.client("ecr")
    name = str(change.resource.properties["name"])
    if change.action is Action.DELETE:
        with guard(f"deleting repository {name}"):
            ignore_missing(lambda: client.delete_repository(repositoryName=name, force=True))
        return
    with guard(f"creating repository {name}"):
        try:
            client.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True},
                                     tags=names.tag_list(names.resource_tags(app, change.resource,
                                                                             change.resource.service)))
        except Exception as exc:
            if error_code(exc) != "RepositoryAlreadyExistsException":
                raise


def ignore_missing(call: Callable[[], Any]) -> Any:
    """Run a delete-like call; an object already gone is success."""
    try:
        return call()
    except Exception as exc:
        code = error_code(exc)
        if isinstance(exc, NotFoundError) or code in NOT_FOUND_CODES or code.endswith("NotFound"):
            return None
        raise


HANDLERS: dict[str, Handler] = {
    "log-group": log_group,
    "role": role,
    "security-group": security_group,
    "cluster": cluster,
    "namespace": namespace,
    "discovery": discovery,
    "secret": secret,
    "repository": repository,
}
