"""The checks ACI makes on a container group before accepting it, with ARM's error shapes.

Error codes and messages, checked against what real ACI returned in public reports (searched
November 2026: azure-rest-api-specs, azure-cli, azure-sdk-* and terraform-provider-azurerm issues,
Microsoft Learn's ACI troubleshooting, update, stop/start and quota pages, and public code):

- confirmed: 409 ContainerGroupTransitioning "... is still transitioning, please retry later."
  (Learn: "Container group remains in a transitioning state"; azure-cli #8902); 409 ServiceUnavailable
  "The requested resource is not available in the location ... Resource requested: ..."
  (virtual-kubelet #592); 400 MissingIpAddressPorts "The ports in the 'ipAddress' of container group
  ... cannot be empty." (terraform-provider-azurerm #1697, #11102); UnreferencedIpAddressPorts
  "Following ports ... in the 'ipAddress' are not used by any container ..." (azurerm PR #5091);
  InvalidContainerEnvironmentVariable for a bad env name (azure-rest-api-specs #19173);
  409 InvalidContainerGroupUpdate and its message; InvalidOsType and ResourceRequestsNotSpecified
  (MicrosoftLearning/mslearn-azure-developer PR #67).
- limits confirmed, codes not: at most 5 ports per IP and 20 volumes per group (Learn's quota
  table); env names of 1-63 characters (Learn's naming table). No report shows the code ARM gives
  past these, so TooManyIpAddressPorts and TooManyVolumes are our names, and the length check reuses
  InvalidContainerEnvironmentVariable.
- not confirmed: a PUT on a terminated group. Learn's update page says terminated (Succeeded,
  Failed, Stopped) groups "can't be updated" and are "deployed as new"; no error code is
  published, so 409 ContainerGroupTerminated is our name (the provider replaces such groups from
  their state and never keys on the code). The other 400 codes here (names, ports, probes, volumes,
  DNS labels) were not searched for and are ours too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{3,61}[a-z0-9]$")
VOLUME_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{3,61}[a-z0-9]$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_PUBLIC_PORTS = 5
MAX_VOLUMES = 20
RESTART_POLICIES = ("Always", "OnFailure", "Never")
OS_TYPES = ("Linux", "Windows")
MAX_CONTAINERS = 60
MAX_CPU = 4.0
MAX_MEMORY_GB = 16.0
RECREATE_MESSAGE = (
    "The updates on container group '{name}' are invalid. If you are going to update the os type, "
    "restart policy, network profile, CPU, memory or GPU resources for a container group, you must "
    "delete it first and then create a new one."
)


class ArmError(Exception):
    """An ARM error response: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body ARM sends for this error."""
        return {"error": {"code": self.code, "message": self.message, "details": []}}


def bad(code: str, message: str) -> ArmError:
    """A 400 Bad Request with an ARM error code."""
    return ArmError(400, code, message)


def validate_group(name: str, body: Mapping[str, Any]) -> None:
    """Raise ArmError for the first thing ACI would reject in a container group PUT body."""
    if not NAME.match(name) or "--" in name:
        raise bad(
            "ContainerGroupNameInvalid",
            f"The container group name '{name}' is invalid. The name must contain no more than 63 characters "
            "and only lowercase letters, numbers and dashes; it cannot start or end with a dash, nor contain "
            "two consecutive dashes.",
        )
    if not body.get("location"):
        raise bad("LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, Mapping):
        raise bad("InvalidRequestContent", "The request content was invalid: 'properties' is required.")
    if props.get("osType") not in OS_TYPES:
        raise bad(
            "InvalidOsType",
            f"The 'osType' for container group '{name}' is invalid. The value must be one of 'Windows,Linux'.",
        )
    policy = props.get("restartPolicy", "Always")
    if policy not in RESTART_POLICIES:
        allowed = ", ".join(RESTART_POLICIES)
        raise bad("InvalidRestartPolicy", f"The restart policy '{policy}' is invalid; use {allowed}.")
    containers = props.get("containers") or []
    if not containers:
        raise bad("ContainerGroupContainersRequired", f"The container group '{name}' needs at least one container.")
    if len(containers) > MAX_CONTAINERS:
        raise bad("TooManyContainers", f"A container group can have at most {MAX_CONTAINERS} containers.")
    volumes = _validate_volumes(props.get("volumes") or [])
    seen_names: set[str] = set()
    seen_ports: dict[tuple[int, str], str] = {}
    total_cpu = total_memory = 0.0
    for container in containers:
        cname = str(container.get("name", ""))
        if not NAME.match(cname) or "--" in cname:
            raise bad("InvalidContainerName", f"The container name '{cname}' in container group '{name}' is invalid.")
        if cname in seen_names:
            raise bad("DuplicateContainerName", f"Duplicate container name '{cname}' in container group '{name}'.")
        seen_names.add(cname)
        cpu, memory = _validate_container(name, cname, container.get("properties") or {}, volumes, seen_ports)
        total_cpu += cpu
        total_memory += memory
    if total_cpu > MAX_CPU + 1e-9 or total_memory > MAX_MEMORY_GB + 1e-9:
        raise bad(
            "ResourceRequestsNotSupported",
            f"The resource requests of container group '{name}' ({total_cpu:g} CPU, {total_memory:g} GB) exceed "
            f"the limit of {MAX_CPU:g} CPU and {MAX_MEMORY_GB:g} GB per container group in this location.",
        )
    _validate_ip(name, props.get("ipAddress"), seen_ports)


def _validate_container(
    group: str, name: str, props: Mapping[str, Any], volumes: set[str], ports: dict[tuple[int, str], str]
) -> tuple[float, float]:
    """Check one container; return its (cpu, memoryInGB) and record its ports."""
    if not props.get("image"):
        raise bad("ContainerImageRequired", f"The image of container '{name}' in group '{group}' is required.")
    requests = (props.get("resources") or {}).get("requests") or {}
    if requests.get("cpu") is None or requests.get("memoryInGB") is None:
        raise bad(
            "ResourceRequestsNotSpecified",
            f"The resource requests are not specified in container '{name}' of contain group '{group}'. Both memory "
            "and CPU requests are required since API version '2017-07-01-preview'.",
        )
    cpu, memory = float(requests["cpu"]), float(requests["memoryInGB"])
    if cpu <= 0 or memory <= 0:
        raise bad("InvalidContainerResources", f"Container '{name}' must request a positive CPU and memoryInGB.")
    if cpu > MAX_CPU or memory > MAX_MEMORY_GB:
        raise bad(
            "ResourceRequestsNotSupported",
            f"The requested resource with '{cpu:g}' CPU and '{memory:g}' GB memory for container '{name}' is not "
            f"supported; the maximum is {MAX_CPU:g} CPU and {MAX_MEMORY_GB:g} GB.",
        )
    if abs(memory * 10 - round(memory * 10)) > 1e-6:
        raise bad("InvalidMemoryRequest", f"The memory request of container '{name}' must be a multiple of 0.1 GB.")
    env_names: set[str] = set()
    for var in props.get("environmentVariables") or []:
        var_name = var.get("name")
        if not var_name:
            raise bad("InvalidEnvironmentVariable", f"An environment variable of container '{name}' has no name.")
        if var_name in env_names:
            raise bad("DuplicateEnvironmentVariable", f"Duplicate environment variable '{var_name}' in '{name}'.")
        env_names.add(var_name)
        if not ENV_NAME.match(str(var_name)):
            raise bad(
                "InvalidContainerEnvironmentVariable",
                f"The environment variable name in container '{name}' of container group '{group}' is invalid. A "
                "valid environment variable name must start with alphabetic character or '_', followed by a string "
                "of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName').",
            )
        if var.get("value") is None and var.get("secureValue") is None:
            raise bad(
                "InvalidEnvironmentVariable",
                f"The environment variable '{var_name}' of container '{name}' must have a value or a secure value.",
            )
    for port in props.get("ports") or []:
        key = (int(port.get("port", 0)), str(port.get("protocol") or "TCP").upper())
        if not 1 <= key[0] <= 65535:
            raise bad("InvalidContainerPort", f"The port '{key[0]}' of container '{name}' is out of range.")
        if key in ports:
            raise bad(
                "DuplicateContainerPorts",
                f"Duplicate ports '{key[0]}' found in container group '{group}' containers '{ports[key]}' and "
                f"'{name}'. Containers in a container group share one IP and must use distinct ports.",
            )
        ports[key] = name
    for mount in props.get("volumeMounts") or []:
        if mount.get("name") not in volumes:
            raise bad("VolumeMountNotFound", f"The volume '{mount.get('name')}' mounted by '{name}' is not defined.")
    for which in ("livenessProbe", "readinessProbe"):
        probe = props.get(which)
        if probe is not None and (probe.get("exec") is None) == (probe.get("httpGet") is None):
            raise bad("InvalidProbe", f"The {which} of container '{name}' must have exactly one of exec or httpGet.")
    return cpu, memory


def _validate_volumes(volumes: list[Mapping[str, Any]]) -> set[str]:
    """Check volume names and secret contents; return the names."""
    names: set[str] = set()
    if len(volumes) > MAX_VOLUMES:
        raise bad("TooManyVolumes", f"A container group can have at most {MAX_VOLUMES} volumes ({len(volumes)} given).")
    for volume in volumes:
        vname = str(volume.get("name", ""))
        if not VOLUME_NAME.match(vname) or "--" in vname or vname in names:
            raise bad(
                "InvalidVolumeName",
                f"The volume name '{vname}' is invalid or repeated: it must be 5-63 lowercase letters, numbers and "
                "single dashes, not starting or ending with a dash.",
            )
        names.add(vname)
        for value in (volume.get("secret") or {}).values():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise bad("InvalidSecretVolume", f"The secret volume '{vname}' must hold base64 values.") from None
    return names


def _validate_ip(group: str, ip: Mapping[str, Any] | None, ports: Mapping[tuple[int, str], str]) -> None:
    """Check the IP address: type, exposed ports, DNS label."""
    if ip is None:
        return
    if ip.get("type") not in ("Public", "Private"):
        raise bad("InvalidIpAddressType", "The IP address type must be 'Public' or 'Private'.")
    exposed = ip.get("ports") or []
    if not exposed:
        raise bad(
            "MissingIpAddressPorts", f"The ports in the 'ipAddress' of container group '{group}' cannot be empty."
        )
    if len(exposed) > MAX_PUBLIC_PORTS:
        raise bad(
            "TooManyIpAddressPorts",
            f"The IP address of container group '{group}' exposes {len(exposed)} ports; at most {MAX_PUBLIC_PORTS} "
            "are allowed.",
        )
    keys = [(int(port.get("port", 0)), str(port.get("protocol") or "TCP").upper()) for port in exposed]
    unused = [str(number) for number, protocol in keys if (number, protocol) not in ports]
    if unused:
        raise bad(
            "UnreferencedIpAddressPorts",
            f"Following ports '{','.join(unused)}' in the 'ipAddress' are not used by any container in container "
            f"group '{group}'.",
        )
    label = ip.get("dnsNameLabel")
    if label is not None:
        if ip.get("type") != "Public":
            raise bad("DnsNameLabelRequiresPublicIp", "A DNS name label needs a public IP address.")
        if not DNS_LABEL.match(str(label)):
            raise bad(
                "InvalidDnsNameLabel",
                f"The DNS name label '{label}' in container group '{group}' is invalid. It can contain only lowercase "
                "letters, numbers and hyphens. The first character must be a letter. The last character must be a "
                "letter or number. The value must be between 5 and 63 characters long.",
            )


def validate_update(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Raise the 409 ACI returns when an update changes what only a recreate can change."""
    old, new = before["properties"], after["properties"]
    fields = ("osType", "restartPolicy", "subnetIds", "sku")
    changed = any(_norm(old.get(f)) != _norm(new.get(f)) for f in fields)
    old_resources = {c["name"]: (c.get("properties") or {}).get("resources") for c in old.get("containers") or []}
    if {c["name"] for c in new.get("containers") or []} != set(old_resources):
        changed = True  # the group's resources are the sum of its containers'
    for container in new.get("containers") or []:
        previous = old_resources.get(container["name"])
        if previous is not None and _norm(previous) != _norm((container.get("properties") or {}).get("resources")):
            changed = True
    if _place(before) != _place(after):
        raise ArmError(409, "LocationCannotBeChanged", f"The location of container group '{name}' cannot be changed.")
    if changed:
        raise ArmError(409, "InvalidContainerGroupUpdate", RECREATE_MESSAGE.format(name=name))


