"""What a unit's containers are doing, read from the engine: the facts an emulator reports
(ACI instanceView, ECS task status, Cloud Run conditions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["waiting", "running", "terminated"]


@dataclass(frozen=True)
class MemberState:
    """One member container now: state, exit code, times (RFC 3339), restarts and health."""

    name: str
    state: State
    container: str = ""
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    restarts: int = 0
    health: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class UnitState:
    """A unit now: converged once every desired container exists; `error` says why not."""

    key: str
    converged: bool
    error: str | None = None
    members: Mapping[str, MemberState] = field(default_factory=dict)
    address: str = ""


def member_state(name: str, info: Mapping[str, Any], extra_restarts: int = 0) -> MemberState:
    """A member's state from `docker inspect`: running, waiting (created, restarting) or terminated."""
    state = info.get("State") or {}
    status = str(state.get("Status", ""))
    health = (state.get("Health") or {}).get("Status")
    exit_code = state.get("ExitCode")
    restarts = int(info.get("RestartCount") or 0) + extra_restarts
    common: dict[str, Any] = {
        "container": str(info.get("Id", "")),
        "restarts": restarts,
        "health": str(health) if health else None,
        "started_at": _time(state.get("StartedAt")),
    }
    if status == "running":
        return MemberState(name, "running", **common)
    if status in ("exited", "dead"):
        detail = str(state.get("Error") or ("Completed" if exit_code == 0 else "Error"))
        finished = _time(state.get("FinishedAt"))
        code = int(exit_code or 0)
        return MemberState(name, "terminated", exit_code=code, finished_at=finished, detail=detail, **common)
    waiting = "CrashLoopBackOff" if status == "restarting" else "ContainerCreating"
    return MemberState(name, "waiting", detail=waiting, **common)


def _time(value: Any) -> str:
    text = str(value or "")
    return "" if not text or text.startswith("0001-") else text
