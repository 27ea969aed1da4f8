"""Artifact Registry in the emulator: a real `docker-registry` (Debian's package, started by the first
push or pull) behind Artifact Registry's login (multicloud.testing.registry_front): `docker login`
as `oauth2accesstoken` with the emulator's access token (MULTICLOUD_GCP_ACCESS_TOKEN), registry
tokens from /v2/token, and 401 for a wrong or missing token. Images are PROJECT/REPOSITORY/NAME at
the front's address, which stands for REGION-docker.pkg.dev (every region and repository shares it;
repositories need not be created). The data plane pulls from it as Cloud Run's service agent would."""

from __future__ import annotations

import secrets

from multicloud.testing import registry as local_registry
from multicloud.testing.registry_front import RegistryFront

TOKEN_USER = "oauth2accesstoken"  # noqa: S105 - Artifact Registry's fixed user name for access tokens


class ArtifactRegistry:
    """The emulator's registry host: `endpoint` (http://HOST:PORT), the access token it accepts, and
    the credentials the data plane pulls with."""

    def __init__(self) -> None:
        self.token = "ya29.emulator-" + secrets.token_urlsafe(24)
        self.front = RegistryFront(lambda: local_registry.start(emulator="gcp"), self.authorize)

    @property
    def endpoint(self) -> str:
        """The base URL the gcp-cloudrun provider pushes to (its registry_endpoint)."""
        return self.front.endpoint

    def authorize(self, user: str, password: str) -> bool:
        """Artifact Registry's check: user oauth2accesstoken with the emulator's access token."""
        return user == TOKEN_USER and secrets.compare_digest(password, self.token)

    def pull_auth(self, image: str) -> dict[str, str] | None:
        """The service agent's credentials for an image at this registry, else None."""
        return {"username": TOKEN_USER, "password": self.token} if image.startswith(self.front.address + "/") else None

    def stop(self) -> None:
        """Stop the front and the registry behind it (its storage is deleted)."""
        self.front.stop()


def start() -> tuple[ArtifactRegistry | None, str]:
    """The emulator's Artifact Registry, or None and why not (no docker-registry installed)."""
    reason = local_registry.unavailable_reason("gcp")
    if reason:
        return None, reason
    registry = ArtifactRegistry()
    return registry, (f"Artifact Registry: images go to {registry.front.address}/PROJECT/REPOSITORY/NAME (it stands "
                      "for REGION-docker.pkg.dev); docker login as oauth2accesstoken with MULTICLOUD_GCP_ACCESS_TOKEN")
