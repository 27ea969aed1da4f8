"""HTTP handling of the emulator: ARM routes, bearer auth, fault injection, LRO headers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from multicloud.testing.tls import WrappedServer
from multicloud_azure.emulator import acr, exec_socket, flexroutes
from multicloud_azure.emulator.arm import Fault, Operation
from multicloud_azure.emulator.models import AciBackend
from multicloud_azure.emulator.validation import ArmError

API_VERSIONS = ("2023-05-01",)
PROVIDER = "providers/Microsoft.ContainerInstance"
_SUB = r"^/subscriptions/(?P<sub>[^/]+)"
_GROUPS = _SUB + r"/resourceGroups/(?P<rg>[^/]+)/" + PROVIDER + "/containerGroups"
_REGISTRIES = "/providers/Microsoft.ContainerRegistry/registries"
_REGISTRY = _SUB + "/resourceGroups/(?P<rg>[^/]+)" + _REGISTRIES + "/(?P<name>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p + "$", re.IGNORECASE), h)
    for m, p, h in [
        ("GET", _SUB + "/" + PROVIDER + "/containerGroups", "list_subscription"),
        ("GET", _GROUPS, "list_group"),
        ("GET", _GROUPS + "/(?P<name>[^/]+)", "get"),
        ("PUT", _GROUPS + "/(?P<name>[^/]+)", "put"),
        ("DELETE", _GROUPS + "/(?P<name>[^/]+)", "delete"),
        ("PATCH", _GROUPS + "/(?P<name>[^/]+)", "patch"),
        ("POST", _GROUPS + "/(?P<name>[^/]+)/(?P<action>restart|start|stop)", "action"),
        ("GET", _GROUPS + "/(?P<name>[^/]+)/containers/(?P<container>[^/]+)/logs", "logs"),
        ("POST", _GROUPS + "/(?P<name>[^/]+)/containers/(?P<container>[^/]+)/exec", "exec"),
        ("GET", _SUB + "/" + PROVIDER + "/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)", "op_status"),
        ("GET", _SUB + "/" + PROVIDER + "/locations/(?P<loc>[^/]+)/operationResults/(?P<op>[^/]+)", "op_result"),
        ("GET", _SUB + _REGISTRIES, "acr_list"),
        ("GET", _REGISTRY, "acr_get"),
        ("PUT", _REGISTRY, "acr_put"),
    ]
]
EXEC_PATH = "/_exec/"
STATUS_CODES = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable", 409: "Conflict"}

Reply = tuple[int, Any, dict[str, str]]


class ArmHandler(BaseHTTPRequestHandler):
    """One request against the emulated ARM endpoint; state lives in `server.backend`."""

    protocol_version = "HTTP/1.1"
    server: ArmServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; the backend keeps a request log instead."""

    def do_GET(self) -> None:
        """Serve a GET (an exec session's WebSocket, whose password is its authentication)."""
        if self.path.startswith(EXEC_PATH):
            backend = self.server.backend
            session = self.server.exec_sessions.take(self.path[len(EXEC_PATH):])
            exec_socket.serve(self, session, lambda s: backend.exec_connection(s.key, s.container, s.command, s.size))
            return
        self._serve("GET")

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._serve("PUT")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._serve("DELETE")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve("POST")

    def do_PATCH(self) -> None:
        """Serve a PATCH."""
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        """Answer one request: auth, faults, routing; ARM errors become ARM error bodies."""
        url = urlsplit(self.path)
        path, query = unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        backend = self.server.backend
        try:
            self._authenticate()
            if path.startswith("/_emulator/"):
                status, body, headers = self._control(method, path, raw)
            else:
                fault = backend.take_fault(method, path)
                if fault is not None:
                    self._fault(fault)
                status, body, headers = self._route(method, path, query, raw)
        except ArmError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers
        except (ValueError, KeyError, TypeError) as exc:
            status, body, headers = 400, ArmError(400, "InvalidRequestContent", f"invalid request: {exc}").body(), {}
        backend.record(method, path, status)
        self._send(status, body, headers)

    def _authenticate(self) -> None:
        """Raise 401 unless the request carries the emulator's bearer token."""
        header = self.headers.get("Authorization") or ""
        challenge = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                     'error="invalid_token", error_description="The authentication failed"'}
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                headers=challenge,
            )
        expected = self.server.backend.token
        if expected is not None and header[7:].strip() != expected:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.", headers=challenge)

    def _fault(self, fault: Fault) -> None:
        """Delay and/or fail a request as an injected fault says."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status and fault.status < 400:
            return
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        code = fault.code or STATUS_CODES.get(fault.status, "InjectedFault")
        raise ArmError(fault.status, code, f"injected fault ({fault.status} {code})", headers=headers)

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes) -> Reply:
        """Check api-version and dispatch to the handler of the matching route."""
        version = query.get("api-version")
        if version is not None and flexroutes.serves(path):
            return flexroutes.route(self, method, path, query, raw)
        if version is None:
            raise ArmError(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
            )
        versions = acr.API_VERSIONS if _REGISTRIES.lower() in path.lower() else API_VERSIONS
        if version not in versions:
            raise ArmError(
                400, "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{', '.join(versions)}'.",
            )
        for route_method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                args = match.groupdict()
                result: Reply = getattr(self, "_h_" + handler)(query=query, raw=raw, **args)
                return result
        if any(p.match(path) for _, p, _ in ROUTES):
            raise ArmError(405, "MethodNotAllowed", f"The method {method} is not allowed on {path}.")
        raise ArmError(404, "InvalidResourceType", f"No route for {method} {path} in the emulator.")

    # --- ARM handlers ------------------------------------------------------------------------

    def _h_list_subscription(self, *, sub: str, query: dict[str, str], raw: bytes) -> Reply:
        """List every group of a subscription."""
        return self._page(self.server.backend.list(sub, None), query, self.path)

    def _h_list_group(self, *, sub: str, rg: str, query: dict[str, str], raw: bytes) -> Reply:
        """List the groups of a resource group."""
        return self._page(self.server.backend.list(sub, rg), query, self.path)

    def _h_get(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Return one group."""
        return 200, self.server.backend.get(sub, rg, name), {}

    def _h_put(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Create or update a group: 201/200 with Azure-AsyncOperation."""
        body = json.loads(raw or b"{}")
        status, view, op = self.server.backend.put(sub, rg, name, body)
        return status, view, self._lro_headers(op, location=False)

    def _h_patch(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Replace a group's tags (the only field ACI's PATCH updates)."""
        backend = self.server.backend
        tags = json.loads(raw or b"{}").get("tags")
        with backend.lock:
            backend.get(sub, rg, name)
            group = backend.groups[(sub, rg, name)]
            if tags is not None:
                group.body["tags"] = dict(tags)
            return 200, backend.view(group), {}

    def _h_delete(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Start deleting a group (202 with LRO headers), or 204 when there is none."""
        op = self.server.backend.delete(sub, rg, name)
        if op is None:
            return 204, None, {}
        return 202, None, self._lro_headers(op, location=True)

    def _h_action(self, *, sub: str, rg: str, name: str, action: str, query: dict[str, str], raw: bytes) -> Reply:
        """restart (204 + LRO), start (202 + LRO) or stop (204) a group."""
        backend = self.server.backend
        if action == "stop":
            backend.stop(sub, rg, name)
            return 204, None, {}
        op = backend.restart(sub, rg, name) if action == "restart" else backend.start(sub, rg, name)
        return (204 if action == "restart" else 202), None, self._lro_headers(op, location=True)

    def _h_logs(self, *, sub: str, rg: str, name: str, container: str, query: dict[str, str], raw: bytes) -> Reply:
        """Return a container's logs as {'content': ...}."""
        tail = int(query["tail"]) if "tail" in query else None
        timestamps = query.get("timestamps", "false").lower() == "true"
        return 200, {"content": self.server.backend.logs(sub, rg, name, container, tail, timestamps=timestamps)}, {}

    def _h_exec(self, *, sub: str, rg: str, name: str, container: str, query: dict[str, str], raw: bytes) -> Reply:
        """Grant an exec session: {webSocketUri, password} (ACI runs `command` as one program, no arguments)."""
        body = json.loads(raw or b"{}")
        command, size = body.get("command"), body.get("terminalSize") or {}
        if not isinstance(command, str) or not command.strip():
            raise ArmError(400, "InvalidRequestContent", "The exec request must have a 'command'.")
        key = self.server.backend.exec_target(sub, rg, name, container)
        rows, cols = int(size.get("rows") or 24), int(size.get("cols") or 80)
        ident, password = self.server.exec_sessions.grant(key, container, command, (rows, cols))
        uri = f"wss://{self.headers.get('Host') or self.server.host_header}{EXEC_PATH}{ident}"
        return 200, {"webSocketUri": uri, "password": password}, {}

    def _h_op_status(self, *, sub: str, loc: str, op: str, query: dict[str, str], raw: bytes) -> Reply:
        """The Azure-AsyncOperation status document of an operation."""
        operation, status = self.server.backend.operation(sub, op)
        body: dict[str, Any] = {"id": self.path.split("?")[0], "name": op, "status": status}
        if status == "Failed":
            body["error"] = {"code": "OperationFailed", "message": operation.failed}
        headers = self._retry_headers(operation) if status == "InProgress" else {}
        return 200, body, headers

    def _h_op_result(self, *, sub: str, loc: str, op: str, query: dict[str, str], raw: bytes) -> Reply:
        """The Location poll of an operation: 202 while running, 204 when done."""
        operation, status = self.server.backend.operation(sub, op)
        if status == "InProgress":
            return 202, None, {**self._lro_headers(operation, location=True)}
        return 204, None, {}

    def _h_acr_list(self, *, sub: str, query: dict[str, str], raw: bytes) -> Reply:
        """List the subscription's container registries."""
        return self._page(self._acr().list(sub), query, self.path)

    def _h_acr_get(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Return one container registry."""
        return 200, self._acr().get(sub, rg, name), {}

    def _h_acr_put(self, *, sub: str, rg: str, name: str, query: dict[str, str], raw: bytes) -> Reply:
        """Create or update a container registry (done at once: provisioningState Succeeded)."""
        status, view = self._acr().put(sub, rg, name, json.loads(raw or b"{}"))
        return status, view, {}

    def _acr(self) -> acr.AcrBackend:
        """The emulator's registries, or 404 when it serves none."""
        found = self.server.backend.acr
        if found is None:
            raise ArmError(404, "NoRegisteredProviderFound", "Microsoft.ContainerRegistry is not served here.")
        return found

    # --- helpers -----------------------------------------------------------------------------

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], path: str) -> Reply:
        """One page of a list, with nextLink when more remain."""
        start = int(query.get("$skiptoken", "0"))
        size = self.server.backend.page_size
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            base = path.split("?", maxsplit=1)[0]
            body["nextLink"] = f"{self._base()}{base}?api-version={query['api-version']}&$skiptoken={start + size}"
        return 200, body, {}

    def _base(self) -> str:
        """The https base URL clients used to reach us."""
        return f"https://{self.headers.get('Host') or self.server.host_header}"

    def _lro_headers(self, op: Operation, *, location: bool) -> dict[str, str]:
        """Azure-AsyncOperation (and Location) headers for an operation."""
        prefix = f"{self._base()}/subscriptions/{op.group[0]}/{PROVIDER}/locations/{op.location}"
        headers = {"Azure-AsyncOperation": f"{prefix}/operations/{op.id}?api-version={API_VERSIONS[0]}"}
        if location:
            headers["Location"] = f"{prefix}/operationResults/{op.id}?api-version={API_VERSIONS[0]}"
        return {**headers, **self._retry_headers(op)}

    def _retry_headers(self, op: Operation) -> dict[str, str]:
        """Tell pollers how long the operation has left (ms), so none sleeps a default 30 s."""
        remaining = max(op.done_at - self.server.backend.clock(), 0.0)
        return {"retry-after-ms": str(max(int(remaining * 1000) + 1, 10))}

    def _control(self, method: str, path: str, raw: bytes) -> Reply:
        """The test controls under /_emulator/: faults, reset, settings, request log."""
        backend = self.server.backend
        data = json.loads(raw or b"{}")
        if method == "POST" and path == "/_emulator/faults":
            backend.inject(Fault(**data))
            return 204, None, {}
        if method == "POST" and path == "/_emulator/reset":
            backend.reset()
            return 204, None, {}
        if method == "POST" and path == "/_emulator/settings":
            backend.op_seconds = float(data.get("op_seconds", backend.op_seconds))
            if backend.postgres is not None:
                backend.postgres.op_seconds = backend.op_seconds
            backend.page_size = int(data.get("page_size", backend.page_size))
            return 204, None, {}
        if method == "GET" and path == "/_emulator/requests":
            with backend.lock:
                records = [r.__dict__ for r in backend.requests]
            return 200, {"requests": records}, {}
        raise ArmError(404, "NotFound", f"no emulator control {method} {path}")

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        """Write a JSON response with its headers."""
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", f"emu-{time.monotonic_ns()}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


class ArmServer(WrappedServer):
    """A threaded HTTP(S) server bound to one AciBackend."""

    def __init__(self, address: tuple[str, int], backend: AciBackend, wrap: Callable[[Any], Any] | None) -> None:
        self.backend = backend
        super().__init__(address, ArmHandler, wrap)
        self.exec_sessions = exec_socket.ExecSessions()
        self.host_header = f"{address[0]}:{self.server_address[1]}"