def _group_requests(body: Mapping[str, Any]) -> tuple[float, float]:
    """The CPU and memory (GB) a group body requests, summed over its containers."""
    containers = (body.get("properties") or {}).get("containers") or []
    requests = [((c.get("properties") or {}).get("resources") or {}).get("requests") or {} for c in containers]
    return sum(float(r.get("cpu") or 0) for r in requests), sum(float(r.get("memoryInGB") or 0) for r in requests)


def check_capacity(location: str, body: Mapping[str, Any], others: Sequence[Mapping[str, Any]], limit: float) -> None:
    """Raise the 409 ServiceUnavailable ACI answers when the CPU free in a region (limit, less what
    the other groups there take) is less than the group asks for."""
    used = sum(_group_requests(o)[0] for o in others if _place(o) == location)
    cpu, memory = _group_requests(body)
    if used + cpu > limit + 1e-9:
        raise ArmError(
            409, "ServiceUnavailable",
            f"The requested resource is not available in the location '{location}' at this moment. Please retry "
            f"with a different resource request or in another location. Resource requested: '{cpu:g}' CPU "
            f"'{memory:g}' GB memory 'Linux' OS",
        )


def check_updatable(name: str, state: str) -> None:
    """Raise the 409 for an update of a terminated group (Stopped, Succeeded, Failed)."""
    if state in ("Stopped", "Succeeded", "Failed"):
        raise ArmError(
            409, "ContainerGroupTerminated",
            f"The container group '{name}' is in state '{state}' and cannot be updated; delete it and create it "
            "again.",
        )


def _place(body: Mapping[str, Any]) -> str:
    """A body's location, normalised."""
    return str(body.get("location", "")).replace(" ", "").lower()


def _norm(value: Any) -> Any:
    """A JSON value with Nones dropped and numbers as floats, for comparisons."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _norm(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value
