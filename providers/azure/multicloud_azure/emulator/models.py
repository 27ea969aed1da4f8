"""The emulator's state: container groups, long-running operations, faults and a request log.

Kept apart from HTTP handling (moto's models/responses split). Time moves lazily: every read
works out from the clock what a group looks like now, so there are no background threads.
"""

from __future__ import annotations

import copy
import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from multicloud_azure.emulator import running
from multicloud_azure.emulator.arm import Fault, Operation, RequestLog, RequestRecord, location_name, now_iso
from multicloud_azure.emulator.flexible import FlexibleServers
from multicloud_azure.emulator.validation import (
    ArmError,
    check_capacity,
    check_updatable,
    validate_group,
    validate_update,
)

if TYPE_CHECKING:
    from multicloud_azure.emulator.acr import AcrBackend

RESOURCE_TYPE = "Microsoft.ContainerInstance/containerGroups"
LOG_CAP = 4 * 1024 * 1024


@dataclass
class Group:
    """One container group as stored: the PUT body (secure values included) and its history."""

    subscription: str
    resource_group: str
    name: str
    body: dict[str, Any]
    ready_at: float
    state: str = "Creating"
    deleting_until: float | None = None
    failure: str | None = None
    stopped: bool = False
    started_wall: str = ""
    restarts: dict[str, int] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)


