"""Carry out `postgres` steps on AWS (see multicloud_aws.rds): the RDS instance, its security and
subnet groups, its Cloud Map alias, and its health. Each step is idempotent: a failure leaves tagged
objects the next apply finds and finishes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from multicloud.contract import Health, HealthState
from multicloud.errors import NotFoundError, RetryableError, UserError
from multicloud.planner import Action, Change
from multicloud.resources import Resource, Sensitive
from multicloud.retry import wait_for
from multicloud_aws import names
from multicloud_aws.clients import error_code, guard
from multicloud_aws.context import Context
from multicloud_aws.infra import _wait_operation, ignore_missing, observed_arn, registry
from multicloud_aws.rds import PORT, TAG_DELETION
from multicloud_aws.releasing import patience, until_released

STARTING = {"creating", "backing-up", "modifying", "configuring-enhanced-monitoring", "configuring-log-exports",
            "upgrading", "starting", "rebooting", "resetting-master-credentials", "renaming", "storage-optimization",
            "maintenance", "configuring-iam-database-auth"}


def _tags(app: str, resource: Resource, **extra: str) -> list[dict[str, str]]:
    return names.tag_list(names.resource_tags(app, resource, **{TAG_DELETION: resource.properties["deletion"]},
                                              **extra))


def security_group(ctx: Context, app: str, change: Change) -> None:
    """Create the database's security group (PostgreSQL's port from the VPC's CIDR); retag it when
    its deletion setting changes; delete the observed one, waiting while the instance still uses it."""
    client = ctx.client("ec2")
    if change.action is Action.DELETE:
        group = observed_arn(change)
        if group:
            with guard(f"deleting security group {group}"):
                until_released(ctx, lambda: ignore_missing(lambda: client.delete_security_group(GroupId=group)))
        return
    resource = change.resource
    name = str(resource.properties["name"])
    with guard(f"creating security group {name}"):
        found = client.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                         {"Name": "vpc-id", "Values": [ctx.vpc()]}])["SecurityGroups"]
        if found and names.tag_dict(found[0].get("Tags")).get(names.TAG_APP) != app:
            raise UserError(f"security group {name} exists and is not multicloud's for {app}")
        if found:
            group = found[0]["GroupId"]
        else:
            group = client.create_security_group(
                GroupName=name, Description=f"multicloud database of {app}", VpcId=ctx.vpc(),
                TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(app, resource)}])["GroupId"]
        cidr = client.describe_vpcs(VpcIds=[ctx.vpc()])["Vpcs"][0]["CidrBlock"]
        rules = client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        wanted = {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": cidr}]}
        if not any(r.get("FromPort") == PORT and {"CidrIp": cidr} in r.get("IpRanges", []) for r in rules):
            client.authorize_security_group_ingress(GroupId=group, IpPermissions=[wanted])
        client.create_tags(Resources=[group], Tags=_tags(app, resource))


def subnet_group(ctx: Context, app: str, change: Change) -> None:
    """Create or update the database's DB subnet group; delete the observed one."""
    client = ctx.client("rds")
    if change.action is Action.DELETE:
        name = str(change.resource.properties["name"])
        with guard(f"deleting DB subnet group {name}"):
            until_released(ctx, lambda: ignore_missing(lambda: client.delete_db_subnet_group(DBSubnetGroupName=name)))
        return
    resource = change.resource
    name, subnets = str(resource.properties["name"]), list(resource.properties["subnets"])
    with guard(f"creating DB subnet group {name}"):
        try:
            made = client.create_db_subnet_group(DBSubnetGroupName=name, SubnetIds=subnets, Tags=_tags(app, resource),
                                                 DBSubnetGroupDescription=f"multicloud database of {app}")
            arn = made["DBSubnetGroup"]["DBSubnetGroupArn"]
        except Exception as exc:
            if error_code(exc) != "DBSubnetGroupAlreadyExists":
                raise
            arn = client.modify_db_subnet_group(DBSubnetGroupName=name, SubnetIds=subnets)["DBSubnetGroup"][
                "DBSubnetGroupArn"]
        client.add_tags_to_resource(ResourceName=arn, Tags=_tags(app, resource))


