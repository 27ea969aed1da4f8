"""The one module that imports boto3 (lazily), and the translation of its errors.

Nothing else in this package imports boto3 or botocore: `multicloud --help` and
`provider.desired()` never load the SDK. Every SDK call runs inside `guard(...)`, which
turns botocore exceptions into `multicloud.errors` types with `raise ... from exc`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from multicloud import errors
from multicloud.errors import MulticloudError, ProviderError, RetryableError, UserError
from multicloud.translate import from_status, unreachable

ClientFactory = Callable[[str], Any]
"""Returns a boto3 client for a service name ("ecs", "elbv2", ...)."""

RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
    "ServerException", "RequestThrottled", "SlowDown", "ResourceInUse", "ResourceInUseException",
    "ConflictException", "DependencyViolation", "ConcurrentModificationException", "ConcurrentModification",
    "OperationInProgress", "ResourceConflictException", "ServiceNotActiveException",
    "ClusterContainsServicesException", "ClusterContainsTasksException",
})
NOT_FOUND_CODES = frozenset({
    "ResourceNotFoundException", "ServiceNotFoundException", "ClusterNotFoundException", "NoSuchEntity",
    "NamespaceNotFound", "ServiceNotFound", "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound",
    "InvalidGroup.NotFound", "RepositoryNotFoundException", "NotFoundException", "InvalidVpcID.NotFound",
})
CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "AuthFailure", "SignatureDoesNotMatch", "InvalidSignatureException", "MissingAuthenticationToken",
})
CREDENTIALS_HINT = (
    "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the target's "
    "`profile` setting), or point AWS_ENDPOINT_URL at an emulator started with `multicloud emulate aws`"
)


NotFoundError = errors.NotFoundError
"""The core's NotFoundError (one class for every provider), under the name this module always exported."""


class AccessDeniedError(UserError):
    """The credentials in use may not make this call."""


def default_factory(region: str | None, profile: str | None, endpoint_url: str | None) -> ClientFactory:
    """Return a factory of boto3 clients that honours the standard AWS configuration (profile,
    region, credentials chain, AWS_ENDPOINT_URL; AWS_REGION before AWS_DEFAULT_REGION, as the
    AWS CLI reads them, where botocore alone ignores AWS_REGION); building it makes no call."""
    region = region or os.environ.get("AWS_REGION") or None
    lock = threading.Lock()
    cache: dict[str, Any] = {}
    session: list[Any] = []

    def make(service: str) -> Any:
        with lock:
            if service not in cache:
                import boto3  # the only import of the SDK in multicloud_aws
                from botocore.config import Config

                if not session:
                    with guard("reading the AWS configuration"):
                        session.append(boto3.session.Session(profile_name=profile, region_name=region))
                config = Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    inject_host_prefix=False,
                    max_pool_connections=20,
                    connect_timeout=10,
                    read_timeout=60,
                )
                with guard(f"creating the {service} client"):
                    cache[service] = session[0].client(service, endpoint_url=endpoint_url, config=config)
            return cache[service]

    return make


@contextmanager
def guard(doing: str) -> Iterator[None]:
    """Run a block of SDK calls, re-raising SDK errors as multicloud errors that say what was
    being done; errors that are not the SDK's propagate unchanged."""
    try:
        yield
    except MulticloudError:
        raise
    except Exception as exc:
        error = translate(exc, doing)
        if error is None:
            raise
        raise error from exc


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (or of the one a multicloud error was
    translated from), or ""."""
    if isinstance(exc, MulticloudError) and exc.__cause__ is not None:
        exc = exc.__cause__
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def translate(exc: BaseException, doing: str) -> MulticloudError | None:
    """Map a botocore exception to a multicloud error; None if it is not botocore's."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoRegionError):
        return UserError(f"no AWS region while {doing}", hint="set the target's `region` or AWS_REGION")
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return UserError(f"no AWS credentials while {doing}", hint=CREDENTIALS_HINT)
    if isinstance(exc, bex.ProfileNotFound):
        return UserError(f"{exc} while {doing}", hint="name a profile from ~/.aws/config in `profile`")
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionClosedError):
        return unreachable(
            "the AWS endpoint", doing, exc,
            "check the network, or start the emulator (`multicloud emulate aws`) and export what it prints",
        )
    if isinstance(exc, bex.ReadTimeoutError | bex.ConnectTimeoutError):
        return RetryableError(f"AWS did not answer in time while {doing}")
    if isinstance(exc, bex.ClientError):
        return _client_error(exc, doing)
    if isinstance(exc, bex.BotoCoreError):
        return ProviderError(f"AWS SDK error while {doing}: {exc}")
    return None


def _client_error(exc: Any, doing: str) -> MulticloudError:
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    text = f"AWS refused {doing}: {code}: {message}"
    if code in RETRYABLE_CODES:
        return RetryableError(text)
    by_status = from_status(status, text)
    if by_status is not None:
        return by_status
    if code in NOT_FOUND_CODES or code.endswith(("NotFound", "NotFoundException")):
        return NotFoundError(text)
    if code in CREDENTIAL_CODES:
        return UserError(text, hint=CREDENTIALS_HINT)
    if code.startswith("AccessDenied") or code == "UnauthorizedOperation":
        return AccessDeniedError(text, hint="grant the caller this permission, or use another profile")
    return ProviderError(text)
