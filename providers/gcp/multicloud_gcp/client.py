"""The client factory: the one module that imports google-cloud-run and google-auth, lazily.

Every google.api_core / google.auth exception is translated here, once, with `raise ... from`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from multicloud.errors import ProviderError, RetryableError, UserError
from multicloud.translate import from_status, unreachable
from multicloud_gcp.api import Body, CloudRunApi
from multicloud_gcp.environment import ACCESS_TOKEN_ENV
from multicloud_gcp.settings import GcpSettings

T = TypeVar("T")
RETRYABLE = (
    "ServiceUnavailable",
    "TooManyRequests",
    "ResourceExhausted",
    "Aborted",
    "DeadlineExceeded",
    "InternalServerError",
    "GatewayTimeout",
    "BadGateway",
    "Conflict",
    "AlreadyExists",
    "RetryError",
)
USER = (
    "InvalidArgument",
    "BadRequest",
    "FailedPrecondition",
    "PermissionDenied",
    "Forbidden",
    "Unauthenticated",
    "Unauthorized",
    "OutOfRange",
)


PERMISSION_DENIED = 403
PERMISSIONS_HINT = (
    "the deploying identity needs roles/run.admin (run.services.setIamPolicy: public and internal "
    "services set invokerIamDisabled; roles/run.developer lacks it) and roles/iam.serviceAccountUser "
    "on the runtime service account; see docs/providers/gcp.md, Permissions"
)


def translate(exc: Exception, what: str, settings: GcpSettings) -> Exception:
    """Map an SDK or transport exception to the multicloud error a caller acts on."""
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    endpoint = settings.api_endpoint or "run.googleapis.com"
    cannot_connect = (
        "failed to connect" in message.lower()
        or "connection refused" in message.lower()
        or name in ("ConnectionError", "ConnectTimeout", "DefaultCredentialsError", "TransportError")
    )
    if cannot_connect:
        hint = (
            "start the emulator (`multicloud emulate gcp`) or fix api_endpoint"
            if settings.emulated
            else "check network access and credentials (`gcloud auth application-default login`)"
        )
        return unreachable(f"Cloud Run at {endpoint}", what, message, hint)
    if name in RETRYABLE or any(base.__name__ in RETRYABLE for base in type(exc).__mro__):
        return RetryableError(f"{what}: {name}: {message}")
    status = getattr(exc, "code", None)  # google.api_core errors carry the HTTP status
    if status == PERMISSION_DENIED:
        return UserError(f"{what}: Cloud Run refused it: {message}", hint=PERMISSIONS_HINT)
    by_status = from_status(status, f"{what}: {name}: {message}") if isinstance(status, int) else None
    if by_status is not None:
        return by_status
    if name in USER or any(base.__name__ in USER for base in type(exc).__mro__):
        return UserError(f"{what}: Cloud Run refused it: {message}")
    return ProviderError(f"{what}: {name}: {message}")


@contextmanager
def translated(what: str, settings: GcpSettings) -> Iterator[None]:
    """Translate any SDK exception raised in the block (once, `raise ... from`)."""
    try:
        yield
    except (RetryableError, UserError, ProviderError):
        raise
    except Exception as exc:
        raise translate(exc, what, settings) from exc


def emulator_channel(settings: GcpSettings) -> Any:
    """An insecure gRPC channel to an emulator's api_endpoint."""
    import grpc

    return grpc.insecure_channel(str(settings.api_endpoint).removeprefix("http://").rstrip("/"))


