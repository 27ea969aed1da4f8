"""`postgres` resources on AWS (see multicloud.backing): RDS for PostgreSQL, rendered and observed.

Each database `N` is four resources:
- `postgres/N`: the RDS instance (`APP-N`), private, encrypted, in the target's VPC; `version`,
  `tier` (an instance class), `storage` (GiB, at least RDS's 20), the password and `deletion`
  change in place (ModifyDBInstance, a major version with AllowMajorVersionUpgrade); its identifier,
  database, owner, subnet group and encryption need a new instance. `deletion: keep` turns on
  deletion protection (destroy keeps it; `destroy --volumes` turns protection off and deletes it
  without a snapshot); `snapshot` deletes it after a final snapshot; `delete` without one.
- `db-security-group/N`: lets the VPC reach port 5432 (by the VPC's CIDR: a rule naming the app's
  own group would keep that group from being deleted while the database is kept).
- `db-subnet-group/N`: only when the target names its `subnets` (else RDS uses the default VPC's).
- `alias/N`: a Cloud Map CNAME `N.NAMESPACE` -> the instance's endpoint, so services reach it at a
  name known before the instance exists (RDS endpoints carry an account-specific part).
  `${resources.N.host}` is that name; the URL asks for TLS (sslmode=require, as RDS enforces it).
The password is the generated secret, kept in Secrets Manager like every other (`secret/…`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from multicloud.errors import NotFoundError
from multicloud.resources import Resource, Sensitive
from multicloud.spec.backing import Address, password_secret
from multicloud.spec.targets import TargetSpec
from multicloud_aws import names
from multicloud_aws.clients import error_code, guard
from multicloud_aws.context import Context
from multicloud_aws.settings import AwsSettings

PORT = 5432
MIN_STORAGE_GIB = 20
GIB = 1024**3
INSTANCE_CLASSES = {"small": "db.t4g.micro", "medium": "db.m6g.large", "large": "db.m6g.xlarge"}
"""Graviton classes: 2 vCPU burstable with 1 GiB; 2 vCPU with 8 GiB; 4 vCPU with 16 GiB."""
REPLACE_ON = frozenset({"identifier", "engine", "database", "user", "subnet_group", "encrypted"})
KINDS = ("postgres", "db-security-group", "db-subnet-group", "alias")


def address(spec: TargetSpec, settings: AwsSettings, name: str) -> Address:
    """Where services reach database `name`: its Cloud Map alias in the app's namespace, over TLS."""
    namespace = settings.namespace or names.namespace(spec.app)
    return Address(f"{name}.{namespace}", PORT, {"sslmode": "require"})


def desired(spec: TargetSpec, settings: AwsSettings, secrets: Mapping[str, str], namespace: str) -> list[Resource]:
    """The resources of every database of the target spec (and the secret keeping its password)."""
    app = spec.app
    found: list[Resource] = []
    for name, db in spec.resources.items():
        keep = db.persistent
        deletion = {"deletion": db.deletion}
        password = Sensitive.of(secrets[password_secret(name)], app=app)
        found.append(Resource("secret", password_secret(name), {"name": names.secret(app, password_secret(name)),
                                                                "value": password}, persistent=keep))
        group = Resource("db-security-group", name, {"name": names.db_security_group(app, name),
                                                     "vpc": settings.vpc or "default", "port": PORT, **deletion},
                         replace_on=frozenset({"name", "vpc"}), persistent=keep)
        found.append(group)
        depends = [group.key]
        subnet_group = "default"
        if settings.subnets:
            subnet_group = names.db_subnet_group(app, name)
            subnets = Resource("db-subnet-group", name, {"name": subnet_group, "subnets": sorted(settings.subnets),
                                                         **deletion}, replace_on=frozenset({"name"}), persistent=keep)
            found.append(subnets)
            depends.append(subnets.key)
        props = {
            "identifier": names.db_instance(app, name),
            "engine": "postgres",
            "version": db.version,
            "class": INSTANCE_CLASSES[db.tier],
            "storage": max(MIN_STORAGE_GIB, math.ceil(db.storage / GIB)),
            "database": db.database_name(name),
            "user": db.user_name(name),
            "password": password,
            "subnet_group": subnet_group,
            "security_group": group.key,
            "encrypted": True,
            **deletion,
        }
        found.append(Resource("postgres", name, props, depends_on=tuple(depends), replace_on=REPLACE_ON,
                              persistent=keep))
        found.append(Resource("alias", name, {"name": name, "namespace": namespace, "ttl": 10,
                                              "instance": props["identifier"]},
                              depends_on=(f"namespace/{app}", f"postgres/{name}"),
                              replace_on=frozenset({"name", "namespace"}), replace_mode="create-before-delete"))
    return found


def service_needs(spec: TargetSpec, service: str) -> list[str]:
    """What a service waits for: each database it refers to, and its alias."""
    return [key for ref in spec.resource_keys(service) for key in (ref, "alias/" + ref.partition("/")[2])]


