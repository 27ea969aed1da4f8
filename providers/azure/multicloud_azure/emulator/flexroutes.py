"""HTTP routes of Microsoft.DBforPostgreSQL under the emulated ARM endpoint: flexible servers,
databases, firewall rules, name checks and the provider's long-running operation documents.

Writes answer 202 with Azure-AsyncOperation (`.../azureAsyncOperation/ID`) and Location
(`.../operationResults/ID`), as the service does; azure-core's ARM poller then reads the resource.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from multicloud_azure.emulator.flexible import FlexibleServers
from multicloud_azure.emulator.flexrules import NAME
from multicloud_azure.emulator.flexstate import FlexOperation
from multicloud_azure.emulator.validation import ArmError

if TYPE_CHECKING:
    from multicloud_azure.emulator.server import ArmHandler, Reply

API_VERSIONS = ("2026-10-01",)
"""What azure-mgmt-postgresqlflexibleservers 3.0.0 sends."""
PROVIDER = "providers/Microsoft.DBforPostgreSQL"
_SUB = r"^/subscriptions/(?P<sub>[^/]+)/" + PROVIDER
_SERVER = r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/" + PROVIDER + "/flexibleServers"
_ONE = _SERVER + "/(?P<name>[^/]+)"
ROUTES = [
    (m, re.compile(p + "$", re.IGNORECASE), h)
    for m, p, h in [
        ("GET", _SUB + "/flexibleServers", "list"),
        ("GET", _SERVER, "list"),
        ("GET", _ONE, "get"),
        ("PUT", _ONE, "put"),
        ("PATCH", _ONE, "patch"),
        ("DELETE", _ONE, "delete"),
        ("POST", _ONE + "/(?P<action>start|stop|restart)", "power"),
        ("GET", _ONE + "/databases", "list_databases"),
        ("GET", _ONE + "/databases/(?P<child>[^/]+)", "get_database"),
        ("PUT", _ONE + "/databases/(?P<child>[^/]+)", "put_database"),
        ("DELETE", _ONE + "/databases/(?P<child>[^/]+)", "delete_database"),
        ("GET", _ONE + "/firewallRules", "list_rules"),
        ("GET", _ONE + "/firewallRules/(?P<child>[^/]+)", "get_rule"),
        ("PUT", _ONE + "/firewallRules/(?P<child>[^/]+)", "put_rule"),
        ("DELETE", _ONE + "/firewallRules/(?P<child>[^/]+)", "delete_rule"),
        ("POST", _SUB + "(?:/locations/[^/]+)?/checkNameAvailability", "check_name"),
        ("GET", _SUB + "/locations/(?P<loc>[^/]+)/azureAsyncOperation/(?P<op>[^/]+)", "op_status"),
        ("GET", _SUB + "/locations/(?P<loc>[^/]+)/operationResults/(?P<op>[^/]+)", "op_result"),
    ]
]


def serves(path: str) -> bool:
    """True for a path of this resource provider."""
    return PROVIDER.lower() in path.lower()


def route(handler: ArmHandler, method: str, path: str, query: dict[str, str], raw: bytes) -> Reply:
    """Answer one request of this provider; ArmError for what the service refuses."""
    version = query.get("api-version")
    if version not in API_VERSIONS:
        raise ArmError(
            400, "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{', '.join(API_VERSIONS)}'.",
        )
    servers = handler.server.backend.postgres
    if servers is None:
        raise ArmError(404, "NoRegisteredProviderFound", "Microsoft.DBforPostgreSQL is not served here.")
    for route_method, pattern, name in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            args = {k: v for k, v in match.groupdict().items() if v is not None}
            body = json.loads(raw or b"{}") if method in ("PUT", "PATCH", "POST") else {}
            return _Routes(handler, servers, query).call(name, args, body)
    if any(p.match(path) for _, p, _ in ROUTES):
        raise ArmError(405, "MethodNotAllowed", f"The method {method} is not allowed on {path}.")
    raise ArmError(404, "InvalidResourceType", f"No route for {method} {path} in the emulator.")


class _Routes:
    """The handlers of one request."""

    def __init__(self, handler: ArmHandler, servers: FlexibleServers, query: dict[str, str]) -> None:
        self.handler, self.servers, self.query = handler, servers, query

    def call(self, name: str, args: dict[str, str], body: Any) -> Reply:
        """Run the named handler."""
        result: Reply = getattr(self, "_" + name)(body=body, **args)
        return result

    def _list(self, *, sub: str, body: Any, rg: str | None = None) -> Reply:
        return self.handler._page(self.servers.list(sub, rg), self.query, self.handler.path)

    def _get(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        return 200, self.servers.get(sub, rg, name), {}

    def _put(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        _view, op = self.servers.put(sub, rg, name, body)
        return 202, None, self._lro(op)

    def _patch(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        _view, op = self.servers.patch(sub, rg, name, body)
        return 202, None, self._lro(op)

    def _delete(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        return self._accepted(self.servers.delete(sub, rg, name))

    def _power(self, *, sub: str, rg: str, name: str, action: str, body: Any) -> Reply:
        return 202, None, self._lro(self.servers.power(sub, rg, name, action))

    def _list_databases(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        return self.handler._page(self.servers.list_databases(sub, rg, name), self.query, self.handler.path)

    def _get_database(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return 200, self.servers.get_database(sub, rg, name, child), {}

    def _put_database(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return 202, None, self._lro(self.servers.put_database(sub, rg, name, child, body))

    def _delete_database(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return self._accepted(self.servers.delete_database(sub, rg, name, child))

    def _list_rules(self, *, sub: str, rg: str, name: str, body: Any) -> Reply:
        return self.handler._page(self.servers.list_rules(sub, rg, name), self.query, self.handler.path)

    def _get_rule(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return 200, self.servers.get_rule(sub, rg, name, child), {}

    def _put_rule(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return 202, None, self._lro(self.servers.put_rule(sub, rg, name, child, body))

    def _delete_rule(self, *, sub: str, rg: str, name: str, child: str, body: Any) -> Reply:
        return self._accepted(self.servers.delete_rule(sub, rg, name, child))

    def _check_name(self, *, sub: str, body: Any) -> Reply:
        """Whether a server name is free across every subscription."""
        name = str(body.get("name", ""))
        answer: dict[str, Any] = {"name": name, "type": body.get("type"), "nameAvailable": True}
        if not NAME.match(name):
            answer.update(nameAvailable=False, reason="Invalid", message=f"Server name '{name}' is invalid.")
        elif any(key[2] == name for key in list(self.servers.servers)):
            answer.update(nameAvailable=False, reason="AlreadyExists", message="Specified server name is already used.")
        return 200, answer, {}

    def _op_status(self, *, sub: str, loc: str, op: str, body: Any) -> Reply:
        """The Azure-AsyncOperation document of an operation."""
        operation, status = self.servers.operation(sub, op)
        document: dict[str, Any] = {"name": op, "status": status, "startTime": ""}
        if status == "Failed":
            document["error"] = {"code": "InternalServerError", "message": operation.failed}
        return 200, document, self._retry(operation) if status == "InProgress" else {}

    def _op_result(self, *, sub: str, loc: str, op: str, body: Any) -> Reply:
        """The Location poll of an operation: 202 while it runs, then 200."""
        operation, status = self.servers.operation(sub, op)
        if status == "InProgress":
            return 202, None, self._lro(operation)
        return 200, None, {}

    def _accepted(self, op: FlexOperation | None) -> Reply:
        """202 with the operation's headers, or 204 when there was nothing to do."""
        return (204, None, {}) if op is None else (202, None, self._lro(op))

    def _lro(self, op: FlexOperation) -> dict[str, str]:
        """Azure-AsyncOperation and Location headers of an operation."""
        base = f"{self.handler._base()}/subscriptions/{op.subscription}/{PROVIDER}/locations/{op.location}"
        version = API_VERSIONS[0]
        return {
            "Azure-AsyncOperation": f"{base}/azureAsyncOperation/{op.id}?api-version={version}",
            "Location": f"{base}/operationResults/{op.id}?api-version={version}",
            **self._retry(op),
        }

    def _retry(self, op: FlexOperation) -> dict[str, str]:
        """How long pollers wait before the next look (ms), so none sleeps a default 30 s."""
        remaining = max(op.done_at - self.servers.clock(), 0.0)
        return {"retry-after-ms": str(max(int(remaining * 1000) + 1, 50))}
