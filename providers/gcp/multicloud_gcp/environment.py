"""The environment variables the gcp-cloudrun provider reads; `multicloud emulate gcp` prints exactly these."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

API_ENDPOINT_ENV = "MULTICLOUD_GCP_API_ENDPOINT"
PROJECT_NUMBER_ENV = "MULTICLOUD_GCP_PROJECT_NUMBER"
REGISTRY_ENV = "MULTICLOUD_GCP_REGISTRY"
ACCESS_TOKEN_ENV = "MULTICLOUD_GCP_ACCESS_TOKEN"  # noqa: S105 - a variable name, not a secret
"""An OAuth access token for Artifact Registry (the emulator's; else the credentials' own)."""
FROM_ENVIRONMENT = {"api_endpoint": API_ENDPOINT_ENV, "project_number": PROJECT_NUMBER_ENV,
                    "registry_endpoint": REGISTRY_ENV}
"""Target setting -> the variable that supplies it when the spec leaves it out."""


def with_environment(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The target settings with api_endpoint, project_number and registry_endpoint taken from the environment where
    the spec names none (a setting in the spec wins); reads only, changes nothing."""
    env = os.environ if environ is None else environ
    filled = dict(settings)
    for key, variable in FROM_ENVIRONMENT.items():
        if filled.get(key) is None and env.get(variable):
            filled[key] = env[variable]
    return filled
