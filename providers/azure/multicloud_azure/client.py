"""The only module that imports the Azure SDK: builds a ContainerInstanceManagementClient and
translates azure-core errors into multicloud's, once, at this boundary."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from multicloud.errors import (
    MulticloudError,
    ProviderError,
    RetryableError,
    UserError,
)
from multicloud.translate import from_status, unreachable
from multicloud_azure import acr
from multicloud_azure.api import AciApi, Json
from multicloud_azure.settings import TOKEN_ENV, AzureSettings

# 409s that pass: the group is mid-operation (ContainerGroupTransitioning), a flexible server runs
# another operation (ServerBusy: one at a time per server, its databases and firewall rules included)
# or the region has no capacity for the request right now (ServiceUnavailable, "not available in the
# location ... at this moment")
RETRYABLE_CONFLICTS = {
    "Conflict", "AnotherOperationInProgress", "OperationNotAllowed", "ResourceBusy",
    "ContainerGroupTransitioning", "ServerBusy", "ServiceUnavailable",
}


class StaticTokenCredential:
    """A bearer token taken as given (MULTICLOUD_AZURE_TOKEN): for emulators and CI."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return the token, valid for an hour from now."""
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def credential(settings: AzureSettings) -> Any:
    """The static token from MULTICLOUD_AZURE_TOKEN when set, else DefaultAzureCredential (at the
    target's authority_host when set; azure-identity itself reads AZURE_AUTHORITY_HOST)."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    if settings.authority_host:  # a sovereign cloud: its arm_endpoint alone would still log in publicly
        return DefaultAzureCredential(authority=settings.authority_host)
    return DefaultAzureCredential()


def make_client(settings: AzureSettings) -> AciApi:
    """Build the SDK client for the settings' endpoint, CA bundle, polling and retries."""
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    token_source = credential(settings)
    client = ContainerInstanceManagementClient(token_source, settings.subscription_id, **sdk_options(settings))
    return SdkAciApi(client, settings, token_source)


def sdk_options(settings: AzureSettings) -> dict[str, Any]:
    """What every ARM SDK client here is built with: endpoint, token scope, polling, CA bundle, retries."""
    return {
        "base_url": settings.arm_endpoint,
        "credential_scopes": [f"{settings.arm_endpoint}/.default"],
        "polling_interval": settings.poll_interval,
        "connection_verify": settings.ca_bundle or True,
        "retry_total": settings.http_retries,
        "retry_backoff_factor": 0.5,
        "retry_backoff_max": 20,
    }


class SdkAciApi:
    """AciApi over the real ContainerInstanceManagementClient."""

    def __init__(self, client: Any, settings: AzureSettings, token_source: Any = None) -> None:
        self._client = client
        self._settings = settings
        self._rg = settings.resource_group
        self._credential = token_source

    def get_group(self, name: str) -> Json | None:
        """GET one group; None on 404."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"reading container group {name!r}", self._settings):
            try:
                return _json(self._client.container_groups.get(self._rg, name))
            except ResourceNotFoundError:
                return None

    def list_groups(self) -> list[Json]:
        """List the resource group's groups, following nextLink."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"listing container groups in {self._rg!r}", self._settings):
            try:
                return [_json(g) for g in self._client.container_groups.list_by_resource_group(self._rg)]
            except ResourceNotFoundError as exc:
                if _code(exc) == "ResourceGroupNotFound":
                    return []
                raise

    def put_group(self, name: str, body: Mapping[str, Any]) -> Json:
        """PUT a group from REST JSON (through the SDK's model); return the group ARM accepted
        (provisioning, not waited for: health polls it, within the apply's health timeout)."""
        from azure.mgmt.containerinstance.models import ContainerGroup

        with _translated(f"creating or updating container group {name!r}", self._settings):
            model = ContainerGroup.deserialize(dict(body))
            poller = self._client.container_groups.begin_create_or_update(self._rg, name, model, polling=False)
            return _json(poller.result())

    def delete_group(self, name: str) -> None:
        """DELETE a group and wait; a 404 is success."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"deleting container group {name!r}", self._settings):
            try:
                self._client.container_groups.begin_delete(self._rg, name).result()
            except ResourceNotFoundError:
                return

    def restart_group(self, name: str) -> None:
        """POST restart and wait."""
        with _translated(f"restarting container group {name!r}", self._settings):
            self._client.container_groups.begin_restart(self._rg, name).result()

    def container_logs(self, group: str, container: str, tail: int | None, timestamps: bool = False) -> str:
        """GET the container's logs."""
        with _translated(f"reading logs of {group}/{container}", self._settings):
            logs = self._client.containers.list_logs(
                self._rg, group, container, tail=tail, timestamps=timestamps or None
            )
            return str(logs.content or "")

    def registry_login(self, name: str) -> tuple[str, str]:
        """Find the registry among the subscription's (any resource group) and exchange the ARM
        token for an ACR refresh token; UserError when there is no such registry."""
        from azure.core.rest import HttpRequest

        arm = self._settings.arm_endpoint
        url: str | None = (f"{arm}/subscriptions/{self._settings.subscription_id}/providers/"
                           f"Microsoft.ContainerRegistry/registries?api-version={acr.API_VERSION}")
        server = None
        with _translated(f"finding container registry {name!r}", self._settings):
            while url and server is None:
                response = self._client._send_request(HttpRequest("GET", url))
                response.raise_for_status()
                page = response.json()
                server = next((str(r["properties"]["loginServer"]) for r in page.get("value") or []
                               if str(r.get("name", "")).lower() == name.lower()), None)
                url = page.get("nextLink")
            arm_token = str(self._credential.get_token(f"{arm}/.default").token)
        if server is None:
            raise UserError(f"acr: there is no container registry {name!r} in subscription "
                            f"{self._settings.subscription_id}",
                            hint="create it (az acr create --name NAME --sku Basic) or fix the target's acr setting")
        return server, acr.exchange(server, arm_token, self._settings.ca_bundle)

    def exec_command(self, group: str, container: str, command: str, rows: int, cols: int) -> Json:
        """POST the container's exec: a WebSocket URI and its one-time password."""
        from azure.mgmt.containerinstance.models import ContainerExecRequest, ContainerExecRequestTerminalSize

        size = ContainerExecRequestTerminalSize(rows=rows, cols=cols)
        request = ContainerExecRequest(command=command, terminal_size=size)
        with _translated(f"starting {command!r} in {group}/{container}", self._settings):
            return _json(self._client.containers.execute_command(self._rg, group, container, request))