class GoogleCloudRunApi:
    """CloudRunApi over the unmodified run_v2.ServicesClient and RevisionsClient."""

    def __init__(self, settings: GcpSettings) -> None:
        from google.api_core import exceptions

        self.settings = settings
        self._exceptions = exceptions
        with self._translated("connect"):
            self._services, self._revisions = _clients(settings)

    def _translated(self, what: str) -> AbstractContextManager[None]:
        """Translate any SDK exception raised in the block (once, `raise ... from`)."""
        return translated(what, self.settings)

    def _wait(self, operation: Any) -> Body:
        """Wait for an operation with a short first poll; raise its translated error if it failed."""
        from google.api_core.future.polling import POLLING_PREDICATE
        from google.api_core.retry import Retry

        polling = Retry(
            predicate=POLLING_PREDICATE,
            initial=self.settings.poll_interval,
            maximum=1.0,
            multiplier=1.5,
            timeout=self.settings.operation_timeout,
        )
        return body_of(operation.result(timeout=self.settings.operation_timeout, polling=polling))

    def get_service(self, name: str) -> Body | None:
        """Return the service, or None when it does not exist; reads only."""
        with self._translated(f"get {name}"):
            try:
                return body_of(self._services.get_service(name=name))
            except self._exceptions.NotFound:
                return None

    def list_services(self, parent: str) -> list[Body]:
        """Return every service under the parent (all pages); reads only."""
        with self._translated(f"list services in {parent}"):
            return [body_of(s) for s in self._services.list_services(parent=parent)]

    def create_service(self, parent: str, service_id: str, body: Body) -> None:
        """Start creating a service; returns once Cloud Run accepted it (not waiting for the
        operation: health reports the reconciling, within the apply's health timeout)."""
        from google.cloud import run_v2

        with self._translated(f"create {service_id}"):
            request = run_v2.CreateServiceRequest(parent=parent, service_id=service_id, service=_message(body))
            self._services.create_service(request=request)

    def update_service(self, body: Body) -> None:
        """Start replacing a service's configuration; returns once accepted (see create_service)."""
        from google.cloud import run_v2

        with self._translated(f"update {body.get('name')}"):
            request = run_v2.UpdateServiceRequest(service=_message(body))
            self._services.update_service(request=request)

    def delete_service(self, name: str) -> None:
        """Delete a service and wait; a missing service is not an error."""
        with self._translated(f"delete {name}"):
            try:
                self._wait(self._services.delete_service(name=name))
            except self._exceptions.NotFound:
                return

    def list_revisions(self, service: str) -> list[Body]:
        """Return the revisions of a service, newest first; reads only."""
        with self._translated(f"list revisions of {service}"):
            found = [body_of(r) for r in self._revisions.list_revisions(parent=service)]
        return sorted(found, key=lambda r: r.get("create_time", ""), reverse=True)


    def access_token(self) -> str:
        """$MULTICLOUD_GCP_ACCESS_TOKEN when set (the emulator's), else a fresh token of the target's
        credentials; UserError when they are anonymous."""
        token = os.environ.get(ACCESS_TOKEN_ENV)
        if token:
            return token
        if self.settings.credentials == "anonymous":
            raise UserError("pushing `build:` images to Artifact Registry needs an access token, and the target's "
                            "credentials are anonymous",
                            hint=f"use credentials: default (ADC) or a key file, or set {ACCESS_TOKEN_ENV}")
        with self._translated("getting an access token for Artifact Registry"):
            import google.auth.transport.requests

            credentials = credentials_for(self.settings)
            credentials.refresh(google.auth.transport.requests.Request())
            return str(credentials.token)


def default_client_factory(settings: GcpSettings) -> CloudRunApi:
    """Build the SDK-backed client for a target's settings (nothing is called yet)."""
    return GoogleCloudRunApi(settings)


def _clients(settings: GcpSettings) -> tuple[Any, Any]:
    """Build ServicesClient and RevisionsClient: REST or gRPC, to Google or to an emulator."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import run_v2

    if settings.emulated and settings.transport == "grpc":
        from google.cloud.run_v2.services.revisions.transports import RevisionsGrpcTransport
        from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

        channel = emulator_channel(settings)
        return (
            run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel)),
            run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=channel)),
        )
    options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.api_endpoint else None
    credentials = credentials_for(settings)
    make: Callable[..., Any]
    clients = []
    for make in (run_v2.ServicesClient, run_v2.RevisionsClient):
        clients.append(make(credentials=credentials, transport=settings.transport, client_options=options))
    return clients[0], clients[1]


def credentials_for(settings: GcpSettings) -> Any:
    """Anonymous, a service-account key file, or Application Default Credentials."""
    if settings.credentials == "anonymous":
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if settings.credentials == "default":
        import google.auth

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return credentials
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        settings.credentials, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )


def _message(body: Body) -> Any:
    """A run_v2.Service from its JSON form."""
    from google.cloud import run_v2
    from google.protobuf import json_format

    pb = json_format.ParseDict(body, run_v2.Service.pb()(), ignore_unknown_fields=False)
    return run_v2.Service.wrap(pb)


def body_of(message: Any) -> Body:
    """The JSON form (proto field names) of a proto-plus message."""
    from google.protobuf import json_format

    pb = type(message).pb(message)
    result: Body = _renamed(json_format.MessageToDict(pb, preserving_proto_field_name=True))
    return result


def _renamed(value: Any) -> Any:
    """Undo proto-plus's renaming of fields that shadow Python names (`type_` back to `type`)."""
    if isinstance(value, dict):
        return {("type" if k == "type_" else k): _renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    return value


def proto_modules() -> dict[str, Any]:
    """The protobuf classes the emulator's gRPC server (de)serialises, imported on demand."""
    from google.cloud import run_v2, secretmanager_v1
    from google.cloud.logging_v2 import types as logging_v2
    from google.longrunning import operations_pb2
    from google.protobuf import empty_pb2, json_format
    from google.rpc import status_pb2

    return {
        "run_v2": run_v2,
        "secretmanager_v1": secretmanager_v1,
        "logging_v2": logging_v2,
        "operations_pb2": operations_pb2,
        "empty_pb2": empty_pb2,
        "json_format": json_format,
        "status_pb2": status_pb2,
    }