def instance_props(described: Mapping[str, Any], tags: Mapping[str, str],
                   group_keys: Mapping[str, str]) -> dict[str, Any]:
    """The `postgres/N` properties of a described RDS instance (the password by the digest tag)."""
    groups = [group_keys.get(g["VpcSecurityGroupId"], g["VpcSecurityGroupId"])
              for g in described.get("VpcSecurityGroups", [])]
    subnet_group = (described.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", "default")
    return {
        "identifier": described["DBInstanceIdentifier"],
        "engine": described["Engine"],
        "version": str(described.get("EngineVersion", "")).split(".")[0],
        "class": described["DBInstanceClass"],
        "storage": int(described["AllocatedStorage"]),
        "database": described.get("DBName"),
        "user": described.get("MasterUsername"),
        "password": Sensitive(digest=tags.get(names.TAG_DIGEST, "")),
        "subnet_group": "default" if subnet_group.startswith("default") else subnet_group,
        "security_group": groups[0] if groups else None,
        "encrypted": bool(described.get("StorageEncrypted")),
        "deletion": tags.get(TAG_DELETION, "keep"),
    }


TAG_DELETION = "multicloud:deletion"


def observe_databases(ctx: Context, app: str, seen: Any, key: str | None = None) -> None:
    """Add the app's RDS instances, their security and subnet groups to `seen` (an observe.Seen)."""
    only = key.partition("/")[0] if key else None
    groups: dict[str, str] = {}
    if only in (None, "db-security-group", "postgres"):
        with guard("listing the app's database security groups"):
            found = ctx.client("ec2").describe_security_groups(Filters=[{"Name": f"tag:{names.TAG_APP}",
                                                                         "Values": [app]}])["SecurityGroups"]
        for group in found:
            tags = names.tag_dict(group.get("Tags"))
            kind, _, name = tags.get(names.TAG_KEY, "").partition("/")
            if kind != "db-security-group":
                continue
            groups[group["GroupId"]] = tags[names.TAG_KEY]
            vpc = "default" if not ctx.settings.vpc and group.get("VpcId") == ctx.vpc() else group.get("VpcId")
            props = {"name": group["GroupName"], "vpc": vpc, "port": PORT, "deletion": tags.get(TAG_DELETION, "keep")}
            seen.add(kind, name, props, arn=group["GroupId"], target=tags.get(names.TAG_TARGET, ""))
    if only in (None, "db-subnet-group"):
        _subnet_groups(ctx, app, seen)
    if only in (None, "postgres"):
        with guard("listing RDS instances"):
            pages = ctx.client("rds").get_paginator("describe_db_instances").paginate()
            instances = [i for page in pages for i in page["DBInstances"]]
        for described in instances:
            tags = names.tag_dict(described.get("TagList"))
            kind, _, name = tags.get(names.TAG_KEY, "").partition("/")
            if tags.get(names.TAG_APP) != app or kind != "postgres" or described["DBInstanceStatus"] == "deleting":
                continue
            props = instance_props(described, tags, groups)
            depends = tuple(k for k in (props["security_group"], f"db-subnet-group/{name}"
                                        if props["subnet_group"] != "default" else None) if k)
            seen.add(kind, name, props, arn=described["DBInstanceArn"], depends_on=depends,
                     created=tags.get(names.TAG_CREATED, ""), target=tags.get(names.TAG_TARGET, ""))


def alias_target(ctx: Context, service_id: str) -> str | None:
    """The RDS identifier a Cloud Map alias points at (the first label of its CNAME), or None."""
    try:
        with guard("listing the instances of a Cloud Map alias"):
            found = ctx.client("servicediscovery").list_instances(ServiceId=service_id).get("Instances", [])
    except Exception as exc:  # deleted since it was listed
        if isinstance(exc, NotFoundError) or error_code(exc) == "ServiceNotFound":
            return None
        raise
    target = next((i["Attributes"].get("AWS_INSTANCE_CNAME") for i in found if i.get("Id") == "rds"), None)
    return str(target).split(".", 1)[0] if target else None


def _subnet_groups(ctx: Context, app: str, seen: Any) -> None:
    """Add the app's DB subnet groups (found by name prefix, confirmed by their tags)."""
    client = ctx.client("rds")
    with guard("listing DB subnet groups"):
        found = [g for page in client.get_paginator("describe_db_subnet_groups").paginate()
                 for g in page["DBSubnetGroups"] if g["DBSubnetGroupName"].startswith(f"multicloud-{app}-")]
    for group in found:
        with guard(f"reading the tags of {group['DBSubnetGroupName']}"):
            tags = names.tag_dict(client.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])["TagList"])
        kind, _, name = tags.get(names.TAG_KEY, "").partition("/")
        if tags.get(names.TAG_APP) != app or kind != "db-subnet-group":
            continue
        props = {"name": group["DBSubnetGroupName"], "subnets": sorted(s["SubnetIdentifier"] for s in group["Subnets"]),
                 "deletion": tags.get(TAG_DELETION, "keep")}
        seen.add(kind, name, props, arn=group["DBSubnetGroupArn"], target=tags.get(names.TAG_TARGET, ""))


def persistence(found: list[Resource]) -> list[Resource]:
    """Observed database resources are kept by destroy when their `deletion` says keep, and so is the
    secret holding a kept database's password (a new one would not open the data kept)."""
    kept = {password_secret(r.name) for r in found if r.kind == "postgres" and r.properties.get("deletion") == "keep"}
    return [replace(r, persistent=r.properties.get("deletion") == "keep")
            if r.kind in ("postgres", "db-security-group", "db-subnet-group")
            else replace(r, persistent=True) if r.kind == "secret" and r.name in kept else r for r in found]