def _json(model: Any) -> Json:
    """The REST JSON (camelCase, read-only fields included) of an SDK model."""
    result: Json = model.serialize(keep_readonly=True)
    return result


def _code(exc: Any) -> str:
    """ARM's error code of an azure-core error, or ''."""
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


@contextmanager
def _translated(what: str, settings: AzureSettings) -> Iterator[None]:
    """Turn azure-core and azure-identity errors into multicloud errors (raise ... from)."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except MulticloudError:
        raise
    except ClientAuthenticationError as exc:
        raise UserError(
            f"Azure rejected the credentials while {what}: {_message(exc)}",
            hint=f"log in (az login) for DefaultAzureCredential, or set {TOKEN_ENV} to a bearer token",
        ) from exc
    except HttpResponseError as exc:
        raise _from_status(what, exc.status_code or 0, _code(exc), _message(exc)) from exc
    except ServiceRequestError as exc:
        raise unreachable(
            f"ARM at {settings.arm_endpoint}", what, exc,
            "check the target's arm_endpoint and ca_bundle (for the emulator: `multicloud emulate azure`)",
        ) from exc
    except ServiceResponseError as exc:
        raise RetryableError(f"ARM connection failed while {what}: {exc}") from exc
    except AzureError as exc:
        raise ProviderError(f"Azure error while {what}: {exc}") from exc


def _from_status(what: str, status: int, code: str, message: str) -> MulticloudError:
    """The multicloud error for an ARM status and code: retry, fix the input, or give up."""
    if status < 400:  # a long-running operation that ended Failed
        return ProviderError(
            f"{what}: the operation failed: {message}",
            hint="`multicloud status` and `multicloud logs` show why; the next apply redeploys the group",
        )
    text = f"{what}: {status} {code}: {message}".rstrip(": ")
    if status == 409 and code in RETRYABLE_CONFLICTS:
        return RetryableError(text)
    if status == 409 and code == "InvalidContainerGroupUpdate":
        return ProviderError(text, hint="the group must be deleted and recreated; run plan to see the replace")
    if status == 404 and code == "ResourceGroupNotFound":
        return UserError(text, hint="create the resource group first (az group create) or fix resource_group")
    if status == 404 and code == "SubscriptionNotFound":
        return UserError(text, hint="fix the target's subscription_id")
    by_status = from_status(status, text)
    if by_status is not None:
        return by_status
    if status in (400, 403, 409):
        return UserError(text)
    return ProviderError(text)


def _message(exc: Any) -> str:
    """The first line of ARM's error message (never a secret: ARM does not echo secure values)."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return str(message).splitlines()[0]

