"""`build:` services on Cloud Run: pushed to the Artifact Registry Docker repository the target's
`artifact_registry` setting names (`REGION-docker.pkg.dev/PROJECT/REPOSITORY/APP/SERVICE`, logged
in as `oauth2accesstoken` with an access token) and deployed by digest; Cloud Run's service agent
pulls from there itself, so the service carries no registry credential. Imports no Google SDK."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from multicloud.errors import UserError
from multicloud.image_push import Login, build_and_push
from multicloud_gcp.api import Body, CloudRunApi
from multicloud_gcp.environment import REGISTRY_ENV
from multicloud_gcp.settings import GcpSettings

TOKEN_USER = "oauth2accesstoken"  # noqa: S105 - Artifact Registry's fixed user name for access tokens
BUILD_DIR = "_multicloud_build_dir"
"""A key of the desired body (never sent): the spec's directory, which build contexts are relative to."""


def repository(settings: GcpSettings, app: str, service: str) -> str:
    """HOST/PROJECT/REPOSITORY/APP/SERVICE: where a service's builds are pushed."""
    host = settings.registry.split("://", 1)[-1]
    return f"{host}/{settings.project}/{settings.artifact_registry}/{app}/{service}"


def sendable(api: CloudRunApi, settings: GcpSettings, app: str, service: str, body: Mapping[str, Any], *,
             say: Callable[[str], None]) -> Body:
    """The body to send: without BUILD_DIR, and with a `build:` image pushed and named by digest (the
    body as it is when nothing builds). A failure leaves pushed layers at most; nothing is sent."""
    result: Body = {k: v for k, v in body.items() if k != BUILD_DIR}
    container = result["template"]["containers"][0]
    image = container.get("image")
    if not isinstance(image, Mapping):
        return result
    if settings.artifact_registry is None:
        raise UserError("artifact_registry: `build:` services on gcp-cloudrun need the target's artifact_registry")
    if settings.emulated and settings.registry_endpoint is None:
        raise UserError("the Cloud Run emulator serves no Artifact Registry (it prints "
                        f"{REGISTRY_ENV} when Debian's docker-registry is installed)",
                        hint="apt-get install -y docker-registry, restart the emulator and export what it prints")
    login = Login(settings.registry, TOKEN_USER, api.access_token())
    pushed = build_and_push(service, image, str(body.get(BUILD_DIR) or "."),
                            repository(settings, app, service), login, say=say)
    result["template"] = copy.deepcopy(result["template"])
    result["template"]["containers"][0]["image"] = pushed
    return result
