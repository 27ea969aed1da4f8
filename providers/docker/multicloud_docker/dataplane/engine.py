"""Containers, networks and sweeps of a data-plane session on the engine: every object carries
the session's labels, so a sweep by label removes all of it (and a dead session's leftovers)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from multicloud.spec.units import parse_memory
from multicloud_docker import healthcheck
from multicloud_docker.client import NotFoundError, guard
from multicloud_docker.containers import discard, files_archive
from multicloud_docker.dataplane.desired import Member, Probe, Unit
from multicloud_docker.dataplane.holder import PROGRAM
from multicloud_docker.images import ensure_pulled, pull_with

SESSION = "multicloud.dataplane"
"""Label: the data-plane session that owns the object (every object of a session carries it)."""
OWNER = "multicloud.dataplane.owner"
"""Label: `host:pid` of the process running the session, so a later session can sweep a dead one's."""
EMULATOR = "multicloud.dataplane.emulator"
UNIT = "multicloud.dataplane.unit"
ROLE = "multicloud.dataplane.role"
MEMBER = "multicloud.dataplane.member"
HASH = "multicloud.dataplane.hash"
HOLDER_MEMORY = "16Mi"


def owner() -> str:
    """This process as the owner label gives it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def session_labels(session: str, emulator: str) -> dict[str, str]:
    """The labels every object of a session carries."""
    return {SESSION: session, OWNER: owner(), EMULATOR: emulator}


def container_name(session: str, key: str, member: str) -> str:
    """An engine-unique container name for a unit's member ('' is the holder)."""
    unit = hashlib.sha256(key.encode()).hexdigest()[:8]
    tail = re.sub(r"[^a-zA-Z0-9_.-]", "-", member)[:40] if member else "holder"
    return f"mcdp-{session}-{unit}-{tail}"


def network_name(session: str, network: str) -> str:
    """The engine name of a session's network."""
    return f"mcdp-{session}-{re.sub(r'[^a-zA-Z0-9_.-]', '-', network)[:40]}"


def ensure_network(api: Any, session: str, network: str, labels: Mapping[str, str]) -> str:
    """Create the session's network unless it exists; return its engine name."""
    name = network_name(session, network)
    with guard(f"listing network {name}"):
        if any(n.get("Name") == name for n in api.networks(names=[name])):
            return name
    with guard(f"creating network {name}"):
        api.create_network(name, driver="bridge", labels=dict(labels))
    return name


def gateway(api: Any, name: str) -> tuple[str, str]:
    """The host's address on a network (its gateway, where host services are reached from it)
    and the network's subnet."""
    with guard(f"inspecting network {name}"):
        info = api.inspect_network(name)
    configs = (info.get("IPAM") or {}).get("Config") or []
    found: dict[str, Any] = next((c for c in configs if c.get("Gateway")), {})
    return str(found.get("Gateway", "")), str(found.get("Subnet", ""))