def instance(ctx: Context, app: str, change: Change) -> None:
    """Create, modify or delete the RDS instance (see multicloud_aws.rds for what deletion does)."""
    if change.action is Action.DELETE:
        assert change.before is not None
        _delete_instance(ctx, change.before)
    elif change.action is Action.CREATE:
        _create_instance(ctx, app, change.resource)
    else:
        assert change.before is not None
        _modify_instance(ctx, app, change.before, change.resource)


def _security_group_id(ctx: Context, app: str, props: Mapping[str, Any]) -> str:
    """The id of the instance's security group (made by the step before; the app's own: every app
    names its database's group by the same key)."""
    key = str(props["security_group"])
    with guard(f"looking up {key}"):
        found = ctx.client("ec2").describe_security_groups(Filters=[{"Name": f"tag:{names.TAG_KEY}", "Values": [key]},
                                                                    {"Name": f"tag:{names.TAG_APP}", "Values": [app]},
                                                                    {"Name": "vpc-id", "Values": [ctx.vpc()]}])
    groups = found["SecurityGroups"]
    if not groups:
        raise RetryableError(f"{key} does not exist yet")
    return str(groups[0]["GroupId"])


def _create_instance(ctx: Context, app: str, resource: Resource) -> None:
    """CreateDBInstance (an instance already there and tagged as this resource counts as made)."""
    props = resource.properties
    password = props["password"]
    assert isinstance(password, Sensitive)
    identifier = str(props["identifier"])
    options: dict[str, Any] = {
        "DBInstanceIdentifier": identifier, "Engine": "postgres", "EngineVersion": str(props["version"]),
        "DBInstanceClass": props["class"], "AllocatedStorage": int(props["storage"]), "StorageType": "gp3",
        "DBName": props["database"], "MasterUsername": props["user"], "MasterUserPassword": password.reveal(),
        "VpcSecurityGroupIds": [_security_group_id(ctx, app, props)], "PubliclyAccessible": False,
        "StorageEncrypted": bool(props["encrypted"]), "DeletionProtection": props["deletion"] == "keep",
        "BackupRetentionPeriod": 7, "CopyTagsToSnapshot": True,
        "Tags": _tags(app, resource, **{names.TAG_DIGEST: password.digest}, **names.created()),
    }
    if props["subnet_group"] != "default":
        options["DBSubnetGroupName"] = props["subnet_group"]
    client = ctx.client("rds")
    with guard(f"creating RDS instance {identifier}"):
        try:
            client.create_db_instance(**options)
        except Exception as exc:
            if error_code(exc) != "DBInstanceAlreadyExists":
                raise
            tags = names.tag_dict(_describe(ctx, identifier).get("TagList"))
            if tags.get(names.TAG_KEY) != resource.key or tags.get(names.TAG_APP) != app:
                raise UserError(f"RDS instance {identifier} exists and is not multicloud's {resource.key} of {app}",
                                hint="delete or rename it, or rename the app or the resource") from exc


def _modify_instance(ctx: Context, app: str, before: Resource, after: Resource) -> None:
    """ModifyDBInstance, applied at once: class, storage (RDS only grows it), major version,
    password, deletion protection; then the tags that record the password's digest and deletion."""
    old, new = before.properties, after.properties
    identifier = str(new["identifier"])
    if int(new["storage"]) < int(old["storage"]):
        raise UserError(f"{after.key}: RDS cannot shrink storage ({old['storage']} GiB -> {new['storage']} GiB)",
                        hint="keep the storage hint at its size or more")
    options: dict[str, Any] = {"DBInstanceIdentifier": identifier, "ApplyImmediately": True,
                               "DeletionProtection": new["deletion"] == "keep"}
    if new["class"] != old["class"]:
        options["DBInstanceClass"] = new["class"]
    if int(new["storage"]) != int(old["storage"]):
        options["AllocatedStorage"] = int(new["storage"])
    if new["version"] != old["version"]:
        options.update(EngineVersion=str(new["version"]), AllowMajorVersionUpgrade=True)
    password = new["password"]
    assert isinstance(password, Sensitive)
    if password != old["password"]:
        options["MasterUserPassword"] = password.reveal()
    client = ctx.client("rds")
    with guard(f"modifying RDS instance {identifier}"):
        arn = _describe(ctx, identifier)["DBInstanceArn"]
        client.modify_db_instance(**options)
        client.add_tags_to_resource(ResourceName=arn, Tags=_tags(app, after, **{names.TAG_DIGEST: password.digest}))


