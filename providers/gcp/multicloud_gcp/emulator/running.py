"""The Cloud Run emulator's data plane: every revision that serves traffic runs as instances of
real containers, reached only through the TLS front (`front.py`) at the service's URL.

An instance is one data-plane unit (its containers share localhost, as Cloud Run's sidecars do)
on the session's network, with the container contract set: `PORT` (the ingress container's
port), `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`. A revision runs max(1, min instances)
instances (capped by max instances); Secret Manager references (env `secretKeyRef`, secret
volumes) resolve from the emulator's secret store (`CloudRunModel.secret_values`).
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multicloud.spec.units import parse_memory
from multicloud_gcp.limits import parse_cpu

if TYPE_CHECKING:
    from multicloud_docker.dataplane import DataPlane, Member, Probe, Unit

Json = dict[str, Any]
NETWORK = "cloudrun"
INTERNAL_INGRESS = ("INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")


@dataclass(frozen=True)
class Inside:
    """How instances call services' URLs: a name server at `address` gives every run.app name the
    inside front's address (the same); its CA joins the system's in a bundle SSL_CERT_FILE names."""

    address: str
    bundle: bytes
    directory: str = "/etc/multicloud-emulator"

    def env(self) -> dict[str, str]:
        """The variables that make OpenSSL-based clients (Python, curl, httpx) trust the bundle."""
        return {"SSL_CERT_FILE": f"{self.directory}/ca.pem"}

    def files(self) -> dict[str, dict[str, bytes]]:
        """The bundle as a file in each container."""
        return {self.directory: {"ca.pem": self.bundle}}


@dataclass(frozen=True)
class Route:
    """Where the front sends a service's requests: weighted revisions, each with its instance keys."""

    service: str
    internal: bool
    timeout: float
    revisions: tuple[tuple[int, str, int, tuple[str, ...]], ...]
    """(percent, revision name, serving port, instance unit keys)."""

    def pick(self) -> tuple[str, int, tuple[str, ...]] | None:
        """A revision by its traffic percent: (name, port, instance keys); None when none serves."""
        serving = [r for r in self.revisions if r[0] > 0 and r[3]]
        if not serving:
            return None
        chosen = random.choices(serving, weights=[r[0] for r in serving])[0]
        return chosen[1], chosen[2], chosen[3]


def serving_revisions(service: Json) -> dict[str, int]:
    """Revision name -> percent of traffic, from the service's resolved traffic."""
    name = service["name"]
    shares: dict[str, int] = {}
    for target in service.get("trafficStatuses") or service.get("traffic") or []:
        if target.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST":
            revision = service.get("latestReadyRevision", "")
        else:
            revision = f"{name}/revisions/{target.get('revision', '')}"
        if revision and int(target.get("percent") or 0) > 0:
            shares[revision] = shares.get(revision, 0) + int(target["percent"])
    return shares


def instance_count(service: Json, revision: Json) -> int:
    """max(1, min instances of the revision or service), capped by max instances when set."""
    mins = [int((s.get("scaling") or {}).get("minInstanceCount") or 0) for s in (revision, service)]
    count = max(1, *mins)
    cap = int((revision.get("scaling") or {}).get("maxInstanceCount") or 0)
    return min(count, cap) if cap > 0 else count


def serving_port(revision: Json) -> int:
    """The ingress container's port (Cloud Run's default 8080)."""
    for container in revision.get("containers") or []:
        for port in container.get("ports") or []:
            return int(port.get("containerPort") or 8080)
    return 8080


def revision_units(
    service: Json, revision: Json, secrets: Mapping[str, str], inside: Inside | None = None
) -> list[Unit]:
    """The instances a revision runs as (with `inside`: able to call services by their URLs)."""
    from multicloud_docker.dataplane import Unit

    service_id = service["name"].rsplit("/", 1)[-1]
    short = revision["name"].rsplit("/", 1)[-1]
    contract = {"PORT": str(serving_port(revision)), "K_SERVICE": service_id, "K_REVISION": short}
    contract["K_CONFIGURATION"] = service_id
    volumes = {v["name"]: v["secret"] for v in revision.get("volumes") or [] if "secret" in v}
    members = tuple(
        _member(container, index, contract, volumes, secrets, inside=inside)
        for index, container in enumerate(revision.get("containers") or [])
    )
    dns = (inside.address,) if inside is not None else ()
    return [
        Unit(f"gcp/{revision['name']}/{i}", members, network=NETWORK, dns=dns)
        for i in range(instance_count(service, revision))
    ]