def create_holder(
    api: Any, image: str, unit: Unit, name: str, labels: Mapping[str, str], *, network: str | None
) -> str:
    """Create and start a unit's holder: the namespace, the published ports, the aliases.
    A failure leaves a labelled container that is not running, which the next pass removes."""
    bindings = {f"{p.port}/{p.protocol}": (p.host_ip, p.host_port or p.port) for p in unit.publish}
    with guard(f"creating container {name}"):
        host_config = api.create_host_config(
            port_bindings=bindings or None,
            restart_policy={"Name": "always"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            mem_limit=parse_memory(HOLDER_MEMORY),
            network_mode=network or "bridge",
            dns=list(unit.dns) or None,
        )
        networking = None
        if network is not None:
            endpoint = api.create_endpoint_config(aliases=list(unit.aliases) or None)
            networking = api.create_networking_config({network: endpoint})
        created = api.create_container(
            image=image,
            name=name,
            entrypoint=[PROGRAM],
            labels=dict(labels),
            ports=[(p.port, p.protocol) for p in unit.publish] or None,
            host_config=host_config,
            networking_config=networking,
        )
    ident = str(created["Id"])
    with guard(f"starting container {name}"):
        api.start(ident)
    return ident


def volume_name(session: str, key: str, volume: str) -> str:
    """The engine name of a unit's volume."""
    unit = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"mcdp-{session}-{unit}-{re.sub(r'[^a-zA-Z0-9_.-]', '-', volume)[:40]}"


def ensure_volumes(api: Any, names: Iterable[str], labels: Mapping[str, str]) -> None:
    """Create the named volumes that do not exist yet, labelled (an existing one keeps its data)."""
    for name in names:
        with guard(f"creating volume {name}"):
            api.create_volume(name, labels=dict(labels))


def remove_volumes(api: Any, session: str, key: str) -> None:
    """Remove every volume of one unit of a session (its data is gone); gone already counts as done."""
    with guard("listing data-plane volumes"):
        found = (api.volumes(filters={"label": [f"{SESSION}={session}", f"{UNIT}={key}"]}) or {}).get("Volumes")
    for volume in found or []:
        remove_volume(api, str(volume["Name"]))


def remove_volume(api: Any, name: str) -> None:
    """Remove one volume; gone already counts as done (one in use raises the engine's error)."""
    try:
        with guard(f"removing volume {name}"):
            api.remove_volume(name, force=True)
    except NotFoundError:
        return


def create_member(
    api: Any, member: Member, holder: str, name: str, labels: Mapping[str, str],
    *, volumes: Mapping[str, str] | None = None,
) -> str:
    """Pull the image if missing, create a member in the holder's namespace with its named
    volumes (engine name -> mount path) mounted, write its files, start it. A failure leaves a
    labelled container that is not running (removed next pass)."""
    if member.pull_auth is not None:
        pull_with(api, member.image, member.pull_auth)
    else:
        ensure_pulled(api, member.image, lambda _line: None)
    from docker.types import Mount

    mounts = dict(volumes or {})
    restart: dict[str, Any] = {"Name": member.restart}
    with guard(f"creating container {name}"):
        host_config = api.create_host_config(
            network_mode=f"container:{holder}",
            restart_policy=restart if member.restart != "no" else None,
            nano_cpus=round(member.cpu * 1e9) if member.cpu else None,
            mem_limit=member.memory,
            # Mounts, not binds: a target may hold ':' (Cloud Run's /cloudsql/PROJECT:REGION:INSTANCE)
            mounts=[Mount(path, volume, type="volume") for volume, path in mounts.items()] or None,
            read_only=member.read_only or None,
        )
        created = api.create_container(
            image=member.image,
            name=name,
            user=member.user or None,
            command=list(member.command) if member.command is not None else None,
            entrypoint=list(member.entrypoint) if member.entrypoint is not None else None,
            environment=[f"{k}={v}" for k, v in member.env.items()],
            labels=dict(labels),
            volumes=sorted(member.files) or None,
            healthcheck=docker_probe(member.probe),
            host_config=host_config,
        )
    ident = str(created["Id"])
    for directory, files in sorted(member.files.items()):
        with guard(f"writing files into {name}:{directory}"):
            api.put_archive(ident, directory, files_archive(files))
    with guard(f"starting container {name}"):
        api.start(ident)
    return ident


def docker_probe(probe: Probe | None) -> dict[str, Any] | None:
    """The engine's Healthcheck object for a probe."""
    if probe is None:
        return None
    rendered = {
        "test": list(probe.test),
        "interval": probe.interval,
        "timeout": probe.timeout,
        "retries": probe.retries,
        "start_period": probe.start_period,
    }
    return healthcheck.docker_healthcheck(rendered)


def remove_containers(api: Any, idents: Iterable[str]) -> None:
    """Kill and remove containers with their anonymous volumes; gone already counts as done."""
    for ident in idents:
        discard(api, ident, ident[:12])


def sweep(api: Any, selector: str) -> None:
    """Remove every container, network and volume carrying a label (`key=value` or `key`)."""
    filters = {"label": [selector]}
    with guard("listing data-plane containers"):
        found = api.containers(all=True, filters=filters)
    members = [c["Id"] for c in found if (c.get("Labels") or {}).get(ROLE) != "holder"]
    remove_containers(api, members)  # members first: a holder cannot go while members use its namespace
    remove_containers(api, [c["Id"] for c in found if (c.get("Labels") or {}).get(ROLE) == "holder"])
    with guard("listing data-plane networks"):
        networks = api.networks(filters=filters)
    for network in networks:
        try:
            with guard(f"removing network {network.get('Name')}"):
                api.remove_network(network["Id"])
        except NotFoundError:
            continue
    with guard("listing data-plane volumes"):
        volumes = (api.volumes(filters=filters) or {}).get("Volumes") or []
    for volume in volumes:
        try:
            with guard(f"removing volume {volume.get('Name')}"):
                api.remove_volume(volume["Name"], force=True)
        except NotFoundError:
            continue


def sweep_orphans(api: Any) -> list[str]:
    """Sweep the sessions of processes on this host that died without stopping them; return their ids."""
    with guard("listing data-plane containers"):
        found = api.containers(all=True, filters={"label": [SESSION]})
    with guard("listing data-plane networks"):
        found += api.networks(filters={"label": [SESSION]})
    host = socket.gethostname()
    dead: set[str] = set()
    for item in found:
        labels = item.get("Labels") or {}
        where, _, pid = str(labels.get(OWNER, "")).rpartition(":")
        if where == host and pid.isdigit() and not _alive(int(pid)):
            dead.add(str(labels[SESSION]))
    for session in sorted(dead):
        sweep(api, f"{SESSION}={session}")
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
