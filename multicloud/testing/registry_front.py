"""A cloud registry's login in front of a real `docker-registry`, for the emulators (ACR, Artifact
Registry): every /v2/ call needs a bearer token that this front issued at its token endpoint, in
exchange for credentials the emulator accepts (the distribution token flow docker itself speaks:
401 + `WWW-Authenticate: Bearer realm=...,service=...`, then GET realm with basic auth). A wrong or
missing token is refused with 401; accepted calls are proxied to the registry unchanged.
Emulator-specific routes (ACR's /oauth2/exchange) are served beside them."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from multicloud.testing.registry import Registry
from multicloud.testing.tls import WrappedServer

TOKEN_SECONDS = 3600
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "authorization",
              "proxy-authorization", "proxy-connection"}
Authorize = Callable[[str, str], bool]


@dataclass(frozen=True)
class Call:
    """A request to an extra route: method, path, query, headers and body."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


Reply = tuple[int, Any]
Route = Callable[[Call], Reply]


class RegistryFront:
    """Serves the login flow and proxies /v2/ to the registry `registry()` starts (on the first call that
    needs it); `authorize(user, password)` says which credentials the token endpoint accepts. Serves
    from construction until `stop`, which stops the registry too."""

    def __init__(self, registry: Callable[[], Registry], authorize: Authorize, *,
                 token_path: str = "/v2/token",  # noqa: S107 - a path
                 routes: Mapping[tuple[str, str], Route] | None = None, wrap: Callable[[Any], Any] | None = None,
                 host: str = "127.0.0.1") -> None:
        self._start_registry = registry
        self._registry: Registry | None = None
        self.authorize = authorize
        self.token_path = token_path
        self.routes = dict(routes or {})
        self.scheme = "https" if wrap is not None else "http"
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self.server = _Server((host, 0), self, wrap)
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="registry-front", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The front's base URL, e.g. https://127.0.0.1:40123."""
        return f"{self.scheme}://{self.address}"

    def registry(self) -> Registry:
        """The registry behind, started by the first call that reaches it."""
        with self._lock:
            if self._registry is None:
                self._registry = self._start_registry()
            return self._registry

    def issue(self) -> str:
        """A new registry token (what the token endpoint hands out), valid for TOKEN_SECONDS."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: end for t, end in self._tokens.items() if end > now}
            self._tokens[token] = now + TOKEN_SECONDS
        return token

    def valid(self, token: str) -> bool:
        """Whether a bearer token is one this front issued and has not expired."""
        with self._lock:
            return self._tokens.get(token, 0.0) > time.monotonic()

    def stop(self) -> None:
        """Stop serving and stop the registry behind (deleting its storage)."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        with self._lock:
            if self._registry is not None:
                self._registry.stop()


class _Server(WrappedServer):
    def __init__(self, address: tuple[str, int], front: RegistryFront, wrap: Callable[[Any], Any] | None) -> None:
        self.front = front
        super().__init__(address, _Handler, wrap)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _any(self) -> None:
        """Serve a request of any method."""
        self._serve(self.command)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _serve(self, method: str) -> None:
        """Route one request: an extra route, the token endpoint, or an authorized /v2/ call."""
        front = self.server.front
        url = urlsplit(self.path)
        body = self._body()
        route = front.routes.get((method, url.path))
        if route is not None:
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, answer = route(Call(method, url.path, query, dict(self.headers.items()), body))
            self._json(status, answer)
        elif url.path == front.token_path and method in ("GET", "POST"):
            self._token()
        elif not url.path.startswith("/v2/"):
            self._json(404, {"errors": [{"code": "NOT_FOUND", "message": f"no route {url.path}"}]})
        elif not front.valid(_bearer(self.headers.get("Authorization") or "")):
            self._challenge(url.path, method)
        else:
            self._proxy(method, body)

    def _body(self) -> bytes:
        """The request body (Content-Length or chunked)."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> None:
        """Issue a token for basic credentials the emulator accepts; 401 otherwise."""
        front = self.server.front
        user, password = _basic(self.headers.get("Authorization") or "")
        if user is None or not front.authorize(user, password or ""):
            self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required: the "
                                         "credentials were refused"}]})
            return
        token = front.issue()
        self._json(200, {"token": token, "access_token": token, "expires_in": TOKEN_SECONDS})

    def _challenge(self, path: str, method: str) -> None:
        """401 with the Bearer challenge naming the token endpoint, service and scope."""
        front = self.server.front
        challenge = f'Bearer realm="{front.endpoint}{front.token_path}",service="{front.address}"'
        parts = path[4:].split("/")
        for marker in ("manifests", "blobs", "tags"):
            if marker in parts[1:]:
                name = "/".join(parts[: parts.index(marker, 1)])
                actions = "pull" if method in ("GET", "HEAD") else "pull,push"
                challenge += f',scope="repository:{name}:{actions}"'
                break
        self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                   {"WWW-Authenticate": challenge, "Docker-Distribution-Api-Version": "registry/2.0"})

    def _proxy(self, method: str, body: bytes) -> None:
        """Forward the call to the registry and stream its answer back."""
        front = self.server.front
        connection = http.client.HTTPConnection(front.registry().address, timeout=300)
        try:
            connection.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():  # repeated headers (docker's several Accept) kept
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    connection.putheader(key, value)
            connection.putheader("X-Forwarded-Proto", front.scheme)
            if body or method in ("PUT", "POST", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            data = b"" if method == "HEAD" or length is not None else response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", length if length is not None else str(len(data)))
            self.end_headers()
            if method == "HEAD":
                return
            if length is None:
                self.wfile.write(data)
                return
            while block := response.read(1 << 20):
                self.wfile.write(block)
        finally:
            connection.close()

    def _json(self, status: int, answer: Any, headers: Mapping[str, str] | None = None) -> None:
        """Write a JSON answer."""
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)


def _basic(header: str) -> tuple[str | None, str | None]:
    """(user, password) of a basic Authorization header, or (None, None)."""
    if not header.startswith("Basic "):
        return None, None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return (user, password) if sep else (None, None)


def _bearer(header: str) -> str:
    """The token of a Bearer Authorization header, or ''."""
    return header[7:].strip() if header.startswith("Bearer ") else ""
