"""ECS services: register the task definition revision, create or update the service,
delete it, report its health and roll it back. A failure leaves a tagged revision or
service that the next apply reuses (revisions are matched by their task-hash tag)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.contract import Health, HealthState
from multicloud.errors import NotFoundError, RetryableError, UserError
from multicloud.planner import Action, Change
from multicloud_aws import names
from multicloud_aws.clients import error_code, guard
from multicloud_aws.context import Context
from multicloud_aws.lookups import cloud_map_service, role_arn, secret_arn, security_group_id, target_group_arn
from multicloud_aws.releasing import until_drained, until_propagated
from multicloud_aws.taskdef import register_request, task_hash

MAX_DELETED_REVISIONS = 10
CIRCUIT_BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                   "maximumPercent": 200, "minimumHealthyPercent": 100}


def apply_service(ctx: Context, app: str, change: Change, say: Callable[[str], None] = lambda _: None) -> None:
    """Create, update or delete one ECS service (and its task definition revisions); `say` reports progress."""
    resource = change.resource
    if change.action is Action.DELETE:
        delete_service(ctx, app, resource.name, str(resource.properties.get("cluster")))
        return
    props = resource.properties
    base_dir = str((resource.payload or {}).get("base_dir", "."))
    revision = ensure_revision(ctx, app, resource.name, props["task"], base_dir=base_dir, say=say)
    cluster = str(props["cluster"])
    request = {
        "cluster": cluster,
        "taskDefinition": revision,
        "desiredCount": props["replicas"],
        "networkConfiguration": {"awsvpcConfiguration": _network(ctx, app, props["network"])},
        "deploymentConfiguration": CIRCUIT_BREAKER,
    }
    tags = names.resource_tags(app, resource, resource.name, **{
        names.TAG_TASK_HASH: task_hash(props["task"]),
        names.TAG_TASK_REVISION: revision.rsplit(":", 1)[-1],
        names.TAG_AFTER: " ".join(props["after"]),
    })
    client = ctx.client("ecs")
    current = _describe(ctx, cluster, resource.name)
    balancers = [{"targetGroupArn": _target_group(ctx, b["target_group"]), "containerName": resource.name,
                  "containerPort": b["port"]} for b in props["load_balancers"]]
    registry = cloud_map_service(ctx, app, resource.name, str(props["namespace"]))
    if registry is None:
        raise RetryableError(f"Cloud Map service {resource.name} does not exist yet")
    registries = [{"registryArn": registry["Arn"]}]
    if current is None:
        until_drained(ctx, cluster, resource.name)  # a deleted one of the same name blocks its name until then
    with guard(f"deploying ECS service {resource.name}"):
        if current is None:
            extra: dict[str, Any] = {"loadBalancers": balancers} if balancers else {}
            if balancers:
                extra["healthCheckGracePeriodSeconds"] = 60
            until_propagated(lambda: client.create_service(
                serviceName=resource.name, launchType="FARGATE", schedulingStrategy="REPLICA",
                serviceRegistries=registries, propagateTags="SERVICE",
                enableECSManagedTags=True, tags=names.tag_list(tags, lower=True), **request, **extra))
            return
        owner = names.tag_dict(current.get("tags")).get(names.TAG_APP)
        if owner != app:
            raise UserError(f"ECS service {resource.name} in cluster {cluster} belongs to {owner or 'someone else'}",
                            hint="deploy each app into its own cluster")
        if _attachments(current.get("loadBalancers")) != _attachments(balancers):
            request["loadBalancers"] = balancers
        if [r.get("registryArn") for r in current.get("serviceRegistries") or []] != [registry["Arn"]]:
            request["serviceRegistries"] = registries
        client.update_service(service=resource.name, **request)
        client.tag_resource(resourceArn=current["serviceArn"], tags=names.tag_list(tags, lower=True))


def _attachments(balancers: Any) -> list[tuple[str, int]]:
    """(target group ARN, container port) pairs of a service's loadBalancers, comparable."""
    return sorted((str(b.get("targetGroupArn")), int(b.get("containerPort") or 0)) for b in balancers or [])


