"""What the provider needs from ARM, as plain JSON dicts; the SDK stays behind this line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from multicloud_azure.settings import AzureSettings

Json = dict[str, Any]


class AciApi(Protocol):
    """Container-group calls in one subscription and resource group; deletes and restarts wait
    for their operation, a PUT returns once accepted.

    Every method raises multicloud errors only (RetryableError for throttling, conflicts and
    5xx; UserError for rejected input or credentials; BackendUnavailableError when ARM
    cannot be reached; ProviderError otherwise). Bodies are ARM's REST JSON (camelCase).
    """

    def get_group(self, name: str) -> Json | None:
        """The group as ARM returns it (no secure values), or None."""
        ...

    def list_groups(self) -> list[Json]:
        """Every group in the resource group (all pages)."""
        ...

    def put_group(self, name: str, body: Mapping[str, Any]) -> Json:
        """Create or update a group; return it as ARM accepted it (still provisioning)."""
        ...

    def delete_group(self, name: str) -> None:
        """Delete a group and wait; absent groups are fine."""
        ...

    def restart_group(self, name: str) -> None:
        """Restart every container of a group in place and wait."""
        ...

    def container_logs(self, group: str, container: str, tail: int | None, timestamps: bool = False) -> str:
        """The log text of one container (each line after its RFC 3339 time when `timestamps`)."""
        ...

    def registry_login(self, name: str) -> tuple[str, str]:
        """(login server, refresh token) of the subscription's container registry `name`: ARM names
        its login server, and ACR's /oauth2/exchange trades the ARM token for a refresh token."""
        ...

    def exec_command(self, group: str, container: str, command: str, rows: int, cols: int) -> Json:
        """Grant an exec session in a container: {'webSocketUri', 'password'}."""
        ...


ClientFactory = Callable[[AzureSettings], AciApi]
