"""Replica containers: create one from a service's properties, wait for it, remove it."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multicloud.errors import NotFoundError
from multicloud.resources import Resource, Sensitive
from multicloud.spec.placeholders import SECRETS_DIR
from multicloud.spec.units import parse_memory
from multicloud_docker import healthcheck
from multicloud_docker import labels as L
from multicloud_docker.client import ConflictError, guard

READ_ONLY_TMPFS = {"/tmp": "rw,nosuid,nodev,size=64m"}
RESTART_RETRIES = 3
"""The engine restarts a crashed replica this many times between applies; after that it stays
exited, so a replica that always crashes is reported (plan, status) rather than hidden in a
restart loop. A replica stopped with `docker kill`/`stop` is not restarted: plan shows it."""
SETTLE_SECONDS = 1.0
"""A replica without a health check counts as healthy once it has run this long."""


PROBE_POLL = 0.02
"""How often a probe run by `probe_passes` is checked for having ended."""
ENGINE_SOON = 1.0
"""A check whose interval is at most this many seconds is left to the engine: its first run comes
about as soon as the provider's own would (see `probe_now`)."""


@dataclass(frozen=True)
class Readiness:
    """Where one container stands: ready, failed (with why), or still starting (with why);
    `checking` when it runs and the engine's health check has not passed or failed it yet."""

    ready: bool
    failed: bool
    message: str
    checking: bool = False


def create_replica(api: Any, app: str, resource: Resource, index: int, generation: str) -> str:
    """Create, fill (secrets) and start one replica of a generation; return its name. A
    failure part-way leaves a labelled container that is not running, which the next plan
    reports as a fault of its generation."""
    props = resource.properties
    digest = L.spec_hash(props)
    name = L.container_name(app, resource.name, index, generation)
    labels = L.owned(
        app,
        resource.key,
        {k: v for k, v in props.items() if k != L.SCALE_PROPERTY},
        resource.target,
        **{
            L.SERVICE: resource.name,
            L.REPLICA: str(index),
            L.SPEC_HASH: digest,
            L.GENERATION: generation,
            L.CREATED_NS: str(time.time_ns()),
            L.DEPENDS_ON: ",".join(resource.depends_on),
        },
    )
    ports = props["ports"]
    secrets: Mapping[str, Sensitive] = props.get("secrets") or {}
    security = props["security"]
    with guard(f"creating container {name}"):
        host_config = api.create_host_config(
            port_bindings={
                f"{p['port']}/{_transport(p)}": (p["host_ip"], p["host_port"] or None)
                for p in ports
                if p["host_port"] is not None
            },
            binds=[f"{v['volume']}:{v['target']}:{'ro' if v['read_only'] else 'rw'}" for v in props["volumes"]],
            restart_policy={"Name": "on-failure", "MaximumRetryCount": RESTART_RETRIES},
            cap_drop=list(security["cap_drop"]),
            cap_add=list(security["cap_add"]) or None,
            security_opt=["no-new-privileges"] if security["no_new_privileges"] else None,
            privileged=bool(security["privileged"]),
            init=bool(security["init"]),
            read_only=bool(props["read_only"]),
            tmpfs=dict(READ_ONLY_TMPFS) if props["read_only"] else None,
            nano_cpus=round(float(props["cpu"]) * 1e9),
            mem_limit=parse_memory(str(props["memory"])),
            network_mode=props["network"],
        )
        networking = api.create_networking_config(
            {props["network"]: api.create_endpoint_config(aliases=[resource.name, f"{resource.name}-{index}"])}
        )
        created = api.create_container(
            image=props["image"],
            name=name,
            command=_reveal(props["command"]),
            entrypoint=_reveal(props["entrypoint"]),
            environment=[f"{k}={_plain(v)}" for k, v in props["env"].items()],
            user=props["user"] or None,
            hostname=f"{resource.name}-{index}",
            labels=labels,
            ports=[(p["port"], _transport(p)) for p in ports],
            volumes=[SECRETS_DIR] if secrets else None,
            healthcheck=healthcheck.docker_healthcheck(props["healthcheck"]),
            host_config=host_config,
            networking_config=networking,
        )
    ident = str(created["Id"])
    if secrets:
        with guard(f"writing secrets into {name}"):
            api.put_archive(ident, SECRETS_DIR, secrets_archive(secrets))
    with guard(f"starting container {name}"):
        api.start(ident)
    return name


def secrets_archive(secrets: Mapping[str, Sensitive]) -> bytes:
    """A tar of one read-only file per secret, for the container's /run/secrets volume."""
    return files_archive({name: value.reveal().encode() for name, value in secrets.items()})