def _delete_instance(ctx: Context, before: Resource) -> None:
    """Delete the observed instance as its deletion setting says, then wait until it is gone
    (at most delete_timeout; a later destroy resumes)."""
    props = before.properties
    identifier = str(props["identifier"])
    client = ctx.client("rds")
    options: dict[str, Any] = {"DBInstanceIdentifier": identifier,
                               "DeleteAutomatedBackups": props["deletion"] != "snapshot"}
    if props["deletion"] == "snapshot":
        options["FinalDBSnapshotIdentifier"] = f"{identifier}-final-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    else:
        options["SkipFinalSnapshot"] = True
    try:
        with guard(f"deleting RDS instance {identifier}"):
            if _describe(ctx, identifier).get("DeletionProtection"):
                client.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False,
                                          ApplyImmediately=True)
            if _describe(ctx, identifier)["DBInstanceStatus"] != "deleting":
                client.delete_db_instance(**options)
    except NotFoundError:
        return
    _wait_gone(ctx, identifier)


def _describe(ctx: Context, identifier: str) -> dict[str, Any]:
    """DescribeDBInstances of one instance; NotFoundError when there is none."""
    with guard(f"describing RDS instance {identifier}"):
        return dict(ctx.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


def _wait_gone(ctx: Context, identifier: str) -> None:
    """Wait until the RDS instance is gone, for at most delete_timeout seconds (then RetryableError)."""

    def gone() -> bool | None:
        try:
            _describe(ctx, identifier)
        except NotFoundError:
            return True
        return None

    wait_for(gone, patience(ctx), timed_out=lambda: RetryableError(
        f"RDS instance {identifier} is still being deleted after {ctx.settings.delete_timeout}s",
        hint="run destroy again, or raise the target's `delete_timeout`"))


def alias(ctx: Context, app: str, change: Change) -> None:
    """The Cloud Map CNAME service `N` in the app's namespace with one instance pointing at the RDS
    endpoint (RetryableError until the instance has one); delete the observed one."""
    resource = change.resource
    endpoint = None
    if change.action is not Action.DELETE:
        endpoint = (_describe(ctx, str(resource.properties["instance"])).get("Endpoint") or {}).get("Address")
        if not endpoint:
            raise RetryableError(f"RDS instance {resource.properties['instance']} has no endpoint yet")
    records = {"RoutingPolicy": "WEIGHTED", "DnsRecords": [{"Type": "CNAME", "TTL": resource.properties["ttl"]}]}
    service = registry(ctx, app, change, records)
    if endpoint:
        client = ctx.client("servicediscovery")
        with guard(f"pointing Cloud Map alias {resource.name} at {endpoint}"):
            _wait_operation(ctx, client.register_instance(ServiceId=service["Id"], InstanceId="rds",
                                                          Attributes={"AWS_INSTANCE_CNAME": endpoint}))


def health(ctx: Context, resource: Resource) -> Health:
    """An instance is healthy once `available` (RDS takes minutes to create or modify one)."""
    try:
        described = _describe(ctx, str(resource.properties["identifier"]))
    except NotFoundError:
        return Health(HealthState.STARTING, "not visible yet")
    status = str(described["DBInstanceStatus"])
    if status == "available":
        return Health(HealthState.HEALTHY)
    if status in STARTING:
        return Health(HealthState.STARTING, f"RDS instance {status}")
    return Health(HealthState.UNHEALTHY, f"RDS instance {status}")


HANDLERS = {"postgres": instance, "db-security-group": security_group, "db-subnet-group": subnet_group,
            "alias": alias}
