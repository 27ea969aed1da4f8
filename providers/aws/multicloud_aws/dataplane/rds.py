"""RDS for PostgreSQL on the aws emulator's data plane: a DB instance created through a server that
runs a data plane is a real PostgreSQL (multicloud_docker.dataplane.postgres, the servers the other
emulators run) on its VPC's network, answering there to its endpoint address and to every Cloud Map
name whose CNAME points at that address, and on this machine at a loopback address of its own
(`loopback(identifier, emulator endpoint)`). Its master user and password are the instance's (a new
password re-runs it), its DBName is made for the master user, and it reports `creating` until it
answers, as RDS does for minutes; deleting the instance deletes the server and its data."""

from __future__ import annotations

import threading
import time
from typing import Any

from multicloud.emulators import loopback_address
from multicloud_aws.dataplane.servers import port_of

GROUP_ROLE = "rds_superuser"
"""The role RDS grants the master user."""
READY_TIMEOUT = 300.0
_servers: dict[str, RdsServers] = {}
_lock = threading.Lock()


def attach(port: int | str, servers: RdsServers | None) -> None:
    """Run the instances created through the emulator server on `port` on `servers` (None: stop)."""
    with _lock:
        if servers is None:
            _servers.pop(str(port), None)
        else:
            _servers[str(port)] = servers


def install(patch: Any) -> None:
    """Patch moto's RDS and Cloud Map through gaps' `patch`."""
    from moto.rds.models import RDSBackend
    from moto.servicediscovery.models import ServiceDiscoveryBackend

    patch(RDSBackend, "create_db_instance", _hooked(lambda s, backend, instance: s.created(instance)))
    patch(RDSBackend, "modify_db_instance", _hooked(lambda s, backend, instance: s.run(instance)))
    patch(RDSBackend, "delete_db_instance", _hooked(lambda s, backend, instance: s.deleted(instance)))
    patch(ServiceDiscoveryBackend, "register_instance", _registering)


def _current() -> RdsServers | None:
    """The servers of the emulator server the current call came to, if it runs a data plane."""
    from multicloud_aws.dataplane.servers import calling_port

    with _lock:
        return _servers.get(calling_port())


def _hooked(hook: Any) -> Any:
    """A patch maker that hands the call's result (a DB instance) to the servers, when there are any."""

    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            servers = _current()
            if servers is not None and getattr(result, "engine", "") == "postgres":
                hook(servers, self, result)
            return result

        return patched

    return make


def _registering(original: Any) -> Any:
    """A Cloud Map instance with AWS_INSTANCE_CNAME names the DB instance with that endpoint."""

    def patched(self: Any, service_id: str, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, service_id, instance_id, *args, **kwargs)
        attributes = kwargs.get("attributes") if "attributes" in kwargs else (args[1] if len(args) > 1 else {})
        cname = (attributes or {}).get("AWS_INSTANCE_CNAME")
        servers = _current()
        service = self.services.get(service_id)
        namespace = self.namespaces.get(service.namespace_id) if service is not None else None
        if servers is not None and cname and namespace is not None:
            servers.aliased(str(cname), f"{service.name}.{namespace.name}")
        return result

    return patched


def loopback(identifier: str, server: str | int) -> str:
    """The loopback address this machine reaches an instance at (port 5432) on the emulator serving
    at `server` (its endpoint URL or port): stable for the name, apart for two live emulators."""
    return loopback_address(f"rds/{port_of(server)}/{identifier}")


class RdsServers:
    """The PostgreSQL servers behind one emulator server's RDS instances."""

    def __init__(self, plane: Any, server: str | int) -> None:
        from multicloud_docker.dataplane.postgres import PostgresServers

        self.servers = PostgresServers(plane)
        self.server = str(server)
        self._lock = threading.Lock()
        self._aliases: dict[str, set[str]] = {}
        """Endpoint address -> the Cloud Map names that point at it."""

    def created(self, instance: Any) -> None:
        """Start the instance's server; it is `creating` until the server answers with its database."""
        instance.status = "creating"
        self.run(instance)
        threading.Thread(target=self._settle, args=(instance,), name="rds-create", daemon=True).start()

    def run(self, instance: Any) -> None:
        """Run (or re-run: a new password, a new alias) the instance's server; its data stays."""
        from multicloud_docker.dataplane.postgres import Server

        with self._lock:
            aliases = tuple(sorted(self._aliases.get(instance.address, ())))
        self.servers.run(Server(
            _key(instance), instance.master_username, _password(instance), GROUP_ROLE,
            loopback(instance.db_instance_identifier, self.server), network=_network(instance),
            aliases=(instance.address, *aliases)))

    def deleted(self, instance: Any) -> None:
        """Remove the instance's server and its data."""
        self.servers.delete(_key(instance))

    def aliased(self, address: str, name: str) -> None:
        """Make `name` answer for the instance at `address` (re-running it when it is known)."""
        from moto.rds.models import rds_backends

        with self._lock:
            self._aliases.setdefault(address, set()).add(name)
        for account in rds_backends.values():
            for backend in account.values():
                for instance in list(backend.databases.values()):
                    if instance.address == address and instance.engine == "postgres":
                        self.run(instance)

    def _settle(self, instance: Any) -> None:
        """Wait for the server, make the instance's database, then report it `available` (or `failed`)."""
        from multicloud_docker.dataplane.postgres import create_database

        key = _key(instance)
        deadline = time.monotonic() + READY_TIMEOUT
        while (verdict := self.servers.ready(key)) is not True:
            if isinstance(verdict, str) or time.monotonic() > deadline:
                instance.status = "failed"
                return
            time.sleep(0.5)
        try:
            if instance.db_name:
                create_database(self.servers, key, instance.db_name, instance.master_username)
        except Exception:  # the server refused it: RDS reports the instance failed
            instance.status = "failed"
            return
        instance.status = "available"


def _password(instance: Any) -> str:
    """The master password as last set (moto's property refuses reads, as the RDS API does)."""
    return str(getattr(instance, "_master_user_password", "") or "")


def _key(instance: Any) -> str:
    return f"rds-{instance.db_instance_identifier}"


def _network(instance: Any) -> str:
    """The data-plane network of the instance's VPC (its subnet group's, else the default VPC's),
    where the ECS tasks of that VPC run."""
    from moto.ec2.models import ec2_backends

    vpc = getattr(getattr(instance, "db_subnet_group", None), "vpc_id", None)
    if not vpc:
        vpcs = ec2_backends[instance.account_id][instance.region].vpcs.values()
        vpc = next((v.id for v in vpcs if getattr(v, "is_default", False)), None)
    return f"vpc-{vpc}" if vpc else f"awsvpc-{instance.region}"
