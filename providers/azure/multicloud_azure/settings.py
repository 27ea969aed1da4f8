"""The azure-aci target settings: a pydantic model the core checks before anything runs.

Imports no Azure SDK: the core reads this model (entry point `multicloud.settings`) for
`multicloud validate` and `multicloud schema`. The ARM endpoint and CA bundle fall back to
environment variables (the emulator's, a sovereign cloud's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema, model_validator

from multicloud.errors import SettingsError
from multicloud.resources import Sensitive
from multicloud.settings import ProviderSettings, validate_settings

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
ENDPOINT_ENV = "MULTICLOUD_AZURE_ARM_ENDPOINT"
CA_BUNDLE_ENV = "MULTICLOUD_AZURE_CA_BUNDLE"
TOKEN_ENV = "MULTICLOUD_AZURE_TOKEN"  # noqa: S105 - a variable name, not a secret
RESOURCE_GROUP = r"^[-\w._()]{0,89}[-\w_()]$"
GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ACR_NAME = r"^[a-zA-Z0-9]{5,50}$"
GROUP_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_LABEL = r"^[a-z][a-z0-9-]{3,61}[a-z0-9]$"
RESTART_POLICIES = {
    "always": "Always", "on-failure": "OnFailure", "onfailure": "OnFailure", "never": "Never",
}


def _rule(pattern: str, message: str, *, no_double_dash: bool = False) -> Any:
    """A check that a string matches `pattern` (and has no `--`), failing with `message`."""

    def check(value: str) -> str:
        if not re.match(pattern, value) or (no_double_dash and "--" in value):
            raise ValueError(message)
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})


def _restart_policy(value: Any) -> Any:
    """ACI's restart policy for always / on-failure / never."""
    policy = RESTART_POLICIES.get(value.lower()) if isinstance(value, str) else None
    if policy is None:
        raise ValueError("must be always, on-failure or never")
    return policy


def _endpoint(value: str) -> str:
    """An https base URL without a trailing slash."""
    if not re.match(r"^https://[^/\s]+/?$", value):
        raise ValueError("must be an https:// base URL such as https://management.azure.com")
    return value.rstrip("/")


def _ca_bundle(value: str) -> str:
    """A PEM file path that exists."""
    if not os.path.isfile(value):
        raise ValueError(f"must be the path of a PEM file that exists (got {value!r})")
    return value


Required = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v), Field(min_length=1)]
Seconds = Annotated[float, Field(ge=0, le=60)]


class Registry(ProviderSettings):
    """Credentials ACI uses to pull private images from one registry (e.g. an ACR)."""

    server: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    password_env: Annotated[str, Field(min_length=1, description="the environment variable holding the password")]

    def password(self, environ: Mapping[str, str] | None = None, *, app: str) -> Sensitive:
        """The password, read from its environment variable when the group is rendered;
        raise SettingsError when the variable is unset (nothing is touched before that)."""
        value = (os.environ if environ is None else environ).get(self.password_env)
        if not value:
            raise SettingsError("registry.password_env", f"environment variable {self.password_env} is not set")
        return Sensitive.of(value, app=app)


class AzureSettings(ProviderSettings):
    """Settings of an `azure-aci` target: where and how an app runs on ACI."""

    subscription_id: Annotated[
        str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
        *_rule(GUID, "must be the subscription's ID, a GUID such as 00000000-0000-0000-0000-000000000000"),
    ] = Field(description="the Azure subscription ID (a GUID)")
    resource_group: Annotated[
        str, *_rule(RESOURCE_GROUP, "is not a valid resource group name (1-90 letters, digits, ._-())")
    ] = Field(description="an existing resource group")
    location: Annotated[Required, AfterValidator(lambda v: v.replace(" ", "").lower())] = Field(
        description="the Azure region, e.g. westeurope"
    )
    group: Annotated[
        str, *_rule(GROUP_NAME, "must be 1-63 lowercase letters, digits and single dashes, not starting or "
                    "ending with a dash", no_double_dash=True)
    ] | None = Field(default=None, description="container group name (default: the app name)")
    dns_label: Annotated[
        str, *_rule(DNS_LABEL, "must be 5-63 lowercase letters, digits and hyphens, starting with a letter and "
                    "ending with a letter or digit (or false for no DNS name)", no_double_dash=True)
    ] | bool = Field(default=True, description="default: <group>-<6 hex of subscription/rg/group>; false = none")
    layout: Literal["group"] = Field(default="group", description="one container group per app")
    restart_policy: Annotated[
        str,
        BeforeValidator(_restart_policy),
        WithJsonSchema({"enum": ["always", "on-failure", "never", "Always", "OnFailure", "Never"]}),
    ] = Field(default="Always", description="always | on-failure | never")
    arm_endpoint: Annotated[str, AfterValidator(_endpoint)] = Field(
        default=DEFAULT_ARM_ENDPOINT, description=f"ARM base URL (default: ${ENDPOINT_ENV} or Azure's)"
    )
    ca_bundle: Annotated[str, AfterValidator(_ca_bundle)] | None = Field(
        default=None, description=f"a private CA for arm_endpoint (default: ${CA_BUNDLE_ENV})"
    )
    authority_host: Annotated[str, AfterValidator(_endpoint)] | None = Field(
        default=None, description="Entra ID authority for sovereign clouds, e.g. https://login.microsoftonline.us "
        "(default: $AZURE_AUTHORITY_HOST or the public cloud's)"
    )
    registry: Registry | None = Field(default=None, description="credentials for a private registry")
    acr: Annotated[str, *_rule(ACR_NAME, "must be a registry's name: 5-50 letters and digits")] | None = (
        Field(default=None, description="the Azure Container Registry (its name) `build:` images are pushed to"))
    poll_interval: Seconds = Field(default=2.0, description="seconds between LRO polls without Retry-After")
    http_retries: Annotated[int, Field(ge=0, le=20, strict=True)] = Field(
        default=3, description="SDK-level retries of 408/429/5xx (honouring Retry-After)"
    )

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """arm_endpoint and ca_bundle fall back to their environment variables."""
        if not isinstance(data, Mapping):
            return data
        env = (info.context or {}).get("environ", os.environ)
        filled = dict(data)
        for key, variable in (("arm_endpoint", ENDPOINT_ENV), ("ca_bundle", CA_BUNDLE_ENV)):
            if not filled.get(key) and env.get(variable):
                filled[key] = env[variable]
        return filled

    def group_name(self, app: str) -> str:
        """The container group's name: the `group` setting, else the app's name."""
        return self.group or app


def parse_settings(raw: Mapping[str, Any] | AzureSettings, environ: Mapping[str, str] | None = None) -> AzureSettings:
    """Check target settings and return them typed; raise SettingsError listing every problem.
    Reads the environment (or `environ`) for the emulator/sovereign-cloud endpoint and CA bundle."""
    context = None if environ is None else {"environ": environ}
    return validate_settings(AzureSettings, raw, provider="azure-aci", context=context)
