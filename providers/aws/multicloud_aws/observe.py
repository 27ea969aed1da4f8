"""Find what an app owns on AWS, by tags and markers, with properties comparable to desired.

Reads for a whole app: one tagging-API page per 100 objects, one describe_services per 10
services, one list each for Cloud Map namespaces, Cloud Map services and ECR repositories,
and get_role for a created execution role. A tagged object whose spec-hash tag matches
what `desired` rendered in this process is rebuilt from that; any other is described.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from multicloud.errors import NotFoundError
from multicloud.resources import Resource, Sensitive
from multicloud_aws import names, rds
from multicloud_aws.clients import guard
from multicloud_aws.context import Context, chunks, one
from multicloud_aws.desired import DEFAULT, service_depends_on
from multicloud_aws.readers import READERS
from multicloud_aws.taskdef import read_task

STATIC_DEPS = {"port": "load-balancer", "discovery": "namespace"}


class Seen:
    """Everything found for one app, indexed for the lookups services need. A resource may
    have several instances (an apply killed inside a create-before-delete replace leaves the
    new object beside the old): `resources` holds the newest of each key, `instances` all."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.instances: dict[str, list[Resource]] = {}
        self.arns: dict[str, str] = {}
        self.keys_by_arn: dict[str, str] = {}
        self.services: dict[str, dict[str, str]] = {}
        self.namespaces: dict[str, str] = {}
        self.registries: dict[str, str] = {}
        """Cloud Map service ARN -> the name of its namespace."""

    @property
    def resources(self) -> dict[str, Resource]:
        """The newest instance of each key."""
        return {key: found[-1] for key, found in self.instances.items()}

    def all(self) -> list[Resource]:
        """Every instance, by key, oldest first within a key."""
        return [r for key in sorted(self.instances) for r in self.instances[key]]

    def add(self, kind: str, name: str, props: dict[str, Any], *, arn: str = "", service: str | None = None,
            depends_on: tuple[str, ...] = (), created: str = "", faults: tuple[str, ...] = (),
            target: str = "") -> None:
        """Record one observed object as an instance of `kind/name` (told apart by its ARN,
        ordered by `created`, then ARN), with what is broken in it."""
        if not depends_on and kind in STATIC_DEPS:
            depends_on = (f"{STATIC_DEPS[kind]}/{self.app}",)
        resource = Resource(kind, name, props, depends_on=depends_on, service=service,
                            payload={"arn": arn, "created": created}, instance=arn, faults=faults, target=target)
        found = self.instances.setdefault(resource.key, [])
        found.append(resource)
        found.sort(key=lambda r: (r.payload["created"], r.payload["arn"]))
        if arn:
            self.arns[resource.key] = str(found[-1].payload["arn"])
            self.keys_by_arn[arn] = resource.key

    def key_of_id(self, kind: str, object_id: str) -> str:
        """The key of a `kind` resource whose ARN ends in /object_id, else object_id."""
        for arn, key in self.keys_by_arn.items():
            if key.startswith(f"{kind}/") and arn.endswith(f"/{object_id}"):
                return key
        return object_id


def created_of(value: Any) -> str:
    """A sortable creation time from a TAG_CREATED tag (nanoseconds) or an AWS datetime."""
    if isinstance(value, datetime):
        return f"{int(value.timestamp() * 1e9):020d}"
    return f"{int(value):020d}" if str(value or "").isdigit() else ""


TAGGED_KINDS = {"service", "secret", "cluster", *("log-group", "security-group", "load-balancer", "port")}
SERVICE_CONTEXT = ["ecs:service", "ec2:security-group", "elasticloadbalancing:targetgroup"]


def observe(ctx: Context, app: str, key: str | None = None) -> Seen:
    """Every resource the app owns (or, given a key, what reading that one needs), with its
    properties and depends_on; reads only."""
    seen = Seen(app)
    only = key.partition("/")[0] if key else None
    if only is None or only in TAGGED_KINDS:
        _tagged(ctx, app, seen, key)
    if only in (None, "namespace", "discovery", "service", "alias"):
        _cloud_map(ctx, app, seen)
    if only in (None, *rds.KINDS[:3]):
        rds.observe_databases(ctx, app, seen, key)
    if only in (None, "role"):
        _role(ctx, app, seen)
    if only in (None, "repository"):
        _repositories(ctx, app, seen)
    if only in (None, "service"):
        if key:
            seen.services = {a: t for a, t in seen.services.items() if t.get(names.TAG_KEY) == key}
        _services(ctx, app, seen)
    return seen


