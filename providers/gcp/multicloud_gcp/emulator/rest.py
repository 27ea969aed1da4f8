"""The REST front end: Cloud Run Admin API v2 paths, Google error bodies, and a test control API."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from multicloud_gcp.emulator import protos, sqlroutes
from multicloud_gcp.emulator.cloudsql import CloudSql
from multicloud_gcp.emulator.dispatch import dispatch
from multicloud_gcp.emulator.faults import ApiError
from multicloud_gcp.emulator.model import CloudRunModel

LOC = r"projects/[^/]+/locations/[^/]+"
# (HTTP method, path pattern, API method, path parameter name, body field or None)
ROUTES = [
    ("POST", rf"/v2/(?P<p>{LOC})/services", "CreateService", "parent", "service"),
    ("GET", rf"/v2/(?P<p>{LOC})/services", "ListServices", "parent", None),
    ("GET", rf"/v2/(?P<p>{LOC}/services/[^/:]+)", "GetService", "name", None),
    ("PATCH", rf"/v2/(?P<p>{LOC}/services/[^/:]+)", "UpdateService", "service.name", "service"),
    ("DELETE", rf"/v2/(?P<p>{LOC}/services/[^/:]+)", "DeleteService", "name", None),
    ("GET", rf"/v2/(?P<p>{LOC}/services/[^/]+)/revisions", "ListRevisions", "parent", None),
    ("GET", rf"/v2/(?P<p>{LOC}/services/[^/]+/revisions/[^/:]+)", "GetRevision", "name", None),
    ("GET", rf"/v2/(?P<p>{LOC})/operations", "ListOperations", "name", None),
    ("GET", rf"/v2/(?P<p>{LOC}/operations/[^/:]+)", "GetOperation", "name", None),
    ("DELETE", rf"/v2/(?P<p>{LOC}/operations/[^/:]+)", "DeleteOperation", "name", None),
    ("POST", rf"/v2/(?P<p>{LOC}/operations/[^/:]+):wait", "WaitOperation", "name", "*"),
    ("POST", r"/v2/entries:list", "ListLogEntries", "", "*"),
    ("POST", r"/v1/(?P<p>projects/[^/]+)/secrets", "CreateSecret", "parent", "secret"),
    ("GET", r"/v1/(?P<p>projects/[^/]+)/secrets", "ListSecrets", "parent", None),
    ("GET", r"/v1/(?P<p>projects/[^/]+/secrets/[^/:]+)", "GetSecret", "name", None),
    ("PATCH", r"/v1/(?P<p>projects/[^/]+/secrets/[^/:]+)", "UpdateSecret", "secret.name", "secret"),
    ("DELETE", r"/v1/(?P<p>projects/[^/]+/secrets/[^/:]+)", "DeleteSecret", "name", None),
    ("POST", r"/v1/(?P<p>projects/[^/]+/secrets/[^/:]+):addVersion", "AddSecretVersion", "parent", "*"),
    ("GET", r"/v1/(?P<p>projects/[^/]+/secrets/[^/]+/versions/[^/:]+):access", "AccessSecretVersion", "name", None),
]
BOOLEANS = ("validateOnly", "allowMissing", "showDeleted")
SYSTEM_PARAMETERS = ("alt", "prettyPrint", "fields", "key", "quotaUser", "callback", "access_token", "uploadType")


def _query(text: str) -> dict[str, Any]:
    """Query parameters as request fields (booleans parsed, system parameters dropped)."""
    found: dict[str, Any] = {}
    for key, values in parse_qs(text).items():
        if key.startswith("$") or key in SYSTEM_PARAMETERS:
            continue
        value: Any = values[-1]
        found[key] = value.lower() == "true" if key in BOOLEANS else value
    return found


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        """Send small responses at once (no Nagle delay between headers and body)."""
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in the model instead."""

    def _send(self, status: int, payload: Any) -> None:
        """Write a JSON response."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        """The request's JSON body ({} when empty); INVALID_ARGUMENT when it is not JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            return json.loads(self.rfile.read(length))
        except json.JSONDecodeError as exc:
            raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}") from exc

    def _handle(self, verb: str) -> None:
        """Route a request to the control API or an API method; errors become Google error bodies."""
        parts = urlsplit(self.path)
        try:
            body = self._body()
            if parts.path.startswith("/_emulator/"):
                self._send(200, control(self.server.model, verb, parts.path, body))
                return
            if sqlroutes.serves(parts.path):
                self._send(200, sqlroutes.route(self.server.cloudsql, verb, parts.path, parts.query, body))
                return
            for route_verb, pattern, method, param, body_field in ROUTES:
                match = re.fullmatch(pattern, parts.path)
                if route_verb != verb or match is None:
                    continue
                request = _query(parts.query)
                if body_field == "*" and isinstance(body, dict):
                    request.update(body)
                elif body_field:
                    request[body_field] = body if isinstance(body, dict) else {}
                if param.endswith(".name"):
                    request[param.removesuffix(".name")]["name"] = match.group("p")
                elif param:
                    request[param] = match.group("p")
                request = protos.normalize_request(method, request)
                self._send(200, dispatch(self.server.model, method, request))
                return
            raise ApiError("NOT_FOUND", f"The requested URL {parts.path} was not found on this server ({verb}).")
        except ApiError as exc:
            self._send(exc.http_status, exc.body())

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")


def control(model: CloudRunModel, verb: str, path: str, body: Any) -> Any:
    """The test control API (for an emulator in another process): faults, delays, request log."""
    if path == "/_emulator/requests" and verb == "GET":
        return {"requests": [list(r) for r in model.requests], "mutations": [list(r) for r in model.mutations()]}
    if path == "/_emulator/faults" and verb == "POST":
        try:
            model.faults.fail(
                str(body.get("method", "*")), str(body.get("status", "UNAVAILABLE")), int(body.get("times", 1))
            )
        except ValueError as exc:
            raise ApiError("INVALID_ARGUMENT", str(exc)) from exc
        return {}
    if path == "/_emulator/slow" and verb == "POST":
        model.faults.slow_operations(float(body.get("seconds", 0)))
        return {}
    if path == "/_emulator/secrets" and verb == "POST" and isinstance(body, dict):
        model.secret_values.update({str(k): str(v) for k, v in body.items()})  # Secret Manager: add versions
        return {}
    if path == "/_emulator/reset" and verb == "POST":
        model.faults.clear()
        model.requests.clear()
        return {}
    raise ApiError("NOT_FOUND", f"no emulator control endpoint {verb} {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed mid-request) is not an emulator error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], model: CloudRunModel, cloudsql: CloudSql | None = None) -> None:
        super().__init__(address, _Handler)
        self.model = model
        self.cloudsql = cloudsql


def serve(
    model: CloudRunModel, host: str, port: int, cloudsql: CloudSql | None = None
) -> tuple[ThreadingHTTPServer, int]:
    """Serve REST on host:port (0 picks one) in a daemon thread; return the server and its port."""
    server = _Server((host, port), model, cloudsql)
    threading.Thread(target=server.serve_forever, name="cloudrun-rest", daemon=True).start()
    return server, int(server.server_address[1])
