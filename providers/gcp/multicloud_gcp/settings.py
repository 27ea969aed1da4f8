"""The `gcp-cloudrun` target settings: a pydantic model the core checks before anything runs.

Imports no Google SDK: the core reads this model (entry point `multicloud.settings`) for
`multicloud validate` and `multicloud schema`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from multicloud.settings import ProviderSettings, validate_settings
from multicloud.spec.models import unit_schema
from multicloud.spec.units import DURATION_PATTERN, parse_duration
from multicloud_gcp.environment import with_environment
from multicloud_gcp.limits import MAX_CONCURRENCY, MAX_TIMEOUT

EMULATOR_PROJECT_NUMBER = "123456789012"
PROJECT_ID = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
REGION = r"^[a-z]+-[a-z]+[0-9]+$"


def _matches(pattern: str, what: str) -> Any:
    """A check that a string matches `pattern`, naming `what` it should be."""

    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _seconds(high: float) -> Any:
    """A duration (5, "5m", "1h") in seconds, more than 0 and at most `high`."""

    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if not 0 < seconds <= high:
            raise ValueError(f"must be more than 0 and at most {high:g} seconds (got {value!r})")
        return seconds

    number = {"type": "number", "exclusiveMinimum": 0, "maximum": high}
    return BeforeValidator(check), unit_schema(number, DURATION_PATTERN, f"seconds, or e.g. 5m (at most {high:g} s)")


Text = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, *_seconds(MAX_TIMEOUT)]


class GcpSettings(ProviderSettings):
    """Settings of a `gcp-cloudrun` target (Cloud Run Admin API v2)."""

    project: Annotated[str, _matches(PROJECT_ID, "a project ID (6-30 lowercase letters, digits, hyphens)")] = Field(
        description="the Google Cloud project ID to deploy to"
    )
    region: Annotated[str, _matches(REGION, "a Cloud Run region such as europe-west1")] = Field(
        description="the Cloud Run region, e.g. europe-west1"
    )
    project_number: Annotated[
        str,
        BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
        _matches(r"^[0-9]{6,20}$", "the project's number (digits only)"),
        WithJsonSchema({"type": ["string", "integer"], "pattern": r"^[0-9]{6,20}$"}),
    ] | None = Field(default=None, description="needed when a service uses ${services.x.url|host}")
    api_endpoint: Text | None = Field(
        default=None, description="an emulator (http://host:port, plain) or a regional host[:port]"
    )
    sql_endpoint: Text | None = Field(
        default=None,
        description="the Cloud SQL Admin API (REST) for postgres resources: default sqladmin.googleapis.com, "
        "or api_endpoint when that is an emulator's REST port",
    )
    credentials: Text = Field(
        default="default", description="default (ADC), anonymous, or a service-account key file path"
    )
    transport: Literal["rest", "grpc"] = Field(default="grpc", description="grpc (default) or rest")
    max_instances: StrictInt | None = Field(
        default=None, ge=1, le=1000, description="autoscaling ceiling (default: = replicas, i.e. fixed)"
    )
    concurrency: StrictInt = Field(
        default=80, ge=1, le=MAX_CONCURRENCY, description="requests per instance (cpu >= 1 only)"
    )
    request_timeout: Annotated[int, *_seconds(MAX_TIMEOUT), AfterValidator(int)] = Field(
        default=300, description="HTTP services (default 300 s, at most 60 min)"
    )
    websocket_timeout: Annotated[int, *_seconds(MAX_TIMEOUT), AfterValidator(int)] = Field(
        default=MAX_TIMEOUT, description="mqtt-ws services (default and maximum: 60 min)"
    )
    service_account: Annotated[str, _matches(r"^[^@\s]+@[^@\s]+$", "a service account e-mail")] | None = Field(
        default=None, description="the e-mail of the service account the services run as"
    )
    secret_names: dict[str, Text] = Field(
        default_factory=dict, description="spec secret name -> Secret Manager secret ID or path"
    )
    operation_timeout: Annotated[float, *_seconds(86400)] = Field(
        default=600.0, description="how long to wait for one long-running operation (default 10m)"
    )
    poll_interval: Annotated[float, *_seconds(60)] = Field(
        default=0.05, description="first LRO poll in seconds (grows x1.5 up to 1 s)"
    )
    vpc_network: Text | None = Field(default=None, description="Direct VPC egress network for every service")
    vpc_subnet: Text | None = Field(default=None, description="its subnetwork (needs vpc_network)")
    instance_billing: dict[str, bool] = Field(
        default_factory=dict,
        description="service -> keep CPU between requests (cpuIdle false); default: on for services with "
        "no port, mqtt-ws brokers and services that hold MQTT sessions",
    )
    artifact_registry: Annotated[
        str, _matches(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", "an Artifact Registry repository ID")
    ] | None = Field(default=None, description="the Docker repository (in project and region) `build:` images go to")
    registry_endpoint: Annotated[
        str, _matches(r"^https?://[^/\s]+$", "a registry base URL such as https://europe-west1-docker.pkg.dev")
    ] | None = Field(default=None, description="Artifact Registry's host (default https://REGION-docker.pkg.dev)")
    internal_auth: Literal["none", "iam"] = Field(
        default="none", description="none: internal services skip the IAM invoker check; iam: keep it"
    )

    @model_validator(mode="before")
    @classmethod
    def _environment_and_emulator_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """api_endpoint and project_number fall back to the environment (what `multicloud emulate
        gcp` prints); an http:// endpoint is the emulator: anonymous credentials, REST, its
        project number."""
        if not isinstance(data, Mapping):
            return data
        data = with_environment(data, (info.context or {}).get("environ"))
        endpoint = data.get("api_endpoint")
        if isinstance(endpoint, str) and endpoint.startswith("http://"):
            defaults = {"credentials": "anonymous", "transport": "rest", "project_number": EMULATOR_PROJECT_NUMBER}
            return {**defaults, **data}
        return data

    @model_validator(mode="after")
    def _subnet_needs_network(self) -> GcpSettings:
        if self.vpc_subnet and not self.vpc_network:
            raise ValueError("vpc_subnet needs vpc_network as well")
        return self

    @property
    def emulated(self) -> bool:
        """True when the endpoint is a plain-HTTP emulator rather than Google."""
        return bool(self.api_endpoint and self.api_endpoint.startswith("http://"))

    @property
    def registry(self) -> str:
        """The base URL of the Artifact Registry host images are pushed to."""
        return self.registry_endpoint or f"https://{self.region}-docker.pkg.dev"

    @property
    def parent(self) -> str:
        """The collection services live in: projects/P/locations/R."""
        return f"projects/{self.project}/locations/{self.region}"


def parse_settings(settings: Mapping[str, Any] | GcpSettings) -> GcpSettings:
    """Check every setting and return them typed; raise SettingsError listing every problem."""
    return validate_settings(GcpSettings, settings, provider="gcp-cloudrun")
