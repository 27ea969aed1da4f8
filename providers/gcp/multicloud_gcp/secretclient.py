"""The Secret Manager client: the one module that imports google-cloud-secret-manager, lazily.

REST or gRPC like the Cloud Run clients (an emulator's gRPC over an insecure channel); every SDK
exception is translated once, by `client.translate`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from multicloud_gcp.api import Body, SecretManagerApi
from multicloud_gcp.client import body_of, credentials_for, emulator_channel, translated
from multicloud_gcp.settings import GcpSettings


class GoogleSecretManagerApi:
    """SecretManagerApi over the unmodified secretmanager_v1.SecretManagerServiceClient."""

    def __init__(self, settings: GcpSettings) -> None:
        from google.api_core import exceptions

        self.settings = settings
        self._exceptions = exceptions
        with self._translated("connect to Secret Manager"):
            self._client = _client(settings)

    def _translated(self, what: str) -> AbstractContextManager[None]:
        """Translate any SDK exception raised in the block (once, `raise ... from`)."""
        return translated(what, self.settings)

    def list_secrets(self, project: str, labels: dict[str, str]) -> list[Body] | None:
        """Every secret of the project carrying these labels (all pages), or None when the identity
        may not read Secret Manager (PermissionDenied, also the answer while its API is disabled);
        reads only."""
        wanted = " AND ".join(f"labels.{k}={v}" for k, v in sorted(labels.items()))
        with self._translated(f"list secrets of projects/{project}"):
            try:
                found = self._client.list_secrets(request={"parent": f"projects/{project}", "filter": wanted})
                return [body_of(s) for s in found]
            except (self._exceptions.PermissionDenied, self._exceptions.Forbidden):
                return None

    def get_secret(self, name: str) -> Body | None:
        """A secret's metadata, or None when it does not exist; reads only."""
        with self._translated(f"read secret {name}"):
            try:
                return body_of(self._client.get_secret(name=name))
            except self._exceptions.NotFound:
                return None

    def create_secret(
        self, project: str, secret_id: str, labels: dict[str, str], annotations: dict[str, str]
    ) -> bool:
        """Create a secret (automatic replication, no version yet); False when it already exists."""
        secret = {"replication": {"automatic": {}}, "labels": labels, "annotations": annotations}
        with self._translated(f"create secret {secret_id}"):
            try:
                self._client.create_secret(
                    request={"parent": f"projects/{project}", "secret_id": secret_id, "secret": secret}
                )
            except (self._exceptions.AlreadyExists, self._exceptions.Conflict):
                return False
        return True

    def update_annotations(self, name: str, annotations: dict[str, str]) -> None:
        """Replace a secret's annotations."""
        with self._translated(f"update secret {name}"):
            secret = {"name": name, "annotations": annotations}
            self._client.update_secret(request={"secret": secret, "update_mask": {"paths": ["annotations"]}})

    def add_version(self, name: str, value: str) -> None:
        """Add a version holding `value` (sent with its CRC32C); the latest from now on."""
        from multicloud_gcp.checksum import crc32c

        data = value.encode()
        with self._translated(f"add a version to {name}"):
            self._client.add_secret_version(
                request={"parent": name, "payload": {"data": data, "data_crc32c": crc32c(data)}}
            )

    def latest_value(self, name: str) -> str | None:
        """The latest enabled version's value, or None when the secret or its versions are missing."""
        with self._translated(f"read the latest version of {name}"):
            try:
                found = self._client.access_secret_version(name=f"{name}/versions/latest")
            except self._exceptions.NotFound:
                return None
        return bytes(found.payload.data).decode("utf-8")

    def delete_secret(self, name: str) -> None:
        """Delete a secret with every version; a missing one is not an error."""
        with self._translated(f"delete secret {name}"):
            try:
                self._client.delete_secret(name=name)
            except self._exceptions.NotFound:
                return


def default_secret_factory(settings: GcpSettings) -> SecretManagerApi:
    """Build the SDK-backed Secret Manager client for a target's settings (nothing is called yet)."""
    return GoogleSecretManagerApi(settings)


def _client(settings: GcpSettings) -> Any:
    """A SecretManagerServiceClient: REST or gRPC, to Google or to an emulator (the Cloud Run
    emulator serves Secret Manager at the same endpoint)."""
    from google.cloud import secretmanager_v1

    if settings.emulated and settings.transport == "grpc":
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        transport = SecretManagerServiceGrpcTransport(channel=emulator_channel(settings))
        return secretmanager_v1.SecretManagerServiceClient(transport=transport)
    from google.api_core.client_options import ClientOptions

    options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.emulated else None
    return secretmanager_v1.SecretManagerServiceClient(
        credentials=credentials_for(settings), transport=settings.transport, client_options=options
    )
