"""The emulated flexible servers' stored records: a server, a long-running operation and its status
now, and the ids and errors ARM names them by."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from multicloud_azure.emulator.arm import now_iso
from multicloud_azure.emulator.validation import ArmError

RESOURCE_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
Check = Callable[[], "bool | str"]


@dataclass
class FlexOperation:
    """A long-running operation: done once its time has come and its work (if any) is."""

    id: str
    subscription: str
    location: str
    done_at: float
    work: Check | None = None
    failed: str | None = None


@dataclass
class FlexServer:
    """One server as stored: the PUT body (password apart), its children and what it is doing."""

    subscription: str
    resource_group: str
    name: str
    body: dict[str, Any]
    password: str
    state: str = "Provisioning"
    operation: FlexOperation | None = None
    created: str = field(default_factory=now_iso)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    firewall: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: bool = False


def operation_status(op: FlexOperation, now: float) -> str:
    """An operation's status now."""
    if now < op.done_at:
        return "InProgress"
    if op.failed is None and op.work is not None:
        outcome = op.work()
        if isinstance(outcome, str):
            op.failed = outcome
        elif not outcome:
            return "InProgress"
        op.work = None
    return "Failed" if op.failed else "Succeeded"


def plane_key(server: FlexServer) -> str:
    """The data plane's key of a server."""
    return f"azure-pg/{server.subscription}/{server.resource_group.lower()}/{server.name}"


def resource_id(sub: str, rg: str, name: str) -> str:
    """The ARM resource id of a server."""
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{RESOURCE_TYPE}/{name}"


def not_found(kind: str, name: str, rg: str) -> ArmError:
    """ARM's 404 for a missing resource."""
    return ArmError(404, "ResourceNotFound", f"The Resource '{kind}/{name}' under resource group '{rg}' was not found.")
