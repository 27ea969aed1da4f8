"""A small stdlib client of the Docker Engine API for the provider's read path.

`observe`, `read`, `health`, `status` and `endpoints` make GET calls (list containers,
networks, volumes, images; inspect a container or image), health runs its probe with the
engine's exec (create, start detached, inspect), and an apply creates networks, volumes and
containers and starts them. Importing the docker SDK for them costs about half a second
(requests, urllib3, ssl), more than the calls themselves, and even `http.client`
costs a no-op apply a sixth of its CPU (it imports `email` and `ssl`), so they go as plain
HTTP/1.1 over a socket to the engine's unix socket (or a plain `tcp://` address), one
connection per call. The methods take the docker SDK's names and arguments and return the same
JSON, so callers cannot tell the clients apart. TLS and ssh:// engines are left to the SDK:
`address()` returns None for them. Errors are this module's own types; `client.translate` maps them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
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


class EngineHTTP:
    """Engine API client for reads and health probes (one short-lived connection per call, so
    threads may share it). Methods mirror `docker.APIClient`'s methods of the same names."""

    def __init__(self, where: Address, version: str, timeout: float) -> None:
        self.where = where
        self.version = version
        self.timeout = timeout

    def send(self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None) -> bytes:
        """Send one request (`body`, if any: bytes as a tar archive, else as JSON) and return the answer's body. Raises
        EngineHTTPError (status >= 400), EngineTimeoutError or EngineUnreachableError; nothing is left open."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"/v{self.version}{path}" + (f"?{urlencode(query)}" if query else "")
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        head = f"{method} {url} HTTP/1.1\r\nHost: {self._host()}\r\nAccept: application/json\r\nConnection: close\r\n"
        if body is not None or method != "GET":
            kind = "application/x-tar" if isinstance(body, bytes) else "application/json"
            head += f"Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
        try:
            sock = self._connect()
        except OSError as exc:  # any failure here, a timeout too, means no engine (as for the SDK)
            raise EngineUnreachableError(f"{self._describe()}: {type(exc).__name__}: {exc}") from exc
        try:
            sock.sendall(head.encode() + b"\r\n" + data)
            with sock.makefile("rb") as answer:
                status, reply = _response(answer)
        except TimeoutError as exc:  # socket.timeout is TimeoutError
            raise EngineTimeoutError(f"no answer within {self.timeout:.0f}s to {method} {path}") from exc
        except (OSError, ValueError) as exc:
            raise EngineUnreachableError(f"{self._describe()}: {type(exc).__name__}: {exc}") from exc
        finally:
            sock.close()
        if status >= 400:
            raise EngineHTTPError(status, _explanation(reply))
        return reply

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

    def exec_create(
        self, container: str, cmd: list[str], *, stdout: bool = True, stderr: bool = True, stdin: bool = False,
        tty: bool = False, privileged: bool = False, user: str = "",
        environment: Mapping[str, str] | list[str] | None = None, workdir: str | None = None,
    ) -> dict[str, Any]:
        """Make an exec of `cmd` in a running container; {"Id": ...} (EngineHTTPError 409 when it is not running)."""
        if isinstance(environment, Mapping):
            environment = [f"{k}={v}" for k, v in environment.items()]
        body = {"AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty, "Cmd": list(cmd),
                "Privileged": privileged, "User": user, "Env": environment}
        if workdir is not None:
            body["WorkingDir"] = workdir
        return dict(json.loads(self.send("POST", f"/containers/{quote(container, safe='')}/exec", body=body)))

    def exec_start_detached(self, exec_id: str) -> None:
        """Start an exec made by exec_create without attaching to it (it runs on its own)."""
        self.send("POST", f"/exec/{quote(exec_id, safe='')}/start", body={"Detach": True, "Tty": False})

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        """An exec's state: "Running", and "ExitCode" once it ended."""
        return dict(self.get(f"/exec/{quote(exec_id, safe='')}/json") or {})

    def create_network(
        self, name: str, driver: str | None = None, labels: Mapping[str, str] | None = None,
        check_duplicate: bool | None = None,
    ) -> dict[str, Any]:
        """Create a network; {"Id": ..., "Warning": ...} (EngineHTTPError 409 when the name is taken)."""
        body: dict[str, Any] = {
            "Name": name, "Driver": driver, "Options": None, "IPAM": None, "CheckDuplicate": check_duplicate,
        }
        if labels is not None:
            body["Labels"] = dict(labels)
        return dict(json.loads(self.send("POST", "/networks/create", body=body)))

    def create_volume(
        self, name: str | None = None, driver: str | None = None, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Create a volume, or find the one of that name (the engine's answer either way)."""
        body: dict[str, Any] = {"Name": name, "Driver": driver, "DriverOpts": None}
        if labels is not None:
            body["Labels"] = dict(labels)
        return dict(json.loads(self.send("POST", "/volumes/create", body=body)))

    def create_container_from_config(self, config: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        """Create a container from the Engine API's create body; {"Id": ..., "Warnings": [...]}."""
        return dict(json.loads(self.send("POST", "/containers/create", {"name": name}, body=dict(config))))

    def put_archive(self, container: str, path: str, data: bytes) -> bool:
        """Unpack a tar archive into a folder of a (created) container; True when the engine took it."""
        self.send("PUT", f"/containers/{quote(container, safe='')}/archive", {"path": path}, body=data)
        return True

    def start(self, container: str) -> None:
        """Start a created container."""
        self.send("POST", f"/containers/{quote(container, safe='')}/start")

    def _connect(self) -> socket.socket:
        """A connected socket to the engine (OSError: FileNotFoundError, ConnectionRefusedError, ...)."""
        if self.where.socket_path is None:
            return socket.create_connection((self.where.host, self.where.port), timeout=self.timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.where.socket_path)
        except BaseException:
            sock.close()
            raise
        return sock

    def _host(self) -> str:
        return "localhost" if self.where.socket_path is not None else f"{self.where.host}:{self.where.port}"

    def _describe(self) -> str:
        if self.where.socket_path is not None:
            return f"unix://{self.where.socket_path}"
        return f"tcp://{self.where.host}:{self.where.port}"


MAX_LINE = 65536
"""The longest status, header or chunk-size line accepted from the engine."""


def _response(answer: BinaryIO) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response: its status and its body (by Content-Length, chunked, or to the
    end of the connection). ValueError when it is not HTTP."""
    status_line = _line(answer)
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    while line := _line(answer):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(rest[:3])
    if status in (204, 304):
        return status, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, _chunked(answer)
    if "content-length" in headers:
        size = int(headers["content-length"])
        body = answer.read(size)
        if len(body) != size:
            raise ValueError(f"the answer ended after {len(body)} of {size} bytes")
        return status, body
    return status, answer.read()


def _chunked(answer: BinaryIO) -> bytes:
    """The body of a chunked answer, its chunks joined (trailers skipped)."""
    parts = []
    while size := int(_line(answer).partition(";")[0].strip(), 16):  # ValueError unless hex digits
        part = answer.read(size)
        if len(part) != size or _line(answer):
            raise ValueError("a chunk of the answer ended early")
        parts.append(part)
    while _line(answer):
        pass
    return b"".join(parts)


def _line(answer: BinaryIO) -> str:
    """One CRLF-terminated line without its end; ValueError at the end of the connection or past MAX_LINE."""
    raw = answer.readline(MAX_LINE + 1)
    if not raw.endswith(b"\n"):
        raise ValueError("the answer ended early" if len(raw) <= MAX_LINE else "an answer line is too long")
    return raw.rstrip(b"\r\n").decode("latin-1")


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
