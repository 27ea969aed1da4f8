"""What a data plane is asked to run: units of containers that share one network namespace.

A unit is what a cloud runs as one thing with one address (an ACI container group, an ECS task
in awsvpc mode, a Cloud Run instance): a holder container owns the namespace and the published
ports, and every member joins it, so members reach each other on localhost. Emulators map their
cloud's objects onto units; the runner makes real containers of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RestartPolicy = Literal["always", "on-failure", "no"]


@dataclass(frozen=True)
class Probe:
    """A container health probe as the engine runs it (`test` is Docker's CMD / CMD-SHELL form);
    with `restart` an unhealthy container is restarted (a liveness probe), else only reported."""

    test: tuple[str, ...]
    interval: float = 10.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0
    restart: bool = False


@dataclass(frozen=True)
class Member:
    """One container of a unit. `files` maps a directory to the files written into it before
    the container starts (secret volumes); env and files never reach a label. `volumes` maps a
    volume's name (the unit's own) to where it is mounted: it outlives the container and is
    removed only when the unit is purged (a database's data). `shared` volumes are the session's."""

    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    files: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)
    cpu: float | None = None
    memory: int | None = None
    probe: Probe | None = None
    restart: RestartPolicy = "always"
    pull_auth: Mapping[str, str] | None = field(default=None, repr=False)
    """Registry credentials ({"username", "password"}): the image is pulled with them on every create,
    as a cloud pulls (a wrong credential fails the member); None uses what the engine has."""
    volumes: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    """The user (NAME, UID or UID:GID) the container runs as; None: the image's."""
    read_only: bool = False
    """Whether the root filesystem is read-only (files and volumes stay writable mounts)."""
    shared: Mapping[str, str] = field(default_factory=dict)
    """Volumes of the whole session (name -> mount path): every unit naming one mounts the same
    (a database's socket directory that its clients mount too); removed when the session closes."""


@dataclass(frozen=True)
class Publish:
    """A unit port reachable from this machine at host_ip:host_port (host_port None: the same port)."""

    port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "127.0.0.1"
    host_port: int | None = None


@dataclass(frozen=True)
class Unit:
    """Containers sharing one namespace, addressed by `key` (the emulator's name for the
    object). On `network` (created by the runner) the unit answers to `aliases`; `dns` are the
    name servers its containers use for names outside that network."""

    key: str
    members: tuple[Member, ...]
    publish: tuple[Publish, ...] = ()
    network: str | None = None
    aliases: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()


def holder_hash(unit: Unit, key: bytes) -> str:
    """A digest of what the holder container is made of (its ports, network, aliases)."""
    return _digest(
        key,
        {"publish": [vars(p) for p in unit.publish], "network": unit.network, "aliases": unit.aliases, "dns": unit.dns},
    )


def member_hash(unit: Unit, member: Member, key: bytes) -> str:
    """A digest of a member and its holder: a change to either recreates the member. Keyed
    (HMAC) with the runner's secret so that secret env and file values cannot be guessed from it."""
    files = {d: {n: content.hex() for n, content in f.items()} for d, f in member.files.items()}
    body: dict[str, Any] = {
        **{k: v for k, v in vars(member).items() if k not in ("files", "probe", "env", "pull_auth")},
        "env": dict(member.env),
        "files": files,
        "probe": vars(member.probe) if member.probe else None,
        "holder": holder_hash(unit, key),
    }
    return _digest(key, body)


def _digest(key: bytes, body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, default=list)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:16]


def kube_probe(probe: Mapping[str, Any], *, restart: bool, port: int = 8080) -> Probe | None:
    """A probe in the Kubernetes shape the clouds share (ACI, Cloud Run: exec, httpGet or tcpSocket
    with periodSeconds, timeoutSeconds, failureThreshold, initialDelaySeconds); None for another kind."""
    from multicloud.probes import http_script, tcp_script

    timeout = float(probe.get("timeoutSeconds") or 1)
    if "exec" in probe:
        test: tuple[str, ...] = ("CMD", *[str(a) for a in probe["exec"]["command"]])
    elif "httpGet" in probe:
        get = probe["httpGet"]
        tls = str(get.get("scheme", "HTTP")).upper() == "HTTPS"
        test = ("CMD-SHELL", http_script(int(get.get("port") or port), str(get.get("path") or "/"), timeout, tls=tls))
    elif "tcpSocket" in probe:
        test = ("CMD-SHELL", tcp_script(int(probe["tcpSocket"].get("port") or port), timeout))
    else:
        return None
    return Probe(
        test,
        interval=float(probe.get("periodSeconds") or 10),
        timeout=timeout,
        retries=int(probe.get("failureThreshold") or 3),
        start_period=float(probe.get("initialDelaySeconds") or 0),
        restart=restart,
    )
