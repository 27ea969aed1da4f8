"""Names of the AWS objects an app owns, and the tags that mark them as the app's."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping

from multicloud.resources import Resource

TAG_APP = "multicloud:app"
TAG_TARGET = "multicloud:target"
TAG_KEY = "multicloud:resource"
TAG_SERVICE = "multicloud:service"
TAG_HASH = "multicloud:spec-hash"
TAG_DIGEST = "multicloud:value-digest"
TAG_TASK_HASH = "multicloud:task-hash"
TAG_TASK_REVISION = "multicloud:task-revision"
TAG_AFTER = "multicloud:after"
TAG_LOAD_BALANCER = "multicloud:load-balancer"
"""The NLB a target group was made for (a group serves one NLB; it may not listen yet)."""
TAG_CREATED = "multicloud:created"
"""When an object was made (nanoseconds): of two objects of one resource, the newer is current."""
MARKER_PREFIX = "multicloud:"
"""Cloud Map objects carry `multicloud:APP` as their description, found without tag reads."""


def short(name: str, limit: int, *identity: str) -> str:
    """`name` when it fits in `limit`, else its head plus a hash of `identity` (or of name)."""
    if len(name) <= limit and not identity:
        return name
    digest = hashlib.sha256("\0".join(identity or (name,)).encode()).hexdigest()[:6]
    head = name[: limit - 7].rstrip("-_")
    return f"{head}-{digest}"


def family(app: str, service: str) -> str:
    """Task definition family (and ECS service name): `APP_SERVICE` (names never hold `_`)."""
    return f"{app}_{service}"


def load_balancer(app: str, *placement: str) -> str:
    """The app's NLB: at most 32 characters, letters, digits and hyphens; a placement (vpc,
    subnets) other than the default gets its own name, so a moved NLB can exist beside the old."""
    if not any(placement):
        return short(f"mc-{app}", 32)
    return short(f"mc-{app}", 32, app, *placement)


def load_balancer_dns(region: str) -> str:
    """What the DNS name of any NLB in `region` matches, as a certificate names it: AWS makes the name up when it
    creates the NLB (NAME-ID.elb.REGION.amazonaws.com, .com.cn in China), and `*` matches exactly its one
    first label."""
    return f"*.elb.{region}.amazonaws.com{'.cn' if region.startswith('cn-') else ''}"


def target_group(app: str, service: str, port: str, *identity: str) -> str:
    """A public port's target group: 32 characters at most, unique per (app, service, port)
    and per `identity` (what cannot change in place), so a replacement can be created
    before the group it replaces is deleted."""
    return short(f"{service}-{port}", 32, app, service, port, *identity)


def role(app: str) -> str:
    """The app's task execution role (IAM names hold 64 characters)."""
    return short(f"multicloud-{app}-exec", 64)


def security_group(app: str) -> str:
    """The app's security group name."""
    return f"multicloud-{app}"


def log_group(app: str) -> str:
    """The app's CloudWatch log group."""
    return f"/multicloud/{app}"


def secret(app: str, name: str) -> str:
    """Secrets Manager name of a top-level secret."""
    return f"multicloud/{app}/{name}"


def env_secret(app: str, service: str, variable: str) -> str:
    """Secrets Manager name of an env value that embeds a secret in other text."""
    return f"multicloud/{app}/{service}/{variable}"


def repository(app: str, service: str) -> str:
    """ECR repository of a built service."""
    return f"multicloud/{app}/{service}"


def db_instance(app: str, name: str) -> str:
    """RDS identifier of database `name`: letters, digits and single hyphens, at most 63 characters."""
    joined = "-".join(part for part in f"{app}-{name}".split("-") if part)
    return joined if len(joined) <= 63 else short(joined, 63, app, name)


def db_security_group(app: str, name: str) -> str:
    """The security group that lets the app's VPC reach database `name`."""
    return f"multicloud-{app}-{name}-db"


def db_subnet_group(app: str, name: str) -> str:
    """The DB subnet group of database `name` (when the target names its subnets)."""
    return short(f"multicloud-{app}-{name}", 255)


def namespace(app: str) -> str:
    """Default Cloud Map private DNS namespace."""
    return f"{app}.internal"


def marker(app: str) -> str:
    """The description that marks a Cloud Map namespace or service as the app's."""
    return f"{MARKER_PREFIX}{app}"


def created() -> dict[str, str]:
    """The creation tag of a new object."""
    return {TAG_CREATED: str(time.time_ns())}


def tags(app: str, key: str, service: str | None = None, **extra: str) -> dict[str, str]:
    """The tags every object of the app carries: app, resource key, service; never secrets."""
    found = {TAG_APP: app, TAG_KEY: key}
    if service:
        found[TAG_SERVICE] = service
    found.update(extra)
    return found


def resource_tags(app: str, resource: Resource, service: str | None = None, **extra: str) -> dict[str, str]:
    """The tags of an object made for a resource: those of `tags` plus the spec target it belongs to."""
    found = tags(app, resource.key, service, **extra)
    if resource.target:
        found[TAG_TARGET] = resource.target
    return found


def tag_list(values: Mapping[str, str], *, lower: bool = False) -> list[dict[str, str]]:
    """Tags as AWS lists them: [{Key, Value}] or, for ECS, [{key, value}]."""
    k, v = ("key", "value") if lower else ("Key", "Value")
    return [{k: key, v: value} for key, value in values.items()]


def tag_dict(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags from either AWS list form back to a dict."""
    found: dict[str, str] = {}
    for item in items or ():
        key = item.get("Key", item.get("key"))
        value = item.get("Value", item.get("value"))
        if key is not None:
            found[key] = value or ""
    return found
