"""Target settings of the aws-ecs provider: a pydantic model the core checks before anything runs.

Imports no boto3: the core reads this model (entry point `multicloud.settings`) for
`multicloud validate` and `multicloud schema`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, WithJsonSchema

from multicloud.settings import ProviderSettings, validate_settings

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"
_DNS = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_CLUSTER = r"^[A-Za-z0-9_-]{1,255}$"


def _text(pattern: str | None, example: str) -> Any:
    """A non-empty string (stripped) matching `pattern`; the error gives an example."""

    def check(value: str) -> str:
        if not value.strip() or (pattern and not re.match(pattern, value)):
            raise ValueError(f"{value!r} is not valid; expected e.g. {example}")
        return value.strip()

    schema: dict[str, Any] = {"type": "string", "minLength": 1, "examples": [example]}
    if pattern:
        schema["pattern"] = pattern
    return AfterValidator(check), WithJsonSchema(schema)


def _ids(prefix: str) -> Any:
    """One id or a list of ids starting with `prefix-`, deduplicated and sorted."""

    def check(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError(f"give a list of ids such as [{prefix}-0123abcd]")
        bad = [v for v in value if not v.startswith(prefix + "-")]
        if bad:
            raise ValueError(f"not {prefix} ids: {', '.join(bad)}")
        return tuple(sorted(set(value)))

    item = {"type": "string", "pattern": f"^{prefix}-"}
    schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}
    return BeforeValidator(check), WithJsonSchema(schema)


def _retention(value: Any) -> int:
    """One of CloudWatch's retention periods, in days."""
    if isinstance(value, bool) or value not in RETENTION_DAYS:
        raise ValueError(f"{value!r} is not a CloudWatch retention; use one of {', '.join(map(str, RETENTION_DAYS))}")
    return int(value)


def _url(value: str) -> str:
    """An http(s) URL without a trailing slash."""
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


Arn = Annotated[str, *_text(_ARN, "arn:aws:iam::123456789012:role/ecsTaskExecutionRole")]
Ids = tuple[str, ...]


class AwsSettings(ProviderSettings):
    """Settings of an `aws-ecs` target (ECS Fargate, NLB, Cloud Map)."""

    region: Annotated[str, *_text(_REGION, "eu-west-1")] | None = Field(
        default=None, description="AWS region, e.g. eu-west-1 (default: the standard AWS configuration)"
    )
    profile: Annotated[str, *_text(None, "default")] | None = Field(
        default=None, description="named profile from ~/.aws/config (default: the standard credentials chain)"
    )
    endpoint_url: Annotated[str, AfterValidator(_url)] | None = Field(
        default=None, description="one endpoint for every AWS API, e.g. an emulator (default: AWS_ENDPOINT_URL or AWS)"
    )
    cluster: Annotated[str, *_text(_CLUSTER, "my-cluster")] | None = Field(
        default=None, description="an existing ECS cluster to deploy into (default: a cluster named after the app)"
    )
    vpc: Annotated[str, *_text(r"^vpc-[0-9a-f]+$", "vpc-0123abcd")] | None = Field(
        default=None, description="VPC id (default: the region's default VPC)"
    )
    subnets: Annotated[Ids, *_ids("subnet")] = Field(
        default=(), description="subnet ids for tasks and the load balancer (default: one public subnet per zone)"
    )
    security_groups: Annotated[Ids, *_ids("sg")] = Field(
        default=(), description="security group ids for the tasks (default: one created per app)"
    )
    assign_public_ip: StrictBool = Field(
        default=True, description="give tasks a public IP, needed to pull images without a NAT (default true)"
    )
    execution_role_arn: Arn | None = Field(
        default=None, description="task execution role (default: one created per app)"
    )
    task_role_arn: Arn | None = Field(
        default=None, description="role the containers run as (default: none)"
    )
    log_retention_days: Annotated[int, BeforeValidator(_retention), WithJsonSchema({"enum": list(RETENTION_DAYS)})] = (
        Field(default=30, description="CloudWatch retention of the app's log group (default 30)")
    )
    namespace: Annotated[str, *_text(_DNS, "iot.internal")] | None = Field(
        default=None, description="Cloud Map private DNS namespace (default: APP.internal)"
    )
    keep_revisions: StrictInt = Field(
        default=5, ge=2, le=100, description="task definition revisions kept per service for rollback (default 5)"
    )
    delete_timeout: StrictInt = Field(
        default=600, ge=0, le=3600,
        description="seconds a destroy waits for deleted services to drain and release the cluster, Cloud Map and "
                    "security group (default 600, as Terraform waits)",
    )


def parse_settings(raw: Mapping[str, Any] | AwsSettings) -> AwsSettings:
    """Check target settings and return them typed; raise SettingsError listing every problem."""
    return validate_settings(AwsSettings, raw, provider="aws-ecs")