def ensure_revision(ctx: Context, app: str, service: str, task: Mapping[str, Any], *, base_dir: str = ".",
                    say: Callable[[str], None] = lambda _: None) -> str:
    """The ARN of a revision of the family with this task's hash: the latest one when it
    matches, else a newly registered one (older revisions beyond keep_revisions are
    deregistered)."""
    client = ctx.client("ecs")
    wanted = task_hash(task)
    family = str(task["family"])
    try:
        with guard(f"describing task definition {family}"):
            latest = client.describe_task_definition(taskDefinition=family, include=["TAGS"])
        if names.tag_dict(latest.get("tags")).get(names.TAG_TASK_HASH) == wanted:
            return str(latest["taskDefinition"]["taskDefinitionArn"])
    except NotFoundError:
        pass
    except Exception as exc:  # moto and AWS differ on the code for an unknown family
        if error_code(exc) not in ("ClientException", "InvalidParameterException"):
            raise

    def arn_of(key: str) -> str:
        kind, _, name = key.partition("/")
        if kind == "role":
            return role_arn(ctx, app)
        if kind == "secret":
            return secret_arn(ctx, _secret_name(app, name))
        return key

    image = task["image"]
    if isinstance(image, Mapping):
        from multicloud_aws.build import build_and_push

        image = build_and_push(ctx, app, service, image, base_dir, say=say)
    request = register_request(app, service, task, region=ctx.region, image=str(image), arn_of=arn_of)
    with guard(f"registering task definition {family}"):
        registered = client.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
    _prune(ctx, family)
    return str(registered)


def _secret_name(app: str, name: str) -> str:
    if "." in name:
        service, _, variable = name.partition(".")
        return names.env_secret(app, service, re.sub(r"[^A-Za-z0-9/_+=.@-]", "-", variable))
    return names.secret(app, name)


def _prune(ctx: Context, family: str) -> None:
    """Deregister revisions beyond the newest keep_revisions (kept for rollback)."""
    client = ctx.client("ecs")
    with guard(f"pruning old revisions of {family}"):
        arns = client.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")["taskDefinitionArns"]
        for arn in [a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family][ctx.settings.keep_revisions:]:
            client.deregister_task_definition(taskDefinition=arn)


def _network(ctx: Context, app: str, network: Mapping[str, Any]) -> dict[str, Any]:
    groups = []
    for group in network["security_groups"]:
        if group.startswith("security-group/"):
            found = security_group_id(ctx, app)
            if found is None:
                raise RetryableError("the app's security group does not exist yet")
            groups.append(found)
        else:
            groups.append(group)
    return {"subnets": ctx.subnets(), "securityGroups": groups,
            "assignPublicIp": "ENABLED" if network["public_ip"] else "DISABLED"}


def _target_group(ctx: Context, name: str) -> str:
    """The ARN of a public port's target group, by name."""
    arn = target_group_arn(ctx, name)
    if arn is None:
        raise RetryableError(f"target group {name} does not exist yet")
    return arn


def _describe(ctx: Context, cluster: str, service: str) -> dict[str, Any] | None:
    """The ACTIVE ECS service of that name with its tags, or None."""
    try:
        with guard(f"describing ECS service {service}"):
            found = ctx.client("ecs").describe_services(cluster=cluster, services=[service], include=["TAGS"])
    except NotFoundError:
        return None
    active = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
    return dict(active[0]) if active else None