def _tagged(ctx: Context, app: str, seen: Seen, key: str | None) -> None:
    if key is None or key.startswith("service/"):
        found = ctx.tagged(app, types=SERVICE_CONTEXT if key else None)
    else:
        found = ctx.tagged(app, key=key)
    described: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for arn, tags in sorted(found):
        key = tags.get(names.TAG_KEY, "")
        kind, _, name = key.partition("/")
        if not name:
            continue
        service = tags.get(names.TAG_SERVICE) or None
        if kind == "service":
            seen.services[arn] = tags
        elif kind == "secret":
            digest = Sensitive(digest=tags.get(names.TAG_DIGEST, ""))
            props = {"name": arn.split(":secret:", 1)[-1][:-7], "value": digest}
            seen.add(kind, name, props, arn=arn, service=service, target=tags.get(names.TAG_TARGET, ""))
        elif kind in READERS:
            described.setdefault(kind, []).append((arn, tags))
    for kind, items in sorted(described.items()):
        found_props = READERS[kind](ctx, items)
        for arn, tags in items:
            if arn in found_props:
                name = tags[names.TAG_KEY].partition("/")[2]
                seen.add(kind, name, found_props[arn], arn=arn, service=tags.get(names.TAG_SERVICE) or None,
                         created=created_of(tags.get(names.TAG_CREATED)), target=tags.get(names.TAG_TARGET, ""))


def _cloud_map(ctx: Context, app: str, seen: Seen) -> None:
    client = ctx.client("servicediscovery")
    with guard("listing Cloud Map namespaces"):
        namespaces = [n for page in client.get_paginator("list_namespaces").paginate(
            Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"}]) for n in page["Namespaces"]]
    ours = [n for n in namespaces if n.get("Description") == names.marker(app)]
    for namespace in ours:
        seen.add("namespace", app, {"name": namespace["Name"]}, arn=namespace["Arn"],
                 created=created_of(namespace.get("CreateDate")))
        seen.namespaces[namespace["Id"]] = namespace["Name"]
    for namespace in ours:
        with guard(f"listing the Cloud Map services of {namespace['Name']}"):
            pages = client.get_paginator("list_services").paginate(
                Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace["Id"]], "Condition": "EQ"}])
            listed = [s for page in pages for s in page["Services"]]
        in_namespace = (seen.key_of_id("namespace", namespace["Id"]),)
        for entry in listed:
            if entry.get("Description") != names.marker(app):
                continue
            record = (one(entry, "DnsConfig", "DnsRecords") or [{}])[0]
            props = {"name": entry["Name"], "namespace": namespace["Name"], "ttl": record.get("TTL")}
            if record.get("Type") == "CNAME":  # a database's alias (multicloud_aws.rds)
                seen.add("alias", entry["Name"], {**props, "instance": rds.alias_target(ctx, entry["Id"])},
                         arn=entry["Arn"], depends_on=(*in_namespace, f"postgres/{entry['Name']}"),
                         created=created_of(entry.get("CreateDate")))
                continue
            seen.add("discovery", entry["Name"], props, arn=entry["Arn"], service=entry["Name"],
                     depends_on=in_namespace, created=created_of(entry.get("CreateDate")))
            seen.registries[entry["Arn"]] = namespace["Name"]


def _role(ctx: Context, app: str, seen: Seen) -> None:
    if ctx.settings.execution_role_arn:
        return
    try:
        with guard("reading the execution role"):
            role = ctx.client("iam").get_role(RoleName=names.role(app))["Role"]
    except NotFoundError:
        return
    tags = names.tag_dict(role.get("Tags"))
    if tags.get(names.TAG_APP) != app:
        return
    props = read_role(ctx, app, role["Arn"])
    if props is not None:
        seen.add("role", app, dict(props), arn=role["Arn"], target=tags.get(names.TAG_TARGET, ""))


def _repositories(ctx: Context, app: str, seen: Seen) -> None:
    prefix = names.repository(app, "")
    with guard("listing ECR repositories"):
        repos = [r for page in ctx.client("ecr").get_paginator("describe_repositories").paginate()
                 for r in page["repositories"]]
    for repo in repos:
        name = str(repo["repositoryName"])
        if name.startswith(prefix) and "/" not in name[len(prefix):]:
            service = name[len(prefix):]
            seen.add("repository", service, {"name": name}, arn=repo["repositoryArn"], service=service)
            seen.arns[f"repository-uri/{service}"] = repo["repositoryUri"]


def _services(ctx: Context, app: str, seen: Seen) -> None:
    by_cluster: dict[str, list[str]] = {}
    for arn in seen.services:
        by_cluster.setdefault(cluster_of(arn, ctx, app), []).append(arn)
    for cluster, arns in sorted(by_cluster.items()):
        for batch in chunks(sorted(arns), 10):
            try:
                with guard(f"describing ECS services in {cluster}"):
                    found = ctx.client("ecs").describe_services(cluster=cluster, services=batch, include=["TAGS"])
            except NotFoundError:  # the tagging API still lists services of a deleted cluster
                continue
            for described in found.get("services", []):
                if described.get("status") != "ACTIVE":
                    continue
                tags = names.tag_dict(described.get("tags")) or seen.services.get(described["serviceArn"], {})
                add_service(ctx, app, seen, described, tags)


