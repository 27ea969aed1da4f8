"""The `gcp-cloudrun` target settings, checked once; a bad one raises SettingsError naming it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multicloud.errors import SettingsError
from multicloud_gcp.limits import MAX_CONCURRENCY, MAX_TIMEOUT

EMULATOR_PROJECT_NUMBER = "123456789012"
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$")
KNOWN = (
    "project",
    "project_number",
    "region",
    "api_endpoint",
    "credentials",
    "transport",
    "max_instances",
    "concurrency",
    "request_timeout",
    "websocket_timeout",
    "service_account",
    "secret_names",
    "operation_timeout",
    "poll_interval",
    "vpc_network",
    "vpc_subnet",
    "internal_auth",
)


@dataclass(frozen=True)
class GcpSettings:
    """Validated settings of one Cloud Run target."""

    project: str
    region: str
    project_number: str | None = None
    api_endpoint: str | None = None
    credentials: str = "default"
    transport: str = "grpc"
    max_instances: int | None = None
    concurrency: int = 80
    request_timeout: int = 300
    websocket_timeout: int = 3600
    service_account: str | None = None
    secret_names: Mapping[str, str] = field(default_factory=dict)
    operation_timeout: float = 600.0
    poll_interval: float = 0.05
    vpc_network: str | None = None
    vpc_subnet: str | None = None
    internal_auth: str = "none"

    @property
    def emulated(self) -> bool:
        """True when the endpoint is a plain-HTTP emulator rather than Google."""
        return bool(self.api_endpoint and self.api_endpoint.startswith("http://"))

    @property
    def parent(self) -> str:
        """The collection services live in: projects/P/locations/R."""
        return f"projects/{self.project}/locations/{self.region}"


def _int(settings: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    """A whole-number setting within bounds, or None; SettingsError otherwise."""
    value = settings.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(key, f"must be a whole number from {low} to {high} (got {value!r})")
    return value


def _seconds(settings: Mapping[str, Any], key: str, high: float) -> float | None:
    """A duration setting in seconds within bounds, or None; SettingsError otherwise."""
    from multicloud.spec.units import parse_duration

    value = settings.get(key)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SettingsError(key, str(exc)) from exc
    if not 0 < seconds <= high:
        raise SettingsError(key, f"must be more than 0 and at most {high:g} seconds (got {value!r})")
    return seconds


def parse_settings(settings: Mapping[str, Any]) -> GcpSettings:
    """Check every setting and return them typed; raise SettingsError for the first bad one."""
    for key in settings:
        if key not in KNOWN:
            raise SettingsError(key, f"unknown setting for gcp-cloudrun (known: {', '.join(KNOWN)})")
    for key in ("project", "region"):
        if not isinstance(settings.get(key), str) or not settings[key]:
            raise SettingsError(key, f"required: the Google Cloud {key} to deploy to")
    project, region = str(settings["project"]), str(settings["region"])
    if not PROJECT_ID.match(project):
        raise SettingsError("project", f"{project!r} is not a project ID (6-30 lowercase letters, digits, hyphens)")
    if not REGION.match(region):
        raise SettingsError("region", f"{region!r} is not a Cloud Run region such as europe-west1")
    endpoint = settings.get("api_endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint):
        raise SettingsError("api_endpoint", "must be a URL (http://host:port for an emulator) or host[:port]")
    emulated = bool(endpoint and endpoint.startswith("http://"))
    credentials = settings.get("credentials", "anonymous" if emulated else "default")
    if not isinstance(credentials, str) or not credentials:
        raise SettingsError("credentials", "use default (ADC), anonymous, or a service-account key file path")
    transport = settings.get("transport", "rest" if emulated else "grpc")
    if transport not in ("rest", "grpc"):
        raise SettingsError("transport", f"must be rest or grpc (got {transport!r})")
    number = settings.get("project_number", EMULATOR_PROJECT_NUMBER if emulated else None)
    if number is not None and not re.fullmatch(r"[0-9]{6,20}", str(number)):
        raise SettingsError("project_number", f"must be the project's number, digits only (got {number!r})")
    names = settings.get("secret_names") or {}
    if not isinstance(names, Mapping) or not all(isinstance(v, str) and v for v in names.values()):
        raise SettingsError("secret_names", "must map spec secret names to Secret Manager secret IDs or paths")
    account = settings.get("service_account")
    if account is not None and (not isinstance(account, str) or "@" not in account):
        raise SettingsError("service_account", f"must be a service account e-mail (got {account!r})")
    vpc = {key: settings.get(key) for key in ("vpc_network", "vpc_subnet")}
    for key, value in vpc.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise SettingsError(key, "must be a VPC network or subnetwork name (or its full resource path)")
    if vpc["vpc_subnet"] and not vpc["vpc_network"]:
        raise SettingsError("vpc_subnet", "needs vpc_network as well")
    internal_auth = settings.get("internal_auth", "none")
    if internal_auth not in ("none", "iam"):
        raise SettingsError("internal_auth", f"must be none (ingress limits callers) or iam (got {internal_auth!r})")
    return GcpSettings(
        project=project,
        region=region,
        project_number=None if number is None else str(number),
        api_endpoint=endpoint,
        credentials=credentials,
        transport=transport,
        max_instances=_int(settings, "max_instances", 1, 1000),
        concurrency=_int(settings, "concurrency", 1, MAX_CONCURRENCY) or 80,
        request_timeout=int(_seconds(settings, "request_timeout", MAX_TIMEOUT) or 300),
        websocket_timeout=int(_seconds(settings, "websocket_timeout", MAX_TIMEOUT) or MAX_TIMEOUT),
        service_account=account,
        secret_names={str(k): str(v) for k, v in names.items()},
        operation_timeout=_seconds(settings, "operation_timeout", 86400) or 600.0,
        poll_interval=_seconds(settings, "poll_interval", 60) or 0.05,
        vpc_network=vpc["vpc_network"],
        vpc_subnet=vpc["vpc_subnet"],
        internal_auth=str(internal_auth),
    )