def files_archive(files: Mapping[str, bytes]) -> bytes:
    """A tar of one read-only file per entry (name -> content), for `put_archive` into a directory."""
    import tarfile  # only applies that start containers with secrets need it (a few ms to import)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o444
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remove(api: Any, ident: str, name: str, stop_timeout: int) -> None:
    """Stop (SIGTERM, then SIGKILL after stop_timeout) and remove a container with its
    anonymous volumes (the secrets); gone already counts as done."""
    try:
        with guard(f"stopping container {name}"):
            api.stop(ident, timeout=stop_timeout)
    except NotFoundError:
        return
    except ConflictError as exc:
        if "already in progress" not in exc.message:
            raise
        return
    discard(api, ident, name)


def discard(api: Any, ident: str, name: str) -> None:
    """Kill and remove a container with its anonymous volumes; gone, or already being
    removed, counts as done."""
    try:
        with guard(f"removing container {name}"):
            api.remove_container(ident, v=True, force=True)
    except NotFoundError:
        return
    except ConflictError as exc:
        if "already in progress" not in exc.message:
            raise


def readiness(api: Any, ident: str, now: Callable[[], float] = time.time) -> Readiness:
    """Inspect one container: ready when running and healthy (or, with no health check,
    running for a second without restarts); failed when it exited, crash-loops, is unhealthy or
    was never started."""
    try:
        with guard(f"inspecting container {ident[:12]}"):
            info = api.inspect_container(ident)
    except NotFoundError:
        return Readiness(False, True, "container was removed")
    state = info.get("State") or {}
    name = str(info.get("Name", ident[:12])).lstrip("/")
    status = str(state.get("Status", ""))
    restarts = int(info.get("RestartCount") or 0)
    if status in ("exited", "dead"):
        return Readiness(False, True, f"{name} exited with code {state.get('ExitCode')}")
    if restarts >= 3:
        return Readiness(False, True, f"{name} keeps crashing (restarted {restarts} times)")
    if status == "created":  # a create returns once its replicas are started: nothing will start this one
        return Readiness(False, True, f"{name} was created but never started")
    if status != "running":
        return Readiness(False, False, f"{name} is {status or 'not running'}")
    health = state.get("Health")
    if health:
        verdict = str(health.get("Status", ""))
        if verdict == "healthy":
            return Readiness(True, False, f"{name} is healthy")
        if verdict == "unhealthy":
            return Readiness(False, True, f"{name} failed its health check: {_last_probe(health)}")
        return Readiness(False, False, f"{name} health: {verdict or 'starting'}", checking=True)
    started = _timestamp(str(state.get("StartedAt", "")))
    if restarts == 0 and started is not None and now() - started >= SETTLE_SECONDS:
        return Readiness(True, False, f"{name} is running")
    return Readiness(False, False, f"{name} just started")


def probe_now(api: Any, ident: str, check: Mapping[str, Any] | None) -> bool:
    """Whether a replica the engine has not passed yet passes its check when run now: for checks
    whose interval puts the engine's first run later than ENGINE_SOON (False for the others)."""
    if not check or float(check["interval"]) <= ENGINE_SOON:
        return False
    return probe_passes(api, ident, check)


def probe_passes(api: Any, ident: str, check: Mapping[str, Any], clock: Callable[[], float] = time.monotonic) -> bool:
    """Run a replica's health check once now, as the engine runs it (exec in the container, as its
    user), and say whether it exited 0 within the check's timeout. Engine 20.10 runs its first check
    one interval after the start (start_interval needs API 1.44), so health() runs it meanwhile.
    A probe still running at the timeout is left to end on its own (the engine cannot stop an exec)."""
    test = list(check["test"])
    command = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    with guard(f"running the health check in {ident[:12]}"):
        made = api.exec_create(ident, command, stdout=False, stderr=False)
        api.exec_start(made["Id"], detach=True)
        deadline = clock() + max(float(check["timeout"]), PROBE_POLL)
        while True:
            info = api.exec_inspect(made["Id"])
            if not info.get("Running"):
                return bool(info.get("ExitCode") == 0)
            if clock() >= deadline:
                return False
            time.sleep(PROBE_POLL)


def _transport(port: Mapping[str, Any]) -> str:
    return "udp" if port["protocol"] == "udp" else "tcp"


def _plain(value: Any) -> str:
    return value.reveal() if isinstance(value, Sensitive) else str(value)


def _reveal(values: list[Any] | None) -> list[str] | None:
    return [_plain(v) for v in values] if values else None


def _last_probe(health: Mapping[str, Any]) -> str:
    log = health.get("Log") or []
    if not log:
        return "no probe output"
    last = log[-1]
    output = " ".join(str(last.get("Output", "")).split())
    return f"exit {last.get('ExitCode')}: {output[:200]}" if output else f"exit {last.get('ExitCode')}"


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of a Docker RFC 3339 timestamp (nanoseconds dropped)."""
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return None
    head = text.rstrip("Z").split(".")[0]
    try:
        return datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return None
