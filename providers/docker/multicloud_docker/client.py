"""The one module that imports the docker SDK (lazily), and the translation of its errors.

Nothing else in this package imports `docker` or `requests`: `multicloud --help` and
`provider.desired()` never load the SDK. Every SDK call is made inside `guard(...)`, which
turns SDK exceptions into `multicloud.errors` types with `raise ... from exc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from multicloud.errors import (
    BackendUnavailableError,
    MulticloudError,
    ProviderError,
    RetryableError,
    UserError,
)

API_VERSION = "1.41"
"""Docker Engine API version spoken: engines 20.10 and newer accept it."""

CALL_TIMEOUT = 120
START_HINT = (
    "start a Docker engine (`sudo dockerd &`, or `sudo scripts/setup-engine.sh` from the multicloud "
    "repository), or point DOCKER_HOST or the target's `host` setting at a running one"
)

ClientFactory = Callable[[], Any]
"""Returns a `docker.APIClient` (or an object with the same methods)."""


class NotFoundError(ProviderError):
    """The engine has no object of that name or id (HTTP 404)."""


class ConflictError(RetryableError):
    """The engine refused because of a conflicting object or operation (HTTP 409)."""


def default_factory(host: str | None) -> ClientFactory:
    """Return a factory for a low-level client of the engine at `host`, DOCKER_HOST or the
    default socket. Building the client makes no call; the first call reports a dead engine."""

    def make() -> Any:
        import docker  # the only import of the SDK in multicloud_docker

        with guard("connecting to the Docker engine"):
            kwargs = docker.utils.kwargs_from_env()
            if host:
                kwargs["base_url"] = host
            return docker.APIClient(version=API_VERSION, timeout=CALL_TIMEOUT, **kwargs)

    return make


@contextmanager
def guard(doing: str) -> Iterator[None]:
    """Run a block of SDK calls, re-raising SDK errors as multicloud errors that say what
    was being done; errors that are not the SDK's propagate unchanged."""
    try:
        yield
    except MulticloudError:
        raise
    except Exception as exc:
        error = translate(exc, doing)
        if error is None:
            raise
        raise error from exc


def translate(exc: BaseException, doing: str) -> MulticloudError | None:
    """Map a docker SDK or requests exception to a multicloud error; None if it is neither."""
    import requests.exceptions as rex
    from docker import errors as derr

    if isinstance(exc, rex.ConnectionError):
        return BackendUnavailableError(f"cannot reach the Docker engine while {doing}: {_short(exc)}", hint=START_HINT)
    if isinstance(exc, rex.Timeout):
        return RetryableError(f"the Docker engine did not answer in time while {doing}")
    if isinstance(exc, derr.BuildError):
        tail = "\n".join(_build_log_tail(exc.build_log))
        return ProviderError(f"image build failed while {doing}: {exc.msg}\n{tail}".rstrip())
    if isinstance(exc, derr.APIError):
        return _api_error(exc, doing)
    if isinstance(exc, derr.DockerException):
        text = str(exc)
        if "Connection" in text or "FileNotFoundError" in text or "No such file" in text:
            return BackendUnavailableError(f"cannot reach the Docker engine while {doing}: {text}", hint=START_HINT)
        return ProviderError(f"Docker SDK error while {doing}: {text}")
    return None


def _api_error(exc: Any, doing: str) -> MulticloudError:
    status = int(exc.status_code or 0)
    explanation = str(exc.explanation or exc)
    message = f"Docker engine refused {doing}: {explanation}"
    lowered = explanation.lower()
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return UserError(
            message,
            hint="another process or container holds that host port; free it or remap it with the target's "
            "`publish` or `port_offset` setting",
        )
    if any(cause in lowered for cause in _CONTAINER_CONFIG_ERRORS):
        return UserError(
            message, hint="the container cannot start as configured: check the service's command, entrypoint and user"
        )
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status == 400:
        return UserError(message)
    if status >= 500:
        return RetryableError(message)
    return ProviderError(message)


_CONTAINER_CONFIG_ERRORS = (
    "executable file not found",
    "unable to find user",
    "no matching entries in passwd file",
    "exec format error",
)


def _build_log_tail(log: Any, lines: int = 15) -> list[str]:
    found: list[str] = []
    for chunk in log or []:
        if isinstance(chunk, dict):
            text = chunk.get("stream") or chunk.get("error") or ""
            found.extend(line for line in str(text).splitlines() if line.strip())
    return found[-lines:]


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
