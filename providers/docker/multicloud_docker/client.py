"""The one place engine clients are built, the one module that imports the docker SDK
(lazily), and the translation of both clients' errors.

Reads (list, inspect), health probes (exec) and what an apply that starts containers needs
(create a network, a volume, a container; put its secrets; start it) go over the stdlib client
in `engine_http` whenever it can reach the engine (unix socket, plain tcp://); everything else
(builds, pulls, stops, removals, logs, attached execs) goes over the docker SDK, which is
imported on the first such call. So `multicloud --help`, `provider.desired()`, health, a no-op
plan or apply and an apply that only starts containers never load the SDK (about half a second
of imports). Every engine call is
made inside `guard(...)`, which turns client exceptions into `multicloud.errors` types
with `raise ... from exc`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from multicloud import errors
from multicloud.errors import (
    MulticloudError,
    ProviderError,
    RetryableError,
    UserError,
)
from multicloud.translate import from_status, unreachable
from multicloud_docker.engine_http import (
    EngineHTTP,
    EngineHTTPError,
    EngineTimeoutError,
    EngineUnreachableError,
    address,
)

API_VERSION = "1.41"
"""Docker Engine API version spoken: engines 20.10 and newer accept it."""

CALL_TIMEOUT = 120
START_HINT = (
    "start a Docker engine (`sudo dockerd &`, or `sudo scripts/setup-engine.sh` from the multicloud "
    "repository), or point DOCKER_HOST or the target's `host` setting at a running one"
)

T = TypeVar("T")
ClientFactory = Callable[[], Any]
"""Returns an engine client: an `EngineClient`, a `docker.APIClient`, or anything with their methods."""


NotFoundError = errors.NotFoundError
"""The core's NotFoundError (one class for every provider), under the name this module always exported."""


class ConflictError(RetryableError):
    """The engine refused because of a conflicting object or operation (HTTP 409)."""


STDLIB_CALLS = frozenset({
    "containers", "networks", "volumes", "images", "inspect_container", "inspect_image", "ping", "exec_create",
    "exec_inspect", "create_network", "create_volume", "create_container_from_config", "put_archive", "start",
})
"""`docker.APIClient` methods that `EngineHTTP` serves with the same arguments (those multicloud passes)
and results (and `exec_start`, when detached: see EngineClient.exec_start)."""


class Lazy(Generic[T]):
    """A value built by a factory on first use, once, under a lock; a failed build leaves none."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """True once the value exists."""
        return self._value is not None

    def get(self) -> T:
        """The value, built now if this is the first use; the factory's errors propagate."""
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


class EngineClient:
    """The provider's engine client: STDLIB_CALLS go over the stdlib client when there is one;
    any other attribute is the docker SDK client's, built (importing the SDK) on first use."""

    def __init__(self, reader: EngineHTTP | None, writer: ClientFactory) -> None:
        self.reader = reader
        self.sdk: Lazy[Any] = Lazy(writer)

    def __getattr__(self, name: str) -> Any:
        """A read method of the stdlib client, else the SDK client's attribute."""
        if name.startswith("_"):
            raise AttributeError(name)
        if self.reader is not None and name in STDLIB_CALLS:
            return getattr(self.reader, name)
        return getattr(self.sdk.get(), name)

    def exec_start(self, exec_id: str, detach: bool = False, **options: Any) -> Any:
        """Start an exec: detached over the stdlib client when there is one; attached (streams, a
        socket) over the SDK."""
        if self.reader is not None and detach and not options:
            return self.reader.exec_start_detached(exec_id)
        return self.sdk.get().exec_start(exec_id, detach=detach, **options)


def default_factory(host: str | None) -> ClientFactory:
    """Return a factory for the client of the engine at `host`, DOCKER_HOST or the default
    socket. Building the client makes no call; the first call reports a dead engine."""

    def make() -> EngineClient:
        return EngineClient(read_client(host), sdk_factory(host))

    return make


def read_client(host: str | None) -> EngineHTTP | None:
    """The stdlib client for that engine, or None when only the SDK speaks to it (TLS, ssh)."""
    where = address(host, os.environ)
    return EngineHTTP(where, API_VERSION, CALL_TIMEOUT) if where is not None else None


def sdk_factory(host: str | None) -> ClientFactory:
    """Return a factory for a `docker.APIClient` of that engine (imports the SDK when called)."""

    def make() -> Any:
        import docker  # the only import of the SDK in multicloud_docker

        with guard("connecting to the Docker engine"):
            kwargs = docker.utils.kwargs_from_env()
            if host:
                kwargs["base_url"] = host
            return docker.APIClient(version=API_VERSION, timeout=CALL_TIMEOUT, **kwargs)

    return make


def proxy_environment() -> list[str]:
    """The proxy variables the docker CLI (and the SDK's create_container) put first in the environment of
    every container: `proxies.default` of the docker CLI's config.json ($DOCKER_CONFIG, else ~/.docker);
    none when it has none or cannot be read."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
        proxies = config.get("proxies", {}).get("default", {})
        found = [(names, proxies.get(key)) for key, names in PROXY_SETTINGS]
    except (OSError, ValueError, AttributeError):
        return []
    return [f"{name}={value}" for names, value in found if value for name in names]


PROXY_SETTINGS = (
    ("httpProxy", ("http_proxy", "HTTP_PROXY")),
    ("httpsProxy", ("https_proxy", "HTTPS_PROXY")),
    ("ftpProxy", ("ftp_proxy", "FTP_PROXY")),
    ("noProxy", ("no_proxy", "NO_PROXY")),
)
"""config.json's proxy settings and the variables each becomes, in the order the SDK writes them."""


@contextmanager
def guard(doing: str) -> Iterator[None]:
    """Run a block of engine calls, re-raising client errors as multicloud errors that say
    what was being done; other errors propagate unchanged."""
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
    """Map an engine client's exception (stdlib client, docker SDK, requests) to a
    multicloud error; None if it is none of those."""
    if isinstance(exc, EngineUnreachableError):
        return unreachable("the Docker engine", doing, exc, START_HINT)
    if isinstance(exc, EngineTimeoutError):
        return RetryableError(f"the Docker engine did not answer in time while {doing}")
    if isinstance(exc, EngineHTTPError):
        return _api_error(exc, doing)
    if "docker" not in sys.modules:  # an SDK error needs the SDK loaded; don't load it to find out
        return None
    import requests.exceptions as rex
    from docker import errors as derr

    if isinstance(exc, rex.ConnectionError):
        return unreachable("the Docker engine", doing, exc, START_HINT)
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
            return unreachable("the Docker engine", doing, text, START_HINT)
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
    if status == 409:
        return ConflictError(message)
    if status == 400:
        return UserError(message)
    return from_status(status, message) or ProviderError(message)


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