def delete_service(ctx: Context, app: str, service: str, cluster: str) -> None:
    """Scale to zero, delete the service and wait while it drains (its tasks stop), then
    deregister and delete its revisions; a timeout leaves it DRAINING for the next destroy."""
    client = ctx.client("ecs")
    current = _describe(ctx, cluster, service)
    with guard(f"deleting ECS service {service}"):
        if current is not None and names.tag_dict(current.get("tags")).get(names.TAG_APP) == app:
            client.update_service(cluster=cluster, service=service, desiredCount=0)
            client.delete_service(cluster=cluster, service=service, force=True)
    until_drained(ctx, cluster, service)
    with guard(f"deleting the revisions of ECS service {service}"):
        family = names.family(app, service)
        arns = client.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
        arns = [a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family]
        for arn in arns:
            client.deregister_task_definition(taskDefinition=arn)
        for start in range(0, len(arns), MAX_DELETED_REVISIONS):  # ECS takes at most 10 per call
            try:
                client.delete_task_definitions(taskDefinitions=arns[start:start + MAX_DELETED_REVISIONS])
            except Exception as exc:  # older endpoints lack the call; deregistered is enough
                if error_code(exc) not in ("InvalidAction", "UnknownOperationException", "ClientException"):
                    raise
                break


def service_health(ctx: Context, cluster: str, service: str) -> Health:
    """Healthy once the primary deployment completed with every task running; unhealthy
    when the circuit breaker failed it, or rolled it back to a revision older than the one
    the last apply deployed (that rollback completes: aws-actions/amazon-ecs-deploy-task-definition#860)."""
    current = _describe(ctx, cluster, service)
    if current is None:
        return Health(HealthState.STARTING, "service not visible yet")
    primary: dict[str, Any] = next((d for d in current.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    desired, running = int(current.get("desiredCount", 0)), int(current.get("runningCount", 0))
    state = primary.get("rolloutState", "COMPLETED")
    deployed = names.tag_dict(current.get("tags")).get(names.TAG_TASK_REVISION, "")
    revision = str(primary.get("taskDefinition") or current.get("taskDefinition", "")).rsplit(":", 1)[-1]
    events = "; ".join(e.get("message", "") for e in current.get("events", [])[:3])
    if deployed.isdigit() and revision.isdigit() and int(revision) < int(deployed):
        return Health(HealthState.UNHEALTHY,
                      f"revision {deployed} failed to deploy and ECS rolled back to revision {revision}: {events}")
    if state == "FAILED":
        reason = primary.get("rolloutStateReason", "")
        return Health(HealthState.UNHEALTHY, f"deployment failed and rolled back: {reason} {events}".strip())
    if state == "COMPLETED" and running >= desired:
        return Health(HealthState.HEALTHY)
    return Health(HealthState.STARTING, f"{running}/{desired} tasks running, rollout {state.lower()}")


def rollback(ctx: Context, app: str, cluster: str, service: str) -> str:
    """Point the service at the revision before the one it runs; return that revision's ARN.
    Raises UserError when there is no earlier revision. The next apply rolls forward."""
    current = _describe(ctx, cluster, service)
    if current is None:
        raise UserError(f"service {service!r} is not deployed")
    running = str(current["taskDefinition"])
    family = names.family(app, service)
    client = ctx.client("ecs")
    with guard(f"listing revisions of {family}"):
        arns = client.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")["taskDefinitionArns"]
    number = int(running.rsplit(":", 1)[-1])
    older = [a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family and int(a.rsplit(":", 1)[-1]) < number]
    if not older:
        raise UserError(f"service {service!r} has no revision before {number} to roll back to")
    target = str(older[0])
    with guard(f"rolling {service} back to {target}"):
        tags = names.tag_dict(client.describe_task_definition(taskDefinition=target, include=["TAGS"]).get("tags"))
        client.update_service(cluster=cluster, service=service, taskDefinition=target)
        client.tag_resource(resourceArn=current["serviceArn"], tags=names.tag_list({
            names.TAG_TASK_HASH: tags.get(names.TAG_TASK_HASH, ""),
            names.TAG_TASK_REVISION: target.rsplit(":", 1)[-1]}, lower=True))
    return target


def describe_service(ctx: Context, cluster: str, service: str) -> dict[str, Any] | None:
    """The ACTIVE ECS service of that name with its tags, or None (for readers outside this module)."""
    return _describe(ctx, cluster, service)
