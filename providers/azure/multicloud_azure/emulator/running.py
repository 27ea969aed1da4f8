"""The ACI emulator's data plane: a container group runs as one unit of real containers.

A group is one network namespace (the data plane's holder container), so its containers reach
each other on localhost as in ACI; its public ports are published, unremapped, on a loopback
address of the group's own (127.x.y.z, apart for each emulator) which the group's `ipAddress.ip` reports (its fqdn
stands for that address and is not in any DNS). `secureValue` env and secret volumes arrive,
probes and the restart policy act, and `instanceView` and the logs API report the containers.
"""

from __future__ import annotations

import base64
import binascii
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from multicloud.emulators import start_data_plane

if TYPE_CHECKING:
    from multicloud_docker.dataplane import DataPlane, MemberState, Probe, Unit, UnitState

GIB = 1024**3
NETWORK = "azure"
"""The data-plane network every group joins, where flexible servers' fqdns resolve."""
RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
NOTE = (
    "data plane: container groups run as real containers on the local Docker engine; a group's "
    "ipAddress.ip is a loopback address of its own serving its public ports, and its fqdn stands for it (not in DNS)"
)


def group_key(subscription: str, resource_group: str, name: str) -> str:
    """The data plane's key of a group (resource groups are case-insensitive in ARM)."""
    return f"azure/{subscription}/{resource_group.lower()}/{name}"


def group_unit(key: str, body: Mapping[str, Any], host: str) -> Unit:
    """The unit that runs a group (its stored PUT body, secure values included), its public ports on `host`."""
    from multicloud_docker.dataplane import Member, Publish, Unit

    props = body["properties"]
    secret_volumes = {v["name"]: v["secret"] for v in props.get("volumes") or [] if "secret" in v}
    restart = RESTART.get(str(props.get("restartPolicy") or "Always"), "always")
    credentials = {str(c.get("server")): {"username": str(c.get("username")), "password": str(c.get("password"))}
                   for c in props.get("imageRegistryCredentials") or []}
    members = []
    for container in props["containers"]:
        cprops = container["properties"]
        requests = (cprops.get("resources") or {}).get("requests") or {}
        env = {
            str(v["name"]): str(v["secureValue"] if "secureValue" in v else v.get("value", ""))
            for v in cprops.get("environmentVariables") or []
        }
        files = {
            str(m["mountPath"]): _decoded(secret_volumes[m["name"]])
            for m in cprops.get("volumeMounts") or []
            if m["name"] in secret_volumes
        }
        command = cprops.get("command")
        members.append(
            Member(
                name=str(container["name"]),
                image=str(cprops["image"]),
                env=env,
                entrypoint=tuple(str(a) for a in command) if command else None,  # ACI's command replaces ENTRYPOINT
                files=files,
                cpu=float(requests["cpu"]) if requests.get("cpu") else None,
                memory=round(float(requests["memoryInGB"]) * GIB) if requests.get("memoryInGB") else None,
                probe=_probe(cprops),
                restart=restart,  # type: ignore[arg-type]
                pull_auth=credentials.get(str(cprops["image"]).split("/", 1)[0]),
            )
        )
    ip = props.get("ipAddress") or {}
    publish: tuple[Publish, ...] = ()
    if ip.get("type") == "Public":
        publish = tuple(
            Publish(int(p["port"]), "udp" if str(p.get("protocol", "TCP")).upper() == "UDP" else "tcp", host)
            for p in ip.get("ports") or []
        )
    return Unit(key, tuple(members), publish=publish, network=NETWORK)


def _decoded(files: Mapping[str, str]) -> dict[str, bytes]:
    """A secret volume's files (base64 in ARM) as bytes; the validator checked the encoding."""
    decoded: dict[str, bytes] = {}
    for name, text in files.items():
        try:
            decoded[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded[name] = b""
    return decoded


def _probe(cprops: Mapping[str, Any]) -> Probe | None:
    """The container's liveness probe (restarts it), else its readiness probe (reported only)."""
    from multicloud_docker.dataplane.desired import kube_probe

    if cprops.get("livenessProbe"):
        return kube_probe(cprops["livenessProbe"], restart=True)
    return kube_probe(cprops["readinessProbe"], restart=False) if cprops.get("readinessProbe") else None


def container_view(state: UnitState, name: str) -> dict[str, Any]:
    """A container's instanceView from what its real container is doing."""
    member = state.members.get(name)
    if member is None:
        detail = state.error or "ContainerCreating"
        return {"restartCount": 0, "currentState": {"state": "Waiting", "detailStatus": detail}, "events": []}
    return {"restartCount": member.restarts, "currentState": _current(member), "events": []}


def _current(member: MemberState) -> dict[str, Any]:
    if member.state == "running":
        return {"state": "Running", "startTime": member.started_at, "detailStatus": ""}
    if member.state == "terminated":
        return {
            "state": "Terminated",
            "exitCode": member.exit_code,
            "startTime": member.started_at,
            "finishTime": member.finished_at,
            "detailStatus": member.detail,
        }
    return {"state": "Waiting", "detailStatus": member.detail}


def group_state(state: UnitState, names: list[str]) -> str:
    """The group's instanceView state: Running when every container runs, Succeeded or Failed
    when all have ended (restart policy Never or OnFailure), else Pending."""
    members = [state.members.get(n) for n in names]
    if members and all(m is not None and m.state == "running" for m in members):
        return "Running"
    if members and all(m is not None and m.state == "terminated" for m in members):
        return "Succeeded" if all(m is not None and m.exit_code == 0 for m in members) else "Failed"
    return "Pending"


class GroupRunner:
    """What the ACI backend calls to run its groups; wraps one started data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def run(self, key: str, body: Mapping[str, Any]) -> None:
        """Run (or update) a group's containers."""
        self.plane.apply(group_unit(key, body, self.address(key)))

    def address(self, key: str) -> str:
        """The group's own loopback address (its ipAddress.ip), apart from any other emulator's."""
        return str(self.plane.loopback(key))

    def remove(self, key: str) -> None:
        """Remove a group's containers (delete, stop)."""
        self.plane.remove(key)

    def restart(self, key: str) -> None:
        """Replace every container of a group with a new one."""
        self.plane.recreate(key)

    def state(self, key: str) -> UnitState:
        """What the group's containers are doing."""
        return self.plane.state(key)

    def logs(self, key: str, container: str, tail: int | None, timestamps: bool = False) -> str:
        """A container's output (each line after its time when `timestamps`)."""
        return str(self.plane.logs(key, container, tail, timestamps=timestamps))

    def exec(self, key: str, container: str, command: list[str], size: tuple[int, int]) -> socket.socket | None:
        """Start a command in a container's terminal of `size` rows x columns (None when it is not running)."""
        return self.plane.exec(key, container, command, tty=True, size=size)

    def close(self) -> None:
        """Stop the data plane, removing every container it made."""
        self.plane.close()


def start_runner() -> tuple[GroupRunner | None, str]:
    """A started runner and a note, or None and why not (no engine, no multicloud-docker)."""
    plane, why = start_data_plane("azure")
    return (GroupRunner(plane), NOTE) if plane is not None else (None, str(why))