class AciBackend(RequestLog):
    """ACI control-plane state for every subscription and resource group, thread-safe."""

    def __init__(
        self, *, token: str | None = None, op_seconds: float = 0.05, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.token = token
        self.op_seconds = op_seconds
        self.clock = clock
        self.page_size = 100
        self.groups: dict[tuple[str, str, str], Group] = {}
        self.operations: dict[str, Operation] = {}
        self.faults: list[Fault] = []
        self.failures: list[str] = []
        self.region_cpu: float | None = None
        """CPU free per region across every group (None: unlimited); beyond it PUTs get 409 ServiceUnavailable."""
        self.requests: list[RequestRecord] = []
        self.watchers: list[Callable[[str, str, int], None]] = []
        """Called with (method, path, status) once a request took effect (kill trials)."""
        self.lock = threading.RLock()
        self.runner: running.GroupRunner | None = None
        """The data plane that runs the groups' containers; None serves the API only."""
        self.acr: AcrBackend | None = None
        """The emulated container registries (Microsoft.ContainerRegistry); None serves none."""
        self.postgres: FlexibleServers | None = None
        """The emulated Azure Database for PostgreSQL flexible servers; None serves none."""

    # --- test controls ---------------------------------------------------------------------

    def fail_next_operations(self, message: str, times: int = 1) -> None:
        """Make the next `times` create/update operations end Failed (provisioningState Failed)."""
        with self.lock:
            self.failures += [message] * times

    def reset(self) -> None:
        """Forget every group, operation, fault and request."""
        with self.lock:
            self.groups.clear()
            self.operations.clear()
            self.faults.clear()
            self.failures.clear()
            self.region_cpu = None
            self.requests.clear()
        if self.postgres is not None:
            self.postgres.reset()

    def append_log(self, subscription: str, resource_group: str, name: str, container: str, line: str) -> None:
        """Make a container print a line (what `container logs` returns)."""
        with self.lock:
            _log(self._live(subscription, resource_group, name), container, line)

    # --- ARM operations ----------------------------------------------------------------------

    def put(self, sub: str, rg: str, name: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any], Operation]:
        """Create or update a group; return (201 or 200, its view, the operation)."""
        validate_group(name, body)
        with self.lock:
            now = self.clock()
            existing = self._find(sub, rg, name)
            if existing is not None and (existing.deleting_until is not None or existing.ready_at > now):
                raise ArmError(
                    409, "ContainerGroupTransitioning",
                    f"The container group '{name}' is still transitioning, please retry later.",
                )
            self._check_capacity(sub, rg, name, body)
            if existing is not None:
                check_updatable(name, self.view(existing)["properties"]["instanceView"]["state"])
            self._check_dns_label(sub, rg, name, body)
            stored = copy.deepcopy(dict(body))
            stored["location"] = location_name(stored["location"])
            if existing is not None:
                validate_update(name, existing.body, stored)
                existing.body, existing.state, existing.ready_at = stored, "Updating", now + self.op_seconds
                existing.stopped, existing.restarts = False, {}
                group, status, kind = existing, 200, "update"
            else:
                group = Group(sub, rg, name, stored, ready_at=now + self.op_seconds)
                self.groups[(sub, rg, name)] = group
                status, kind = 201, "create"
            group.started_wall = now_iso()
            group.failure = self.failures.pop(0) if self.failures else None
            for container in stored["properties"]["containers"]:
                line = f"[emulator] container {container['name']} started from {container['properties']['image']}"
                _log(group, container["name"], line)
            op = self._operation(kind, group, now)
            op.failed = group.failure
            if self.runner is not None and group.failure is None:
                self.runner.run(_key(group), stored)
            return status, self.view(group), op

    def get(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        """Return a group's view; 404 when it does not exist."""
        with self.lock:
            return self.view(self._live(sub, rg, name))

    def list(self, sub: str, rg: str | None) -> list[dict[str, Any]]:
        """Views of every group in a subscription, or in one of its resource groups."""
        with self.lock:
            found = [g for g in self.groups.values() if g.subscription == sub and rg in (None, g.resource_group)]
            found.sort(key=lambda g: (g.resource_group, g.name))
            return [self.view(g) for g in found if self._alive(g)]

    def delete(self, sub: str, rg: str, name: str) -> Operation | None:
        """Start deleting a group; None when there is nothing to delete (ARM answers 204)."""
        with self.lock:
            group = self._find(sub, rg, name)
            if group is None or not self._alive(group):
                return None
            now = self.clock()
            if group.deleting_until is None:
                group.deleting_until = now + self.op_seconds
                group.state = "Deleting"
                if self.runner is not None:
                    self.runner.remove(_key(group))
            return self._operation("delete", group, now)

    def restart(self, sub: str, rg: str, name: str) -> Operation:
        """Restart every container of a group in place."""
        return self._run(sub, rg, name, "restart")

    def start(self, sub: str, rg: str, name: str) -> Operation:
        """Start a stopped group."""
        return self._run(sub, rg, name, "start")

    def _run(self, sub: str, rg: str, name: str, kind: str) -> Operation:
        """(Re)start a group's containers: Updating until the operation ends; restart counts."""
        with self.lock:
            group = self._live(sub, rg, name)
            now = self.clock()
            group.ready_at, group.state, group.stopped = now + self.op_seconds, "Updating", False
            if kind == "restart":
                group.logs.clear()  # ACI's log is the current container's: a restart starts it afresh
                for container in group.body["properties"]["containers"]:
                    group.restarts[container["name"]] = group.restarts.get(container["name"], 0) + 1
            if self.runner is not None:
                self.runner.run(_key(group), group.body)
                if kind == "restart":
                    self.runner.restart(_key(group))
            return self._operation(kind, group, now)

    def stop(self, sub: str, rg: str, name: str) -> None:
        """Stop every container of a group at once (not a long-running operation)."""
        with self.lock:
            group = self._live(sub, rg, name)
            group.stopped = True
            if self.runner is not None:
                self.runner.remove(_key(group))

    def logs(
        self, sub: str, rg: str, name: str, container: str, tail: int | None, *, timestamps: bool = False
    ) -> str:
        """A container's log as ACI returns it: one string, each line after its time when `timestamps`."""
        with self.lock:
            group = self._with_container(sub, rg, name, container)
            if self.runner is not None:
                return self.runner.logs(_key(group), container, tail, timestamps)
            lines = group.logs.get(container, [])
            lines = lines[-tail:] if tail else lines
            return "".join((line if timestamps else line.partition(" ")[2]) + "\n" for line in lines)

    def exec_target(self, sub: str, rg: str, name: str, container: str) -> str:
        """The data plane's key of the group whose container an exec may run in (ArmError as ACI's:
        no such group or container; 409 when nothing runs containers)."""
        with self.lock:
            group = self._with_container(sub, rg, name, container)
            if self.runner is None:
                message = "This emulator runs no containers (started with --no-run)."
                raise ArmError(409, "ContainerGroupNotRunning", message)
            return _key(group)

    def exec_connection(self, key: str, container: str, command: str, size: tuple[int, int]
                        ) -> socket.socket | None:
        """Start `command` (one program, as ACI runs it) in the container's terminal of `size` rows x
        columns; its connection, or None when the container is not running."""
        return None if self.runner is None else self.runner.exec(key, container, [command], size)

    def operation(self, sub: str, op_id: str) -> tuple[Operation, str]:
        """An operation and its status now: InProgress, Succeeded or Failed."""
        with self.lock:
            op = self.operations.get(op_id)
            if op is None or op.group[0] != sub:
                raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
            if self.clock() < op.done_at:
                return op, "InProgress"
            if self.runner is not None and not op.failed:
                state = self.runner.state(running.group_key(*op.group))
                if state.error:
                    op.failed = f"the container group's containers failed to start: {state.error}"
                elif not state.converged:
                    return op, "InProgress"
            return op, ("Failed" if op.failed else "Succeeded")

    # --- views -------------------------------------------------------------------------------

    def view(self, group: Group) -> dict[str, Any]:
        """What GET returns: the stored body without secrets, plus read-only state."""
        now = self.clock()
        ready = now >= group.ready_at
        body = copy.deepcopy(group.body)
        props = body["properties"]
        provisioning = group.state if not ready or group.state == "Deleting" else (
            "Failed" if group.failure else "Succeeded"
        )
        props["provisioningState"] = provisioning
        props.setdefault("sku", "Standard")
        props.setdefault("restartPolicy", "Always")
        for registry in props.get("imageRegistryCredentials") or []:
            registry.pop("password", None)
        for volume in props.get("volumes") or []:
            if "secret" in volume:
                volume["secret"] = {}
        state = "Stopped" if group.stopped else ("Running" if ready and not group.failure else "Pending")
        real = self.runner.state(_key(group)) if self.runner is not None and not group.stopped else None
        if real is not None and state == "Running":
            state = running.group_state(real, [c["name"] for c in props["containers"]])
        for container in props["containers"]:
            cprops = container["properties"]
            for var in cprops.get("environmentVariables") or []:
                var.pop("secureValue", None)
            cprops["instanceView"] = (
                running.container_view(real, container["name"]) if real is not None
                else self._container_view(group, container["name"], state)
            )
        props["instanceView"] = {"state": state, "events": []}
        ip = props.get("ipAddress")
        if ip is not None:
            ip["ip"] = _fake_ip(group) if ip.get("type") == "Public" else "10.0.0.4"
            if self.runner is not None and ip.get("type") == "Public":
                ip["ip"] = self.runner.address(_key(group))
            if ip.get("dnsNameLabel"):
                ip["fqdn"] = f"{ip['dnsNameLabel']}.{body['location']}.azurecontainer.io"
        return {
            "id": _resource_id(group.subscription, group.resource_group, group.name),
            "name": group.name,
            "type": RESOURCE_TYPE,
            **body,
        }

    def _container_view(self, group: Group, name: str, state: str) -> dict[str, Any]:
        """A container's instanceView for a group state."""
        if state == "Running":
            current: dict[str, Any] = {"state": "Running", "startTime": group.started_wall, "detailStatus": ""}
        elif state == "Stopped":
            current = {"state": "Terminated", "exitCode": 0, "detailStatus": "Stopped"}
        else:
            current = {"state": "Waiting", "detailStatus": group.failure or "ContainerCreating"}
        return {"restartCount": group.restarts.get(name, 0), "currentState": current, "events": []}

    # --- internals ---------------------------------------------------------------------------

    def _operation(self, kind: str, group: Group, now: float) -> Operation:
        """Record a new long-running operation on a group, done after op_seconds."""
        op = Operation(
            uuid.uuid4().hex, kind, (group.subscription, group.resource_group, group.name),
            group.body["location"], now, now + self.op_seconds,
        )
        self.operations[op.id] = op
        return op

    def _find(self, sub: str, rg: str, name: str) -> Group | None:
        """A group by key, forgetting it once its deletion has finished; None if absent."""
        group = self.groups.get((sub, rg, name))
        if group is not None and group.deleting_until is not None and self.clock() >= group.deleting_until:
            del self.groups[(sub, rg, name)]
            return None
        return group

    def _with_container(self, sub: str, rg: str, name: str, container: str) -> Group:
        """The live group, if it has that container (ArmError 404 as ACI's otherwise)."""
        group = self._live(sub, rg, name)
        if container not in {c["name"] for c in group.body["properties"]["containers"]}:
            message = f"The container '{container}' of group '{name}' was not found."
            raise ArmError(404, "ContainerNotFound", message)
        return group

    def _alive(self, group: Group) -> bool:
        """True until a group's deletion has finished."""
        return group.deleting_until is None or self.clock() < group.deleting_until

    def _live(self, sub: str, rg: str, name: str) -> Group:
        """A group by key; raise ARM's 404 ResourceNotFound when absent."""
        group = self._find(sub, rg, name)
        if group is None:
            raise ArmError(
                404, "ResourceNotFound",
                f"The Resource '{RESOURCE_TYPE}/{name}' under resource group '{rg}' was not found.",
            )
        return group

    def _check_capacity(self, sub: str, rg: str, name: str, body: Mapping[str, Any]) -> None:
        """Raise 409 ServiceUnavailable when the region lacks the CPU the group asks for now."""
        if self.region_cpu is not None:
            others = [g.body for k, g in self.groups.items() if k != (sub, rg, name) and self._find(*k) is not None]
            check_capacity(location_name(str(body["location"])), body, others, self.region_cpu)

    def _check_dns_label(self, sub: str, rg: str, name: str, body: Mapping[str, Any]) -> None:
        """Raise 409 DnsNameLabelNotAvailable when another group in the region has the label."""
        label = ((body.get("properties") or {}).get("ipAddress") or {}).get("dnsNameLabel")
        if not label:
            return
        location = location_name(str(body["location"]))
        for key, other in list(self.groups.items()):
            if key == (sub, rg, name) or self._find(*key) is None:
                continue
            other_ip = other.body["properties"].get("ipAddress") or {}
            if other_ip.get("dnsNameLabel") == label and other.body["location"] == location:
                raise ArmError(
                    409, "DnsNameLabelNotAvailable",
                    f"The DNS name label '{label}' in container group '{name}' not available. "
                    "Try using a different label.",
                )


def _log(group: Group, container: str, line: str) -> None:
    """Append a line, after its time, to a container's log, which ACI caps at 4 MB (oldest dropped)."""
    lines = group.logs.setdefault(container, [])
    lines.append(f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {line}")
    size = sum(len(item) + 1 for item in lines)
    while size > LOG_CAP and lines:
        size -= len(lines.pop(0)) + 1


def _key(group: Group) -> str:
    """The data plane's key of a group."""
    return running.group_key(group.subscription, group.resource_group, group.name)


def _resource_id(sub: str, rg: str, name: str) -> str:
    """The ARM resource id of a container group."""
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{RESOURCE_TYPE}/{name}"


def _fake_ip(group: Group) -> str:
    """A stable made-up public IP for a group."""
    digest = hashlib.sha256(f"{group.subscription}/{group.resource_group}/{group.name}".encode()).digest()
    return f"20.{digest[0]}.{digest[1]}.{max(1, digest[2])}"
