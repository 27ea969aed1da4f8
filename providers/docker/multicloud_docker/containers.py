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
from multicloud_docker.client import ConflictError, guard, proxy_environment

READ_ONLY_TMPFS = {"/tmp": "rw,nosuid,nodev,size=64m"}
RESTART_RETRIES = 3
"""The engine restarts a crashed replica this many times between applies; after that it stays
exited, so a replica that always crashes is reported (plan, status) rather than hidden in a
restart loop. A replica stopped with `docker kill`/`stop` is not restarted: plan shows it."""
SETTLE_SECONDS = 0.5
"""A replica without a health check counts as healthy once it has run this long since its last
start: long enough to see a start that fails at once (a bad command, a missing file), short enough
not to hold an apply back (no check means: running is ready). Each restart doubles it: a replica
that crashed must show it stays up for longer (one crash: 1 s; two: 2 s)."""


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
    secrets: Mapping[str, Sensitive] = props.get("secrets") or {}
    with guard(f"creating container {name}"):
        created = api.create_container_from_config(replica_config(resource, index, labels, proxy_environment()), name)
    ident = str(created["Id"])
    if secrets:
        with guard(f"writing secrets into {name}"):
            api.put_archive(ident, SECRETS_DIR, secrets_archive(secrets))
    with guard(f"starting container {name}"):
        api.start(ident)
    return name


def replica_config(
    resource: Resource, index: int, labels: Mapping[str, str], proxies: list[str]
) -> dict[str, Any]:
    """The Engine API's create body of one replica: what docker.APIClient.create_container sends for
    these properties (its create_host_config and ContainerConfig, key for key), the docker CLI's
    proxy variables (`proxies`) first in the environment as it puts them."""
    props = resource.properties
    ports = props["ports"]
    security = props["security"]
    host_config: dict[str, Any] = {
        "Memory": parse_memory(str(props["memory"])),
        "ReadonlyRootfs": bool(props["read_only"]),
        "NetworkMode": props["network"],
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": RESTART_RETRIES},
        "CapDrop": list(security["cap_drop"]),
        "Binds": [f"{v['volume']}:{v['target']}:{'ro' if v['read_only'] else 'rw'}" for v in props["volumes"]],
        "PortBindings": {
            f"{p['port']}/{_transport(p)}": [{"HostIp": p["host_ip"], "HostPort": str(p["host_port"] or "")}]
            for p in ports
            if p["host_port"] is not None
        },
        "Init": bool(security["init"]),
        "NanoCpus": round(float(props["cpu"]) * 1e9),
    }
    if security["privileged"]:
        host_config["Privileged"] = True
    if security["cap_add"]:
        host_config["CapAdd"] = list(security["cap_add"])
    if security["no_new_privileges"]:
        host_config["SecurityOpt"] = ["no-new-privileges"]
    if props["read_only"]:
        host_config["Tmpfs"] = dict(READ_ONLY_TMPFS)
    check = healthcheck.docker_healthcheck(props["healthcheck"])
    aliases = [resource.name, f"{resource.name}-{index}"]
    environment = [*proxies, *(f"{k}={_plain(v)}" for k, v in props["env"].items())]
    return {
        "Hostname": f"{resource.name}-{index}", "Domainname": None,
        "ExposedPorts": {f"{p['port']}/{_transport(p)}": {} for p in ports},
        "User": str(props["user"]) if props["user"] else None,
        "Tty": False, "OpenStdin": False, "StdinOnce": False, "AttachStdin": False, "AttachStdout": True,
        "AttachStderr": True, "Env": environment or None, "Cmd": _reveal(props["command"]), "Image": props["image"],
        "Volumes": {SECRETS_DIR: {}} if props.get("secrets") else None, "NetworkDisabled": False,
        "Entrypoint": _reveal(props["entrypoint"]), "WorkingDir": None, "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {props["network"]: {"Aliases": aliases}}},
        "MacAddress": None, "Labels": dict(labels), "StopSignal": None,
        "Healthcheck": None if check is None else {
            "Test": check["test"], "Interval": check["interval"], "Timeout": check["timeout"],
            "Retries": check["retries"], "StartPeriod": check["start_period"],
        },
        "StopTimeout": None, "Runtime": None,
    }


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
    running for SETTLE_SECONDS since its last start, doubled per restart); failed when it exited,
    crash-loops, is unhealthy or was never started."""
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
    if started is not None and now() - started >= SETTLE_SECONDS * 2**restarts:
        return Readiness(True, False, f"{name} is running" + (f" (restarted {restarts} times)" if restarts else ""))
    return Readiness(False, False, f"{name} just " + ("restarted" if restarts else "started"))


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
