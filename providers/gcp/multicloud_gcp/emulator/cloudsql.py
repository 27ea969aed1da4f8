"""Cloud SQL for PostgreSQL as the Cloud SQL Admin API v1 serves it: instances, databases, users
and `sql#operation`s (PENDING, RUNNING, DONE, with `error.errors[]` when one failed).

An instance is PENDING_CREATE until its create operation is done, then RUNNABLE; one operation
at a time per instance (409 operationInProgress); a deleted instance's name stays taken (Cloud SQL
keeps it for a week). With a data plane an instance is a real PostgreSQL container
(`multicloud_docker.dataplane.postgres`): its PRIMARY address is a loopback address of its own
published for this machine, its PRIVATE address (with `ipConfiguration.privateNetwork`) is where
Cloud Run instances reach it. Bodies are camelCase JSON, int64 fields as strings.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from multicloud.emulators import loopback_address
from multicloud_gcp.emulator import sqlrules
from multicloud_gcp.emulator.sqlrules import SqlError

if TYPE_CHECKING:
    from multicloud_docker.dataplane.postgres import PostgresServers

Json = dict[str, Any]
Check = Callable[[], "bool | str"]
Finish = Callable[[], object]
GROUP_ROLE = "cloudsqlsuperuser"


class CloudSql:
    """Every project's Cloud SQL instances, thread-safe; time moves lazily at each read."""

    def __init__(self, *, op_seconds: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self.op_seconds = op_seconds
        self.clock = clock
        self.instances: dict[tuple[str, str], Json] = {}
        self.databases: dict[tuple[str, str], dict[str, Json]] = {}
        self.users: dict[tuple[str, str], dict[str, Json]] = {}
        self.operations: dict[str, Json] = {}
        self.taken: set[tuple[str, str]] = set()
        """(project, name) of deleted instances: names Cloud SQL does not give out again for a week."""
        self.lock = threading.RLock()
        self.plane: PostgresServers | None = None
        self.network = ""
        """The data-plane network Cloud Run instances are on (where PRIVATE addresses answer)."""
        self.watchers: list[Callable[[str, str], None]] = []
        """Called with (verb, path) once a request is answered (kill trials pick their moment with one)."""
        self._due: dict[str, tuple[float, Check | None, Finish]] = {}
        self._passwords: dict[tuple[str, str], str] = {}

    # --- instances -----------------------------------------------------------------------------

    def insert(self, project: str, body: Json) -> Json:
        """instances.insert: the instance is PENDING_CREATE until the operation is done."""
        with self.lock:
            self._settle()
            name = str(body.get("name", ""))
            sqlrules.check_name(project, name)
            if (project, name) in self.instances:
                raise SqlError(409, "instanceAlreadyExists", "The Cloud SQL instance already exists.")
            if (project, name) in self.taken:
                raise SqlError(409, "instanceAlreadyExists", sqlrules.REUSED_NAME)
            instance = sqlrules.new_instance(project, name, body)
            key = (project, name)
            self._passwords[key] = str(body.get("rootPassword") or secrets.token_urlsafe(24))
            self.instances[key] = instance
            self.databases[key] = {"postgres": sqlrules.database(project, name, "postgres")}
            self.users[key] = {"postgres": sqlrules.user(project, name, "postgres")}
            self._addresses(instance)

            def created() -> None:
                instance["state"] = "RUNNABLE"

            return self._operation(instance, "CREATE", self._run(key), created)

    def get(self, project: str, name: str) -> Json:
        """instances.get."""
        with self.lock:
            self._settle()
            return self._view(self._instance(project, name))

    def list(self, project: str) -> Json:
        """instances.list."""
        with self.lock:
            self._settle()
            items = [self._view(i) for (p, _), i in sorted(self.instances.items()) if p == project]
            return {"kind": "sql#instancesList", "items": items} if items else {"kind": "sql#instancesList"}

    def patch(self, project: str, name: str, body: Json) -> Json:
        """instances.patch: settings (tier, disk, labels, flags, deletion protection, ip
        configuration) and databaseVersion (major upgrade); a tier change restarts the instance."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            restart = sqlrules.apply_patch(instance, body)
            self._addresses(instance)
            work = self._run((project, name)) if restart else None
            return self._operation(instance, "UPDATE", work, lambda: None)

    def delete(self, project: str, name: str) -> Json:
        """instances.delete: refused while deletion protection is on; the data goes with it."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            if instance["settings"].get("deletionProtectionEnabled"):
                raise SqlError(
                    400, "deletionProtectionEnabled",
                    "The instance is protected from deletion. Disable deletion protection and try again.",
                    status="FAILED_PRECONDITION",
                )
            key = (project, name)
            instance["state"] = "PENDING_DELETE"
            if self.plane is not None:
                self.plane.delete(_key(key))
                self.plane.plane.drop_shared(socket_volume(str(instance["connectionName"])))

            def deleted() -> None:
                for table in (self.instances, self.databases, self.users, self._passwords):
                    table.pop(key, None)
                self.taken.add(key)

            return self._operation(instance, "DELETE", None, deleted)

    def restart(self, project: str, name: str) -> Json:
        """instances.restart."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            if self.plane is not None:
                self.plane.plane.recreate(_key((project, name)))
            return self._operation(instance, "RESTART", self._run((project, name)), lambda: None)

    # --- databases and users -------------------------------------------------------------------

    def insert_database(self, project: str, name: str, body: Json) -> Json:
        """databases.insert."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            db = sqlrules.check_database_name(str(body.get("name", "")))
            found = self.databases[(project, name)]
            if db in found:
                raise SqlError(409, "databaseAlreadyExists", f"Database '{db}' already exists.")
            work = self._sql((project, name), "create_database", db, GROUP_ROLE)

            def made() -> None:
                found[db] = sqlrules.database(project, name, db, body)

            return self._operation(instance, "CREATE_DATABASE", work, made)

    def delete_database(self, project: str, name: str, db: str) -> Json:
        """databases.delete."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            found = self.databases[(project, name)]
            if db not in found:
                raise SqlError(404, "notFound", f"Database '{db}' does not exist.", status="NOT_FOUND")
            work = self._sql((project, name), "drop_database", db)
            return self._operation(instance, "DELETE_DATABASE", work, lambda: found.pop(db, None))

    def get_database(self, project: str, name: str, db: str) -> Json:
        """databases.get."""
        with self.lock:
            self._settle()
            self._instance(project, name)
            found = self.databases[(project, name)].get(db)
            if found is None:
                raise SqlError(404, "notFound", f"Database '{db}' does not exist.", status="NOT_FOUND")
            return copy.deepcopy(found)

    def list_databases(self, project: str, name: str) -> Json:
        """databases.list."""
        with self.lock:
            self._settle()
            self._instance(project, name)
            items = [copy.deepcopy(d) for _, d in sorted(self.databases[(project, name)].items())]
            return {"kind": "sql#databasesList", "items": items}

    def insert_user(self, project: str, name: str, body: Json) -> Json:
        """users.insert: a login role in cloudsqlsuperuser."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            user = sqlrules.check_user_name(str(body.get("name", "")))
            found = self.users[(project, name)]
            if user in found:
                raise SqlError(409, "userAlreadyExists", f"User '{user}' already exists.")
            password = str(body.get("password") or "")
            work = self._sql((project, name), "ensure_user", user, password, GROUP_ROLE)
            return self._operation(instance, "CREATE_USER", work, self._add_user(project, name, user))

    def update_user(self, project: str, name: str, user: str, body: Json) -> Json:
        """users.update (?name=): sets a user's password; 404 for a user there is not."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            if user not in self.users[(project, name)]:
                raise SqlError(404, "notFound", f"User '{user}' does not exist.", status="NOT_FOUND")
            password = str(body.get("password") or "")
            if user == "postgres":
                self._passwords[(project, name)] = password
                work = self._run((project, name))
            else:
                work = self._sql((project, name), "ensure_user", user, password, GROUP_ROLE)
            return self._operation(instance, "UPDATE_USER", work, self._add_user(project, name, user))

    def delete_user(self, project: str, name: str, user: str) -> Json:
        """users.delete (?name=)."""
        with self.lock:
            self._settle()
            instance = self._idle(project, name)
            found = self.users[(project, name)]
            if user not in found:
                raise SqlError(404, "notFound", f"User '{user}' does not exist.", status="NOT_FOUND")
            work = self._sql((project, name), "drop_user", user)
            return self._operation(instance, "DELETE_USER", work, lambda: found.pop(user, None))

    def list_users(self, project: str, name: str) -> Json:
        """users.list (never a password)."""
        with self.lock:
            self._settle()
            self._instance(project, name)
            items = [copy.deepcopy(u) for _, u in sorted(self.users[(project, name)].items())]
            return {"kind": "sql#usersList", "items": items}

    # --- operations ----------------------------------------------------------------------------

    def get_operation(self, project: str, op: str) -> Json:
        """operations.get."""
        with self.lock:
            self._settle()
            found = self.operations.get(op)
            if found is None or found["targetProject"] != project:
                message = f"The operation '{op}' does not exist."
                raise SqlError(404, "operationDoesNotExist", message, status="NOT_FOUND")
            return copy.deepcopy(found)

    def list_operations(self, project: str, instance: str) -> Json:
        """operations.list (?instance=), newest first."""
        with self.lock:
            self._settle()
            items = [copy.deepcopy(o) for o in reversed(list(self.operations.values()))
                     if o["targetProject"] == project and o["targetId"] == instance]
            return {"kind": "sql#operationsList", "items": items}

    def address(self, project: str, name: str) -> str:
        """Where this machine reaches an instance's PostgreSQL (port 5432)."""
        return self._loopback(_key((project, name)))

    # --- internals ------------------------------------------------------------------------------

    def _operation(self, instance: Json, kind: str, work: Check | None, finish: Finish) -> Json:
        """Record a RUNNING operation on an instance; `finish` runs once its time has come and its
        work is done (an error in the work ends it DONE with `error`)."""
        name = str(uuid.uuid4())
        op = sqlrules.operation(instance["project"], instance["name"], kind, name)
        self.operations[name] = op
        self._due[name] = (self.clock() + self.op_seconds, work, finish)
        return copy.deepcopy(op)

    def _settle(self) -> None:
        """End every operation whose time has come and whose work is done."""
        now = self.clock()
        for name, (due, work, finish) in list(self._due.items()):
            verdict = work() if work is not None and due <= now else True
            if due > now or verdict is False:
                continue
            del self._due[name]
            op = self.operations[name]
            op.update(status="DONE", endTime=sqlrules.now())
            if isinstance(verdict, str):
                op["error"] = sqlrules.operation_error(verdict)
                instance = self.instances.get((op["targetProject"], op["targetId"]))
                if instance is not None and op["operationType"] == "CREATE":
                    instance["state"] = "FAILED"
                continue
            finish()

    def _busy(self, project: str, name: str) -> bool:
        """True while an operation runs on an instance."""
        return any(o["targetProject"] == project and o["targetId"] == name for n, o in self.operations.items()
                   if n in self._due)

    def _instance(self, project: str, name: str) -> Json:
        """An instance, or 404 instanceDoesNotExist."""
        instance = self.instances.get((project, name))
        if instance is None:
            raise SqlError(404, "instanceDoesNotExist", "The Cloud SQL instance does not exist.", status="NOT_FOUND")
        return instance

    def _idle(self, project: str, name: str) -> Json:
        """An instance no operation runs on, or 409 operationInProgress."""
        instance = self._instance(project, name)
        if self._busy(project, name):
            raise SqlError(409, "operationInProgress",
                           "Operation failed because another operation was already in progress.", status="ABORTED")
        return instance

    def _view(self, instance: Json) -> Json:
        """What instances.get returns (the etag follows the settings)."""
        view = copy.deepcopy(instance)
        view["etag"] = hashlib.sha256(repr(sorted(instance["settings"].items())).encode()).hexdigest()[:32]
        return view

    def _addresses(self, instance: Json) -> None:
        """PRIMARY (public) and PRIVATE addresses as the ip configuration asks."""
        key = _key((instance["project"], instance["name"]))
        ip = instance["settings"].get("ipConfiguration") or {}
        addresses = []
        if ip.get("ipv4Enabled", True):
            addresses.append({"type": "PRIMARY", "ipAddress": self._loopback(key)})
        if ip.get("privateNetwork"):
            private = self.plane.address(key) if self.plane is not None else ""
            addresses.append({"type": "PRIVATE", "ipAddress": private or _fake_private(key)})
        instance["ipAddresses"] = addresses

    def _loopback(self, key: str) -> str:
        """An instance's own loopback address (PRIMARY): the data plane's (apart for each emulator), else one
        stable for its key."""
        return str(self.plane.plane.loopback(key)) if self.plane is not None else instance_address(key)

    def _run(self, key: tuple[str, str]) -> Check | None:
        """Run (or re-run) an instance on the data plane; the check says when it answers."""
        if self.plane is None:
            return None
        from multicloud_docker.dataplane.postgres import Server

        plane, unit = self.plane, _key(key)
        connection = self.instances[key]["connectionName"]
        plane.run(Server(unit, "postgres", self._passwords[key], GROUP_ROLE, self._loopback(unit),
                         network=self.network or None, sockets=socket_volume(connection)))

        def ready() -> bool | str:
            verdict = plane.ready(unit)
            if verdict is True and key in self.instances:
                self._addresses(self.instances[key])
            return verdict

        return ready

    def _sql(self, key: tuple[str, str], action: str, *args: str) -> Check | None:
        """Run a database or user change in the instance's PostgreSQL, in the background."""
        if self.plane is None:
            return None
        from multicloud_docker.dataplane import postgres

        plane, unit = self.plane, _key(key)
        return postgres.in_background(lambda: getattr(postgres, action)(plane, unit, *args), "cloudsql-work")

    def _add_user(self, project: str, name: str, user: str) -> Finish:
        """What a finished user operation records."""
        return lambda: self.users[(project, name)].setdefault(user, sqlrules.user(project, name, user))


def socket_volume(connection: str) -> str:
    """The data plane's shared volume holding an instance's socket (what Cloud Run's connector
    gives a revision that mounts a cloud_sql_instance volume)."""
    return "cloudsql-" + hashlib.sha256(connection.encode()).hexdigest()[:16]


def _key(key: tuple[str, str]) -> str:
    """The data plane's key of an instance."""
    return f"cloudsql/{key[0]}/{key[1]}"


def instance_address(key: str) -> str:
    """An instance's own loopback address (PRIMARY), stable for its key."""
    return loopback_address(key)


def _fake_private(key: str) -> str:
    """A stable made-up private address (no data plane)."""
    digest = hashlib.sha256(key.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{max(2, digest[2])}"
