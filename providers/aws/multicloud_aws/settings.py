"""Target settings of the aws-ecs provider: parsed and checked before anything runs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multicloud.errors import SettingsError

DESCRIPTIONS = {
    "region": "AWS region, e.g. eu-west-1 (default: the standard AWS configuration)",
    "profile": "named profile from ~/.aws/config (default: the standard credentials chain)",
    "endpoint_url": "one endpoint for every AWS API, e.g. an emulator (default: AWS_ENDPOINT_URL or AWS)",
    "cluster": "an existing ECS cluster to deploy into (default: a cluster named after the app, created)",
    "vpc": "VPC id (default: the region's default VPC)",
    "subnets": "subnet ids for tasks and the load balancer (default: the VPC's subnets)",
    "security_groups": "security group ids for the tasks (default: one created per app)",
    "assign_public_ip": "give tasks a public IP, needed to pull images without a NAT (default true)",
    "execution_role_arn": "task execution role (default: one created per app)",
    "task_role_arn": "role the containers run as (default: none)",
    "log_retention_days": "CloudWatch retention of the app's log group (default 30)",
    "namespace": "Cloud Map private DNS namespace (default: APP.internal)",
    "keep_revisions": "task definition revisions kept per service for rollback (default 5)",
}

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_DNS = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLUSTER = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@dataclass(frozen=True)
class AwsSettings:
    """The validated settings of one aws-ecs target."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    cluster: str | None = None
    vpc: str | None = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = True
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    log_retention_days: int = 30
    namespace: str | None = None
    keep_revisions: int = 5


def parse_settings(raw: Mapping[str, Any]) -> AwsSettings:
    """Check target settings and return them typed; raise SettingsError naming the first bad key."""
    for key in raw:
        if key not in DESCRIPTIONS:
            close = difflib.get_close_matches(key, list(DESCRIPTIONS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SettingsError(key, f"unknown setting for aws-ecs; {hint}known: {', '.join(DESCRIPTIONS)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            values[key] = _CHECKS[key](value)
        except ValueError as exc:
            raise SettingsError(key, str(exc)) from None
    return AwsSettings(**values)


def _text(pattern: re.Pattern[str] | None, example: str) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value)):
            raise ValueError(f"{value!r} is not valid; expected e.g. {example}")
        return value.strip()

    return check


def _ids(prefix: str) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError(f"give a list of ids such as [{prefix}-0123abcd]")
        bad = [v for v in value if not v.startswith(prefix + "-")]
        if bad:
            raise ValueError(f"not {prefix} ids: {', '.join(bad)}")
        return tuple(sorted(set(value)))

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _retention(value: Any) -> int:
    if isinstance(value, bool) or value not in RETENTION_DAYS:
        raise ValueError(f"{value!r} is not a CloudWatch retention; use one of {', '.join(map(str, RETENTION_DAYS))}")
    return int(value)


def _revisions(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 100:
        raise ValueError(f"{value!r} is not a number of revisions between 2 and 100")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


_CHECKS: dict[str, Any] = {
    "region": _text(_REGION, "eu-west-1"),
    "profile": _text(None, "default"),
    "endpoint_url": _url,
    "cluster": _text(_CLUSTER, "my-cluster"),
    "vpc": _text(re.compile(r"^vpc-[0-9a-f]+$"), "vpc-0123abcd"),
    "subnets": _ids("subnet"),
    "security_groups": _ids("sg"),
    "assign_public_ip": _flag,
    "execution_role_arn": _text(_ARN, "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
    "task_role_arn": _text(_ARN, "arn:aws:iam::123456789012:role/my-task-role"),
    "log_retention_days": _retention,
    "namespace": _text(_DNS, "iot.internal"),
    "keep_revisions": _revisions,
}
