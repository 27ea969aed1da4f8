"""A small stdlib client of the Docker Engine API for the provider's read path.

`observe`, `read`, `health`, `status` and `endpoints` make only GET calls (list containers,
networks, volumes, images; inspect a container or image). Importing the docker SDK for them
costs about half a second (requests, urllib3, ssl), more than the calls themselves, so
they go over `http.client` on the engine's unix socket (or a plain `tcp://` address). The
methods take the docker SDK's names and arguments and return the same JSON, so callers
cannot tell the clients apart. TLS and ssh:// engines are left to the SDK: `address()`
returns None for them. Errors are this module's own types; `client.translate` maps them.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineHTTPError(Exception):
    """The engine answered with an HTTP error status; `explanation` is its message."""

    def __init__(self, status_code: int, explanation: str) -> None:
        super().__init__(f"{status_code}: {explanation}")
        self.status_code = status_code
        self.explanation = explanation


class EngineUnreachableError(Exception):
    """No connection to the engine (socket missing, refused, dropped mid-answer)."""


class EngineTimeoutError(Exception):
    """The engine did not answer within the call timeout."""


@dataclass(frozen=True)
class Address:
    """Where the engine listens: a unix socket path, or a plain-HTTP host and port."""

    socket_path: str | None = None
    host: str = "localhost"
    port: int = 0


def address(host: str | None, environ: Mapping[str, str]) -> Address | None:
    """The engine address this client can speak to: `host`, else DOCKER_HOST, else the
    default socket; None for TLS (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, https://), ssh://,
    npipe:// or an address with a path, which need the SDK. Pure: touches nothing."""
    if environ.get("DOCKER_CERT_PATH") or environ.get("DOCKER_TLS_VERIFY") not in (None, ""):
        return None  # docker.utils.kwargs_from_env turns TLS on for either
    text = (host or environ.get("DOCKER_HOST") or "").strip()
    if not text or text == "unix://":
        return Address(socket_path=DEFAULT_SOCKET)
    parts = urlsplit(text)
    if parts.scheme in ("unix", "http+unix"):
        path = f"{parts.netloc}/{parts.path.lstrip('/')}" if parts.netloc else parts.path  # unix://p == unix:///p
        return Address(socket_path=path if path.startswith("/") else "/" + path)
    if parts.scheme in ("tcp", "http") and not parts.path.strip("/") and not parts.query:
        try:
            port = parts.port
        except ValueError:
            return None
        if port:
            return Address(host=parts.hostname or "localhost", port=port)
    return None


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP connection over a unix stream socket instead of TCP."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Open the socket; raises OSError (FileNotFoundError, ConnectionRefusedError, ...)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class EngineHTTP:
    """GET-only Engine API client (one short-lived connection per call, so threads may
    share it). Methods mirror `docker.APIClient`'s read methods."""

    def __init__(self, where: Address, version: str, timeout: float) -> None:
        self.where = where
        self.version = version
        self.timeout = timeout

    def send(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """Send one request and return the answer's body. Raises EngineHTTPError (status
        >= 400), EngineTimeoutError or EngineUnreachableError; nothing is left open."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"/v{self.version}{path}" + (f"?{urlencode(query)}" if query else "")
        connection = self._connection()
        try:
            try:
                connection.connect()  # any failure here, a timeout too, means no engine (as for the SDK)
            except OSError as exc:
                raise EngineUnreachableError(f"{self._describe()}: {type(exc).__name__}: {exc}") from exc
            connection.request(method, url, headers={"Accept": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except TimeoutError as exc:  # socket.timeout is TimeoutError
            raise EngineTimeoutError(f"no answer within {self.timeout:.0f}s to {method} {path}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnreachableError(f"{self._describe()}: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
        if response.status >= 400:
            raise EngineHTTPError(response.status, _explanation(body))
        return body

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode the JSON answer (None when empty); raises like send()."""
        body = self.send("GET", path, params)
        return json.loads(body) if body.strip() else None

    def ping(self) -> bool:
        """True when the engine answers /_ping; raises like send()."""
        self.send("GET", "/_ping")
        return True

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Container summaries (`docker ps [-a]`), as the SDK's `containers()` returns them."""
        params = {"limit": -1, "all": int(all), "size": 0, "trunc_cmd": 0, "filters": _filters(filters)}
        return list(self.get("/containers/json", params) or [])

    def networks(
        self, names: list[str] | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Network summaries matching the names and filters."""
        wanted = dict(filters or {})
        if names:
            wanted["name"] = names
        return list(self.get("/networks", {"filters": _filters(wanted) or "{}"}) or [])

    def volumes(self, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """{"Volumes": [...], "Warnings": ...} for volumes matching the filters."""
        return dict(self.get("/volumes", {"filters": _filters(filters)}) or {})

    def images(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Image summaries (tagged images, not intermediate layers) matching the filters."""
        return list(self.get("/images/json", {"only_ids": 0, "all": 0, "filters": _filters(filters)}) or [])

    def inspect_container(self, ident: str) -> dict[str, Any]:
        """A container's full description; EngineHTTPError 404 when it does not exist."""
        return dict(self.get(f"/containers/{quote(ident, safe='')}/json") or {})

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """An image's full description; EngineHTTPError 404 when the engine lacks it."""
        return dict(self.get(f"/images/{quote(ref, safe='/:@')}/json") or {})

    def _connection(self) -> http.client.HTTPConnection:
        if self.where.socket_path is not None:
            return _UnixConnection(self.where.socket_path, self.timeout)
        return http.client.HTTPConnection(self.where.host, self.where.port, timeout=self.timeout)

    def _describe(self) -> str:
        if self.where.socket_path is not None:
            return f"unix://{self.where.socket_path}"
        return f"tcp://{self.where.host}:{self.where.port}"


def _filters(filters: Mapping[str, Any] | None) -> str | None:
    """Filters as the engine wants them: JSON of lists of strings (docker.utils.convert_filters)."""
    if not filters:
        return None
    result = {
        key: [str(item).lower() if isinstance(item, bool) else str(item) for item in _as_list(value)]
        for key, value in filters.items()
    }
    return json.dumps(result)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _explanation(body: bytes) -> str:
    """The engine's error message: the JSON `message`, else the body text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return str(decoded.get("message", text)) if isinstance(decoded, dict) else text