def _member(
    container: Json,
    index: int,
    contract: Mapping[str, str],
    volumes: Json,
    secrets: Mapping[str, str],
    *,
    inside: Inside | None,
) -> Member:
    """One container of an instance: the contract env first, then its own (secrets resolved)."""
    from multicloud_docker.dataplane import Member

    env = dict(contract) if index == 0 else {k: v for k, v in contract.items() if k != "PORT"}
    env.update(inside.env() if inside is not None else {})
    for var in container.get("env") or []:
        ref = (var.get("valueSource") or {}).get("secretKeyRef")
        env[str(var["name"])] = _secret(secrets, ref["secret"]) if ref else str(var.get("value", ""))
    files: dict[str, dict[str, bytes]] = inside.files() if inside is not None else {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is not None:
            items = volume.get("items") or [{"path": volume["secret"].rsplit("/", 1)[-1]}]
            value = _secret(secrets, volume["secret"]).encode()
            files[str(mount["mountPath"])] = {str(i["path"]): value for i in items}
    limits = (container.get("resources") or {}).get("limits") or {}
    return Member(
        name=str(container.get("name") or f"container-{index}"),
        image=str(container["image"]),
        env=env,
        entrypoint=tuple(container["command"]) if container.get("command") else None,
        command=tuple(container["args"]) if container.get("args") else None,
        files=files,
        cpu=parse_cpu(str(limits["cpu"])) if limits.get("cpu") else None,
        memory=parse_memory(str(limits["memory"])) if limits.get("memory") else None,
        probe=_probe(container),
    )


def _secret(secrets: Mapping[str, str], name: str) -> str:
    """A Secret Manager secret's value by its name or resource name ('' when the store lacks it)."""
    return secrets.get(name.rsplit("/", 1)[-1], secrets.get(name, ""))


def _probe(container: Json) -> Probe | None:
    """The liveness probe (restarts the container), else the startup probe (reported only)."""
    from multicloud_docker.dataplane.desired import kube_probe

    if container.get("livenessProbe"):
        return kube_probe(container["livenessProbe"], restart=True)
    return kube_probe(container["startupProbe"], restart=False) if container.get("startupProbe") else None


def accepts(address: str, port: int) -> bool:
    """True when address:port accepts a TCP connection (a startup probe)."""
    try:
        socket.create_connection((address, port), timeout=0.2).close()
    except OSError:
        return False
    return True


class RevisionRunner:
    """What the Cloud Run model calls to run its services; keeps the routes the front reads."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._units: dict[str, set[str]] = {}
        self.inside: Inside | None = None
        """Set when instances can call services' URLs (the inside front runs)."""

    def sync(self, service: Json, revisions: Mapping[str, Json], secrets: Mapping[str, str]) -> None:
        """Run the service's serving revisions (removing instances of the rest) and route to them."""
        name = service["name"]
        host = str(service.get("uri", "")).removeprefix("https://")
        wanted: dict[str, Unit] = {}
        routed = []
        for revision_name, percent in serving_revisions(service).items():
            revision = revisions.get(revision_name)
            if revision is None:
                continue
            units = revision_units(service, revision, secrets, self.inside)
            wanted.update((u.key, u) for u in units)
            routed.append((percent, revision_name, serving_port(revision), tuple(u.key for u in units)))
        for unit in wanted.values():
            self.plane.apply(unit)
        with self._lock:
            stale = self._units.get(name, set()) - set(wanted)
            self._units[name] = set(wanted)
            timeout = float(str((service.get("template") or {}).get("timeout") or "300s").removesuffix("s"))
            internal = service.get("ingress") in INTERNAL_INGRESS
            self._routes[host] = Route(name, internal, timeout, tuple(routed))
        for key in stale:
            self.plane.remove(key)

    def prestart(self, service: Json, revision: Json, secrets: Mapping[str, str]) -> Callable[[], bool | str]:
        """Start a new revision's instances before it serves; return a check that is True once
        one accepts on its port, False until then, or says why they cannot start."""
        units = revision_units(service, revision, secrets, self.inside)
        with self._lock:
            self._units.setdefault(service["name"], set()).update(u.key for u in units)
        for unit in units:
            self.plane.apply(unit)
        port = serving_port(revision)
        short = revision["name"].rsplit("/", 1)[-1]

        def started() -> bool | str:
            for unit in units:
                state = self.plane.state(unit.key)
                if state.error:
                    return f"Revision '{short}' is not ready and cannot serve traffic: {state.error}"
                if state.address and accepts(state.address, port):
                    return True
            return False

        return started

    def remove(self, service: Json) -> None:
        """Stop routing to a service and remove its instances."""
        with self._lock:
            keys = self._units.pop(service["name"], set())
            self._routes = {h: r for h, r in self._routes.items() if r.service != service["name"]}
        for key in keys:
            self.plane.remove(key)

    def route(self, host: str) -> Route | None:
        """The route of a service URL's host name."""
        with self._lock:
            return self._routes.get(host.split(":", maxsplit=1)[0].lower())

    def address(self, key: str) -> str:
        """An instance's address on the data-plane network ('' until it runs)."""
        return self.plane.state(key).address

    def close(self) -> None:
        """Stop the data plane, removing every container it made."""
        self.plane.close()
