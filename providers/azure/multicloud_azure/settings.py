"""The azure-aci target settings, checked once; errors name the setting (SettingsError)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multicloud.errors import SettingsError
from multicloud.resources import Sensitive

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
ENDPOINT_ENV = "MULTICLOUD_AZURE_ARM_ENDPOINT"
CA_BUNDLE_ENV = "MULTICLOUD_AZURE_CA_BUNDLE"
TOKEN_ENV = "MULTICLOUD_AZURE_TOKEN"  # noqa: S105 - a variable name, not a secret
RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,89}[-\w_()]$")
GROUP_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{3,61}[a-z0-9]$")
RESTART_POLICIES = {
    "always": "Always", "on-failure": "OnFailure", "onfailure": "OnFailure", "never": "Never",
}
KNOWN = (
    "subscription_id", "resource_group", "location", "group", "dns_label", "layout", "restart_policy",
    "arm_endpoint", "ca_bundle", "registry", "poll_interval", "http_retries",
)


@dataclass(frozen=True)
class Registry:
    """Credentials ACI uses to pull private images from one registry (e.g. an ACR)."""

    server: str
    username: str
    password_env: str

    def password(self, environ: Mapping[str, str] | None = None) -> Sensitive:
        """The password, read from its environment variable when the group is rendered;
        raise SettingsError when the variable is unset (nothing is touched before that)."""
        value = (os.environ if environ is None else environ).get(self.password_env)
        if not value:
            raise SettingsError("registry.password_env", f"environment variable {self.password_env} is not set")
        return Sensitive.of(value)


@dataclass(frozen=True)
class AzureSettings:
    """Where and how an app runs on ACI."""

    subscription_id: str
    resource_group: str
    location: str
    group: str | None = None
    dns_label: str | bool = True
    layout: str = "group"
    restart_policy: str = "Always"
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    ca_bundle: str | None = None
    registry: Registry | None = None
    poll_interval: float = 2.0
    http_retries: int = 3

    def group_name(self, app: str) -> str:
        """The container group's name: the `group` setting, else the app's name."""
        return self.group or app


def parse_settings(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AzureSettings:
    """Check target settings; raise SettingsError naming the first bad one. Reads the
    environment for the emulator/sovereign-cloud endpoint and CA bundle."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(raw) - set(KNOWN))
    if unknown:
        raise SettingsError(unknown[0], f"unknown setting for azure-aci (known: {', '.join(KNOWN)})")
    for required in ("subscription_id", "resource_group", "location"):
        if not isinstance(raw.get(required), str) or not raw[required].strip():
            raise SettingsError(required, "is required (a non-empty string)")
    if not RESOURCE_GROUP.match(raw["resource_group"]):
        raise SettingsError("resource_group", "is not a valid resource group name (1-90 letters, digits, ._-())")
    group = raw.get("group")
    if group is not None and (not isinstance(group, str) or not GROUP_NAME.match(group) or "--" in group):
        raise SettingsError("group", "must be 1-63 lowercase letters, digits and single dashes, not starting or "
                            "ending with a dash")
    return AzureSettings(
        subscription_id=raw["subscription_id"].strip(),
        resource_group=raw["resource_group"],
        location=raw["location"].replace(" ", "").lower(),
        group=group,
        dns_label=_dns_label(raw.get("dns_label", True)),
        layout=_choice(raw, "layout", "group", ("group",)),
        restart_policy=_restart_policy(raw.get("restart_policy", "always")),
        arm_endpoint=_endpoint(raw.get("arm_endpoint") or env.get(ENDPOINT_ENV) or DEFAULT_ARM_ENDPOINT),
        ca_bundle=_ca_bundle(raw.get("ca_bundle") or env.get(CA_BUNDLE_ENV)),
        registry=_registry(raw.get("registry")),
        poll_interval=_number(raw, "poll_interval", 2.0, 0.0, 60.0),
        http_retries=int(_number(raw, "http_retries", 3, 0, 20)),
    )


def _dns_label(value: Any) -> str | bool:
    """Check the dns_label setting: true (derived), false (none) or a valid label."""
    if value is True or value is False:
        return value
    if not isinstance(value, str) or not DNS_LABEL.match(value) or "--" in value:
        raise SettingsError(
            "dns_label",
            "must be 5-63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter "
            "or digit (or false for no DNS name)",
        )
    return value


def _choice(raw: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    """A setting that must be one of a few values."""
    value = raw.get(key, default)
    if value not in allowed:
        raise SettingsError(key, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _restart_policy(value: Any) -> str:
    """ACI's restart policy for always / on-failure / never."""
    policy = RESTART_POLICIES.get(str(value).lower()) if isinstance(value, str) else None
    if policy is None:
        raise SettingsError("restart_policy", "must be always, on-failure or never")
    return policy


def _endpoint(value: Any) -> str:
    """An https base URL without a trailing slash."""
    if not isinstance(value, str) or not re.match(r"^https://[^/\s]+/?$", value):
        raise SettingsError("arm_endpoint", "must be an https:// base URL such as https://management.azure.com")
    return value.rstrip("/")


def _ca_bundle(value: Any) -> str | None:
    """A PEM file path that exists, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not os.path.isfile(value):
        raise SettingsError("ca_bundle", f"must be the path of a PEM file that exists (got {value!r})")
    return value


def _registry(value: Any) -> Registry | None:
    """The registry setting: server, username and the variable holding the password."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"server", "username", "password_env"}:
        raise SettingsError("registry", "must be a mapping of server, username and password_env")
    for key in ("server", "username", "password_env"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise SettingsError(f"registry.{key}", "is required (a non-empty string)")
    return Registry(value["server"], value["username"], value["password_env"])


def _number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """A number setting within bounds."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(key, f"must be a number from {low:g} to {high:g}")
    return float(value)