def cluster_of(service_arn: str, ctx: Context, app: str) -> str:
    """The cluster of a service ARN (long form arn:...:service/CLUSTER/NAME)."""
    parts = service_arn.split(":", 5)[-1].split("/")
    return parts[1] if len(parts) == 3 else (ctx.settings.cluster or app)


def add_service(ctx: Context, app: str, seen: Seen, described: dict[str, Any], tags: dict[str, str]) -> None:
    """Rebuild a `service/NAME` resource from describe_services output and its tags."""
    name = tags.get(names.TAG_SERVICE) or str(described["serviceName"])
    task_arn = str(described.get("taskDefinition", ""))
    task = ctx.cached(task_arn, lambda: _read_task(ctx, app, name, task_arn)) if task_arn else None
    network = one(described, "networkConfiguration", "awsvpcConfiguration") or {}
    groups = [seen.key_of_id("security-group", g) for g in network.get("securityGroups", [])]
    registries = [str(r["registryArn"]) for r in described.get("serviceRegistries", [])]
    props = {
        "cluster": described["clusterArn"].rsplit("/", 1)[-1],
        "task": task,
        "replicas": described.get("desiredCount", 0),
        "network": {
            "subnets": sorted(network.get("subnets", [])) if ctx.settings.subnets else DEFAULT,
            "security_groups": sorted(groups),
            "public_ip": network.get("assignPublicIp") == "ENABLED",
        },
        "load_balancers": [{"target": seen.keys_by_arn.get(b["targetGroupArn"], b["targetGroupArn"]),
                            "target_group": b["targetGroupArn"].split(":targetgroup/", 1)[-1].split("/")[0],
                            "port": b["containerPort"]} for b in described.get("loadBalancers", [])],
        "discovery": seen.keys_by_arn.get(registries[0], registries[0]) if registries else None,
        "namespace": seen.registries.get(registries[0]) if registries else None,
        "after": sorted(tags.get(names.TAG_AFTER, "").split()),
    }
    primary: dict[str, Any] = next((d for d in described.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    faults: tuple[str, ...] = ()
    if primary.get("rolloutState") == "FAILED":
        faults = (f"its deployment failed: {primary.get('rolloutStateReason') or 'no reason given'}",)
    seen.add("service", name, props, arn=described["serviceArn"], service=name,
             depends_on=service_depends_on(app, props, own_cluster=props["cluster"] == app), faults=faults,
             target=tags.get(names.TAG_TARGET, ""))


def _read_task(ctx: Context, app: str, service: str, task_arn: str) -> Any:
    """A task definition revision read back into `task` properties (revisions never change)."""
    with guard(f"describing task definition {task_arn}"):
        definition = ctx.client("ecs").describe_task_definition(taskDefinition=task_arn)["taskDefinition"]
    return read_task(app, definition, lambda arn: role_key(ctx, app, arn),
                     lambda image, build: image_spec(app, service, image, build))


def role_key(ctx: Context, app: str, arn: str) -> str:
    """`role/APP` for the app's own execution role, else the ARN."""
    if not ctx.settings.execution_role_arn and arn.endswith(f":role/{names.role(app)}"):
        return f"role/{app}"
    return arn


def image_spec(app: str, service: str, image: str, build: str | None) -> Any:
    """The spec form of a running image: a build's (from its label) for the service's own repository, else itself."""
    if build and image.partition("@")[0].endswith(f"/{names.repository(app, service)}"):
        try:
            found = json.loads(build)
        except ValueError:
            return image
        return found if isinstance(found, dict) else image
    return image


def read_role(ctx: Context, app: str, arn: str) -> dict[str, Any] | None:
    """The execution role's properties: its name and the secrets its policy opens."""
    name = arn.rsplit("/", 1)[-1]
    try:
        with guard(f"reading the policy of role {name}"):
            document = ctx.client("iam").get_role_policy(RoleName=name, PolicyName="multicloud")["PolicyDocument"]
    except NotFoundError:
        return {"name": name, "secrets": None}
    if isinstance(document, str):
        from urllib.parse import unquote

        document = json.loads(unquote(document))
    resources = [s.get("Resource") for s in document.get("Statement", []) if "secretsmanager:GetSecretValue" in
                 (s.get("Action") if isinstance(s.get("Action"), list) else [s.get("Action")])]
    secret = str(resources[0]).split(":secret:", 1)[-1] if resources else None
    return {"name": name, "secrets": secret}
