"""The Cloud Run emulator's data plane: every revision that serves traffic runs as instances of
real containers, reached only through the TLS front (`front.py`) at the service's URL.

An instance is one data-plane unit (its containers share localhost, as Cloud Run's sidecars do)
on the session's network, with the container contract set: `PORT` (the ingress container's
port), `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`. Revisions that take traffic or carry a
tag scale between their min and max instances by load (`scaling.py`); a service's URLs split
requests between revisions by traffic percent, and `TAG---HOST` reaches a tag's revision.
Secret Manager references (env `secretKeyRef`, secret volumes) resolve from the emulator's
secret store (`CloudRunModel.secret_values`).
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multicloud.spec.units import parse_memory
from multicloud_gcp.emulator.scaling import IDLE_SECONDS, Lease, Pool, Scaler, bounds
from multicloud_gcp.limits import parse_cpu

if TYPE_CHECKING:
    from multicloud_docker.dataplane import DataPlane, Member, Probe, Unit

    from multicloud_gcp.emulator.cloudlogging import CloudLogging

Json = dict[str, Any]
PullAuth = Callable[[str], Mapping[str, str] | None]
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
    """Where the front sends a URL's requests: a service's revisions weighted by traffic percent
    (a tag's URL: its one revision at 100)."""

    service: str
    internal: bool
    timeout: float
    revisions: tuple[tuple[int, str], ...]
    """(percent, revision name)."""

    def pick(self) -> str | None:
        """A revision by its traffic percent; None when none takes traffic."""
        serving = [r for r in self.revisions if r[0] > 0]
        if not serving:
            return None
        return random.choices(serving, weights=[r[0] for r in serving])[0][1]


def serving_revisions(service: Json) -> dict[str, int]:
    """Revision name -> percent of traffic, from the service's resolved traffic."""
    shares: dict[str, int] = {}
    for target in service.get("trafficStatuses") or service.get("traffic") or []:
        revision = _target_revision(service, target)
        if revision and int(target.get("percent") or 0) > 0:
            shares[revision] = shares.get(revision, 0) + int(target["percent"])
    return shares


def tagged_revisions(service: Json) -> dict[str, str]:
    """Tag -> revision name, for the traffic targets that carry a tag (whatever their percent)."""
    return {
        str(t["tag"]): _target_revision(service, t)
        for t in service.get("trafficStatuses") or service.get("traffic") or []
        if t.get("tag") and _target_revision(service, t)
    }


def _target_revision(service: Json, target: Json) -> str:
    """The full revision name a traffic target sends to (the latest ready one for LATEST)."""
    if target.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST":
        return str(service.get("latestReadyRevision", ""))
    return f"{service['name']}/revisions/{target.get('revision', '')}" if target.get("revision") else ""


def service_hosts(service: Json) -> list[str]:
    """The host names of a service's URLs (`uri` and every one in `urls`)."""
    urls = [service.get("uri", ""), *(service.get("urls") or [])]
    return list(dict.fromkeys(str(u).removeprefix("https://").rstrip("/").lower() for u in urls if u))


def revision_labels(key: str) -> Json:
    """The `cloud_run_revision` resource labels of an instance's unit key (gcp/REVISION NAME/INDEX)."""
    parts = key.removeprefix("gcp/").rsplit("/", 1)[0].split("/")
    project, location, service, revision = parts[1], parts[3], parts[5], parts[7]
    return {"project_id": project, "location": location, "service_name": service,
            "revision_name": revision, "configuration_name": service}


def serving_port(revision: Json) -> int:
    """The ingress container's port (Cloud Run's default 8080)."""
    for container in revision.get("containers") or []:
        for port in container.get("ports") or []:
            return int(port.get("containerPort") or 8080)
    return 8080


def revision_unit(
    service: Json, revision: Json, secrets: Mapping[str, str], inside: Inside | None, index: int, *,
    pull_auth: PullAuth = lambda _image: None,
) -> Unit:
    """Instance `index` of a revision (with `inside`: able to call services by their URLs; images
    pulled with the credentials `pull_auth` gives for them)."""
    from multicloud_docker.dataplane import Unit

    service_id = service["name"].rsplit("/", 1)[-1]
    short = revision["name"].rsplit("/", 1)[-1]
    contract = {"PORT": str(serving_port(revision)), "K_SERVICE": service_id, "K_REVISION": short}
    contract["K_CONFIGURATION"] = service_id
    volumes = {v["name"]: v["secret"] for v in revision.get("volumes") or [] if "secret" in v}
    sql = {v["name"]: v["cloudSqlInstance"].get("instances") or [] for v in revision.get("volumes") or []
           if "cloudSqlInstance" in v}
    members = tuple(
        _with_sockets(_member(container, position, contract, volumes, secrets, inside=inside, pull_auth=pull_auth),
                      container, sql)
        for position, container in enumerate(revision.get("containers") or [])
    )
    dns = (inside.address,) if inside is not None else ()
    return Unit(f"gcp/{revision['name']}/{index}", members, network=NETWORK, dns=dns)


def _member(
    container: Json,
    index: int,
    contract: Mapping[str, str],
    volumes: Json,
    secrets: Mapping[str, str],
    *,
    inside: Inside | None,
    pull_auth: PullAuth,
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
        pull_auth=pull_auth(str(container["image"])),
    )


def _with_sockets(member: Member, container: Json, sql: Mapping[str, list[str]]) -> Member:
    """A member with the Cloud SQL connector's sockets: MOUNT/CONNECTION for each instance of a
    cloud_sql_instance volume it mounts (the emulated instance's shared socket directory)."""
    from dataclasses import replace

    from multicloud_gcp.emulator.cloudsql import socket_volume

    shared = {socket_volume(conn): f"{mount['mountPath']}/{conn}"
              for mount in container.get("volumeMounts") or [] for conn in sql.get(mount["name"], [])}
    return replace(member, shared=shared) if shared else member


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
    """What the Cloud Run model calls to run its services; keeps the routes the front reads and,
    through its scaler, each revision's instances."""

    def __init__(self, plane: DataPlane, idle_seconds: float = IDLE_SECONDS) -> None:
        self.plane = plane
        self.scaler = Scaler(plane, idle_seconds)
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._revisions: dict[str, set[str]] = {}
        self.inside: Inside | None = None
        """Set when instances can call services' URLs (the inside front runs)."""
        self.pull_auth: PullAuth = lambda _image: None
        """The credentials an image is pulled with (the emulator's Artifact Registry sets it)."""

    def _pool(self, service: Json, revision: Json, secrets: Mapping[str, str]) -> Pool:
        """A revision's pool: its bounds, port, affinity and how to make its instances."""
        minimum, maximum, concurrency = bounds(service, revision)
        inside = self.inside
        return Pool(
            revision["name"], serving_port(revision), concurrency, minimum, maximum,
            bool(revision.get("sessionAffinity")),
            lambda index: revision_unit(service, revision, secrets, inside, index, pull_auth=self.pull_auth),
        )

    def sync(self, service: Json, revisions: Mapping[str, Json], secrets: Mapping[str, str]) -> None:
        """Keep pools for the revisions that take traffic or carry a tag (min instances running,
        dropping the rest of the service's) and route its URLs and tag URLs to them."""
        name = service["name"]
        shares, tags = serving_revisions(service), tagged_revisions(service)
        wanted = {r for r in (*shares, *tags.values()) if r in revisions}
        for revision_name in wanted:
            self.scaler.ensure(self._pool(service, revisions[revision_name], secrets), start=0)
        timeout = float(str((service.get("template") or {}).get("timeout") or "300s").removesuffix("s"))
        internal = service.get("ingress") in INTERNAL_INGRESS
        weighted = tuple((p, r) for r, p in shares.items() if r in wanted)
        with self._lock:
            stale = self._revisions.get(name, set()) - wanted
            self._revisions[name] = set(wanted)
            routes = {h: r for h, r in self._routes.items() if r.service != name}
            for host in service_hosts(service):
                routes[host] = Route(name, internal, timeout, weighted)
                for tag, revision_name in tags.items():
                    routes[f"{tag}---{host}"] = Route(name, internal, timeout, ((100, revision_name),))
            self._routes = routes
        for revision_name in stale:
            self.scaler.drop(revision_name)

    def prestart(self, service: Json, revision: Json, secrets: Mapping[str, str]) -> Callable[[], bool | str]:
        """Start a new revision's instances (max(1, min), capped by max) before it serves; return a
        check that is True once one accepts on its port, False until then, or says why they cannot."""
        held = self._pool(service, revision, secrets)
        held.held = True  # however long it takes to start, until the rollout routes to it
        pool = self.scaler.ensure(held, start=1)
        with self._lock:
            self._revisions.setdefault(service["name"], set()).add(revision["name"])
        short = revision["name"].rsplit("/", 1)[-1]

        def started() -> bool | str:
            for key in self.scaler.keys(pool.revision):
                state = self.plane.state(key)
                if state.error:
                    return f"Revision '{short}' is not ready and cannot serve traffic: {state.error}"
                if state.address and accepts(state.address, pool.port):
                    return True
            return False

        return started

    def remove(self, service: Json) -> None:
        """Stop routing to a service and remove its instances."""
        with self._lock:
            gone = self._revisions.pop(service["name"], set())
            self._routes = {h: r for h, r in self._routes.items() if r.service != service["name"]}
        for revision_name in gone:
            self.scaler.drop(revision_name)

    def route(self, host: str) -> Route | None:
        """The route of a service URL's host name."""
        with self._lock:
            return self._routes.get(host.split(":", maxsplit=1)[0].lower())

    def lease(self, route: Route, token: str = "") -> Lease | None:
        """A place for one request: on the instance a session-affinity token names while it serves
        one of the route's revisions, else on a revision picked by traffic percent; None when no
        revision takes traffic or every instance stayed full (see Scaler.lease)."""
        revisions = [r for _, r in route.revisions]
        revision = (self.scaler.owner(token, revisions) if token else None) or route.pick()
        return self.scaler.lease(revision, token) if revision else None

    def release(self, lease: Lease) -> None:
        """Give back a request's place on its instance."""
        self.scaler.release(lease)

    def attach(self, logging: CloudLogging) -> None:
        """Let Cloud Logging read every instance's containers, and one instance's just before it stops."""
        logging.sources = self.instances
        logging.reader = self.container_logs
        self.scaler.on_stop = lambda key: logging.collect(key, revision_labels(key))

    def instances(self) -> list[tuple[str, Json]]:
        """(unit key, Cloud Logging resource labels) of every instance running now."""
        return [(key, revision_labels(key)) for r in self.scaler.revisions() for key in self.scaler.keys(r)]

    def container_logs(self, key: str) -> list[tuple[str, str, str]]:
        """(container name, container ID, its output with RFC 3339 times) of each container of an instance."""
        members = self.plane.state(key).members
        return [(n, m.container, self.plane.logs(key, n, timestamps=True)) for n, m in members.items() if m.container]

    def address(self, key: str) -> str:
        """An instance's address on the data-plane network ('' until it runs)."""
        return self.plane.state(key).address

    def close(self) -> None:
        """Stop the scaler and the data plane, removing every container it made."""
        self.scaler.close()
        self.plane.close()
