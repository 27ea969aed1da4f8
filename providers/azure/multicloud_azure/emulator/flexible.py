"""Azure Database for PostgreSQL flexible servers as ARM serves them (api-version 2026-10-01, the
one azure-mgmt-postgresqlflexibleservers 3.0.0 sends): servers, their databases and firewall rules.

Every write is a long-running operation (202 with Azure-AsyncOperation and Location); a server is
`Provisioning`, then `Ready`; while one operation runs on a server another is refused (409
ServerBusy); names are global (the fqdn `<name>.postgres.database.azure.com`). With a data plane a
server is a real PostgreSQL container (`multicloud_docker.dataplane.postgres`) on the ACI groups'
network, where its fqdn resolves, and published on a loopback address of its own for this machine.
"""

from __future__ import annotations

import builtins
import copy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from multicloud.emulators import loopback_address
from multicloud_azure.emulator import flexrules
from multicloud_azure.emulator.arm import location_name
from multicloud_azure.emulator.flexstate import (
    RESOURCE_TYPE,
    Check,
    FlexOperation,
    FlexServer,
    not_found,
    operation_status,
    plane_key,
    resource_id,
)
from multicloud_azure.emulator.running import NETWORK
from multicloud_azure.emulator.validation import ArmError

if TYPE_CHECKING:
    from multicloud_docker.dataplane.postgres import PostgresServers

DOMAIN = "postgres.database.azure.com"
SYSTEM_DATABASES = ("azure_maintenance", "azure_sys", "postgres")
GROUP_ROLE = "azure_pg_admin"
WORK_THREAD = "flexible-server-work"


