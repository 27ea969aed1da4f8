"""What the provider needs from Cloud Run, as plain dicts: the seam tests and SDKs plug into."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from multicloud_gcp.settings import GcpSettings

Body = dict[str, Any]
"""A Cloud Run v2 resource in protobuf JSON form with proto field names (snake_case)."""


class CloudRunApi(Protocol):
    """Cloud Run Admin API v2 calls; errors arrive already translated to multicloud.errors."""

    def get_service(self, name: str) -> Body | None:
        """Return the service, or None when it does not exist; reads only."""
        ...

    def list_services(self, parent: str) -> list[Body]:
        """Return every service under projects/P/locations/R (all pages); reads only."""
        ...

    def create_service(self, parent: str, service_id: str, body: Body) -> None:
        """Start creating a service; returns once Cloud Run accepted it (it then reconciles,
        which health reports). A failure may leave it reconciling."""
        ...

    def update_service(self, body: Body) -> None:
        """Start replacing a service's configuration (a new revision); returns once accepted."""
        ...

    def delete_service(self, name: str) -> None:
        """Delete a service and wait; a missing service is not an error."""
        ...

    def list_revisions(self, service: str) -> list[Body]:
        """Return the revisions of a service, newest first; reads only."""
        ...

    def access_token(self) -> str:
        """An OAuth access token of the deploying identity (Artifact Registry's docker password)."""
        ...


ClientFactory = Callable[[GcpSettings], CloudRunApi]


class SecretManagerApi(Protocol):
    """Secret Manager v1 calls for the secrets multicloud writes; errors already translated."""

    def list_secrets(self, project: str, labels: dict[str, str]) -> list[Body] | None:
        """Every secret of the project carrying these labels (all pages), or None when the identity
        may not read Secret Manager; reads only."""
        ...

    def get_secret(self, name: str) -> Body | None:
        """A secret's metadata, or None when it does not exist; reads only."""
        ...

    def create_secret(
        self, project: str, secret_id: str, labels: dict[str, str], annotations: dict[str, str]
    ) -> bool:
        """Create a secret (automatic replication, no version yet); False when it already exists."""
        ...

    def update_annotations(self, name: str, annotations: dict[str, str]) -> None:
        """Replace a secret's annotations."""
        ...

    def add_version(self, name: str, value: str) -> None:
        """Add a version holding `value` (sent with its CRC32C); the latest from now on."""
        ...

    def latest_value(self, name: str) -> str | None:
        """The latest enabled version's value, or None when the secret or its versions are missing."""
        ...

    def delete_secret(self, name: str) -> None:
        """Delete a secret with every version; a missing one is not an error."""
        ...


SecretFactory = Callable[[GcpSettings], SecretManagerApi]