class FlexibleServers:
    """The flexible servers of every subscription, thread-safe; time moves lazily (no threads
    but the data plane's work)."""

    def __init__(self, *, op_seconds: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self.op_seconds = op_seconds
        self.clock = clock
        self.servers: dict[tuple[str, str, str], FlexServer] = {}
        self.operations: dict[str, FlexOperation] = {}
        self.lock = threading.RLock()
        self.plane: PostgresServers | None = None
        """The data plane that runs the servers; None serves the API only."""

    def reset(self) -> None:
        """Forget every server and operation (the data plane keeps running what it runs)."""
        with self.lock:
            self.servers.clear()
            self.operations.clear()

    # --- servers ----------------------------------------------------------------------------

    def put(self, sub: str, rg: str, name: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], FlexOperation]:
        """Create a server, or update one (a PUT on an existing server); 202 with the operation."""
        flexrules.validate_name(name)
        with self.lock:
            existing = self._find(sub, rg, name)
            if existing is None:
                self._check_global_name(name)
                stored, password = flexrules.validate_create(name, body)
                server = FlexServer(sub, rg, name, stored, password)
                self.servers[(sub, rg, name)] = server
                return self.view(server), self._start(server, "Provisioning", self._run_work(server))
            self._check_idle(existing)
            return self._update(existing, flexrules.merge_put(existing.body, body))

    def patch(self, sub: str, rg: str, name: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], FlexOperation]:
        """Update a server's sku, storage, version, password, backup or tags; 202 with the operation."""
        with self.lock:
            server = self._live(sub, rg, name)
            self._check_idle(server)
            return self._update(server, flexrules.merge_patch(server.body, body))

    def _update(
        self, server: FlexServer, change: tuple[dict[str, Any], str | None]
    ) -> tuple[dict[str, Any], FlexOperation]:
        """Apply a validated change: the server is Updating until the operation (and a restart
        with the new settings, when it runs) is done."""
        body, password = change
        server.body = body
        if password is not None:
            server.password = password
        if server.state == "Stopped":
            return self.view(server), self._start(server, "Stopped", None)
        return self.view(server), self._start(server, "Updating", self._run_work(server))

    def get(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        """A server's view; 404 when there is none."""
        with self.lock:
            return self.view(self._live(sub, rg, name))

    def list(self, sub: str, rg: str | None) -> builtins.list[dict[str, Any]]:
        """The servers of a subscription, or of one of its resource groups."""
        with self.lock:
            found = [
                s for k, s in list(self.servers.items())
                if s.subscription == sub and (rg is None or s.resource_group.lower() == rg.lower())
                and self._find(*k) is not None
            ]
            return [self.view(s) for s in sorted(found, key=lambda s: (s.resource_group, s.name))]

    def delete(self, sub: str, rg: str, name: str) -> FlexOperation | None:
        """Start deleting a server and its data; None when there is none (ARM answers 204)."""
        with self.lock:
            server = self._find(sub, rg, name)
            if server is None:
                return None
            if server.state != "Dropping":
                self._check_idle(server)
            if self.plane is not None:
                self.plane.delete(plane_key(server))
            return self._start(server, "Dropping", None)

    def power(self, sub: str, rg: str, name: str, action: str) -> FlexOperation:
        """start, stop or restart a server (a stopped server keeps its data)."""
        with self.lock:
            server = self._live(sub, rg, name)
            self._check_idle(server)
            if action == "stop":
                if server.state == "Stopped":
                    raise ArmError(400, "ServerIsStopped", f"Server '{name}' is already stopped.")
                if self.plane is not None:
                    self.plane.stop(plane_key(server))
                return self._start(server, "Stopping", None)
            if server.state == "Stopped" and action == "restart":
                raise ArmError(400, "ServerIsStopped", f"Server '{name}' is stopped; start it first.")
            if server.state != "Stopped" and action == "start":
                raise ArmError(400, "ServerIsNotStopped", f"Server '{name}' is not stopped.")
            work = self._run_work(server, restart=action == "restart")
            return self._start(server, "Starting" if action == "start" else "Restarting", work)

    # --- databases and firewall rules -------------------------------------------------------

    def put_database(self, sub: str, rg: str, name: str, db: str, body: Mapping[str, Any]) -> FlexOperation:
        """Create a database (ARM: 202 with the operation); an existing one stays as it is."""
        with self.lock:
            server = self._ready(sub, rg, name)
            stored = flexrules.validate_database(db, body)
            if db in SYSTEM_DATABASES:
                raise ArmError(400, "DatabaseNameReserved", f"The database name '{db}' is reserved.")
            server.databases.setdefault(db, stored)
            work = None
            if self.plane is not None:
                from multicloud_docker.dataplane.postgres import create_database, in_background

                plane, key = self.plane, plane_key(server)
                work = in_background(lambda: create_database(plane, key, db, GROUP_ROLE), WORK_THREAD)
            return self._start(server, server.state, work)

    def delete_database(self, sub: str, rg: str, name: str, db: str) -> FlexOperation | None:
        """Drop a database and its data; None when there is none (204)."""
        with self.lock:
            server = self._ready(sub, rg, name)
            if server.databases.pop(db, None) is None:
                return None
            work = None
            if self.plane is not None:
                from multicloud_docker.dataplane.postgres import drop_database, in_background

                plane, key = self.plane, plane_key(server)
                work = in_background(lambda: drop_database(plane, key, db), WORK_THREAD)
            return self._start(server, server.state, work)

    def get_database(self, sub: str, rg: str, name: str, db: str) -> dict[str, Any]:
        """A database's view; 404 when there is none."""
        with self.lock:
            server = self._live(sub, rg, name)
            if db not in server.databases and db not in SYSTEM_DATABASES:
                raise not_found(f"{RESOURCE_TYPE}/databases", f"{name}/{db}", rg)
            return self._child(server, "databases", db, server.databases.get(db) or flexrules.SYSTEM_DB)

    def list_databases(self, sub: str, rg: str, name: str) -> builtins.list[dict[str, Any]]:
        """Every database of a server, the system ones included."""
        with self.lock:
            server = self._live(sub, rg, name)
            found = {db: flexrules.SYSTEM_DB for db in SYSTEM_DATABASES} | server.databases
            return [self._child(server, "databases", db, props) for db, props in sorted(found.items())]

    def put_rule(self, sub: str, rg: str, name: str, rule: str, body: Mapping[str, Any]) -> FlexOperation:
        """Create or replace a firewall rule (202 with the operation). The emulator keeps rules
        but does not enforce them."""
        with self.lock:
            server = self._live(sub, rg, name)
            self._check_idle(server)
            server.firewall[rule] = flexrules.validate_rule(rule, body)
            return self._start(server, server.state, None)

    def delete_rule(self, sub: str, rg: str, name: str, rule: str) -> FlexOperation | None:
        """Remove a firewall rule; None when there is none (204)."""
        with self.lock:
            server = self._live(sub, rg, name)
            self._check_idle(server)
            if server.firewall.pop(rule, None) is None:
                return None
            return self._start(server, server.state, None)

    def get_rule(self, sub: str, rg: str, name: str, rule: str) -> dict[str, Any]:
        """A firewall rule's view; 404 when there is none."""
        with self.lock:
            server = self._live(sub, rg, name)
            if rule not in server.firewall:
                raise not_found(f"{RESOURCE_TYPE}/firewallRules", f"{name}/{rule}", rg)
            return self._child(server, "firewallRules", rule, server.firewall[rule])

    def list_rules(self, sub: str, rg: str, name: str) -> builtins.list[dict[str, Any]]:
        """Every firewall rule of a server."""
        with self.lock:
            server = self._live(sub, rg, name)
            return [self._child(server, "firewallRules", r, p) for r, p in sorted(server.firewall.items())]

    # --- operations ---------------------------------------------------------------------------

    def operation(self, sub: str, op_id: str) -> tuple[FlexOperation, str]:
        """An operation and its status now: InProgress, Succeeded or Failed."""
        with self.lock:
            op = self.operations.get(op_id)
            if op is None or op.subscription != sub:
                raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
            return op, operation_status(op, self.clock())

    def address(self, sub: str, rg: str, name: str) -> str:
        """Where this machine reaches a server's PostgreSQL (port 5432): a loopback address."""
        with self.lock:
            return self._loopback(plane_key(self._live(sub, rg, name)))

    # --- views and internals ----------------------------------------------------------------

    def view(self, server: FlexServer) -> dict[str, Any]:
        """What GET returns: the stored body without the password, with the read-only state."""
        self._settle(server)
        body = copy.deepcopy(server.body)
        props = body["properties"]
        props.update(
            state=server.state,
            fullyQualifiedDomainName=f"{server.name}.{DOMAIN}",
            minorVersion=flexrules.MINOR_VERSIONS.get(str(props["version"]), "0"),
            replicationRole="Primary",
            replicaCapacity=5,
        )
        props["backup"]["earliestRestoreDate"] = server.created
        return {
            "id": resource_id(server.subscription, server.resource_group, server.name),
            "name": server.name,
            "type": RESOURCE_TYPE,
            "systemData": {"createdAt": server.created},
            **body,
        }

    def _child(self, server: FlexServer, kind: str, name: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """The view of a database or firewall rule."""
        parent = resource_id(server.subscription, server.resource_group, server.name)
        return {"id": f"{parent}/{kind}/{name}", "name": name, "type": f"{RESOURCE_TYPE}/{kind}",
                "properties": dict(props)}

    def _settle(self, server: FlexServer) -> None:
        """Move a server on once its operation has ended (lazily, at every read)."""
        op = server.operation
        if op is None or operation_status(op, self.clock()) == "InProgress":
            return
        server.operation = None
        if server.state == "Dropping":
            server.deleted = True
        elif server.state == "Stopping":
            server.state = "Stopped"
        elif server.state != "Stopped":
            server.state = "Ready"

    def _start(self, server: FlexServer, state: str, work: Check | None) -> FlexOperation:
        """Record a new operation on a server, which is `state` until it ends."""
        op = FlexOperation(uuid.uuid4().hex, server.subscription, location_name(server.body["location"]),
                           self.clock() + self.op_seconds, work)
        self.operations[op.id] = op
        server.operation, server.state = op, state
        return op

    def _run_work(self, server: FlexServer, *, restart: bool = False) -> Check | None:
        """Run (or re-run) the server on the data plane; the check says when it answers."""
        if self.plane is None:
            return None
        from multicloud_docker.dataplane.postgres import Server

        plane, key = self.plane, plane_key(server)
        fqdn = f"{server.name}.{DOMAIN}"
        if restart:
            plane.plane.recreate(key)
        plane.run(Server(key, server.body["properties"]["administratorLogin"], server.password, GROUP_ROLE,
                         self._loopback(key), network=NETWORK, aliases=(fqdn,)))
        return lambda: plane.ready(key)

    def _loopback(self, key: str) -> str:
        """A server's own loopback address: the data plane's (apart for each emulator), else one stable for its key."""
        return str(self.plane.plane.loopback(key)) if self.plane is not None else server_address(key)

    def _find(self, sub: str, rg: str, name: str) -> FlexServer | None:
        """A server by key (resource groups are case-insensitive), forgotten once deleted."""
        server = next((s for k, s in self.servers.items()
                       if k[0] == sub and k[1].lower() == rg.lower() and k[2] == name), None)
        if server is not None:
            self._settle(server)
            if server.deleted:
                del self.servers[(server.subscription, server.resource_group, server.name)]
                return None
        return server

    def _live(self, sub: str, rg: str, name: str) -> FlexServer:
        """A server by key; ARM's 404 when there is none."""
        server = self._find(sub, rg, name)
        if server is None:
            raise not_found(RESOURCE_TYPE, name, rg)
        return server

    def _ready(self, sub: str, rg: str, name: str) -> FlexServer:
        """A server that takes child writes now (Ready); 409 ServerBusy otherwise."""
        server = self._live(sub, rg, name)
        self._check_idle(server)
        if server.state != "Ready":
            raise ArmError(409, "ServerIsNotReady", f"Server '{name}' is {server.state}; it must be Ready.")
        return server

    def _check_idle(self, server: FlexServer) -> None:
        """Refuse a write to a server or its children while another operation runs on it: a
        flexible server runs one at a time (409 ServerBusy); reads pass."""
        if server.state == "Dropping":
            raise ArmError(409, "ServerDropping", "Operations on a server group in dropping state are not allowed.")
        if server.operation is not None:
            raise ArmError(409, "ServerBusy",
                           f"Server '{server.name}' is busy with another operation. Please try again later.")

    def _check_global_name(self, name: str) -> None:
        """Server names are global: the fqdn is <name>.postgres.database.azure.com."""
        for key in list(self.servers):
            if key[2] == name and self._find(*key) is not None:
                raise ArmError(409, "ServerNameAlreadyExists", "Specified server name is already used.")


def server_address(key: str) -> str:
    """A server's own loopback address, stable for its key."""
    return loopback_address(key)
