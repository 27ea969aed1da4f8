"""ARM container-group JSON seen as multicloud resources: one `container/NAME` per container
and one `group/NAME`. Both desired (projected from the body about to be PUT) and observed
(projected from GET) go through these functions, so an unchanged group diffs as equal."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from multicloud.resources import Resource, Sensitive
from multicloud_azure import tags
from multicloud_azure.acr import TOKEN_USER as ACR_TOKEN_USER
from multicloud_azure.api import Json
from multicloud_azure.mapping import SECRETS_PATH, secrets_volume

# `containers`: ACI sizes a group by the sum of its containers and changes that only by recreating it
TERMINATED = ("Stopped", "Succeeded", "Failed")
GROUP_REPLACE_ON = frozenset({"location", "os_type", "restart_policy", "sku", "containers"})
CONTAINER_REPLACE_ON = frozenset({"cpu", "memory_gb"})


def group_key(name: str) -> str:
    """The resource key of a container group."""
    return f"group/{name}"


def resources(group: Mapping[str, Any], *, primary: bool = True, payload: Any = None) -> list[Resource]:
    """Every resource a group holds: its containers (when primary), which depend on the group
    (it is PUT first, with all of them; a container's own step then finds it as rendered),
    then the group itself."""
    props = group["properties"]
    all_tags: Mapping[str, str] = group.get("tags") or {}
    containers: list[Resource] = []
    never_restarted = props.get("restartPolicy") == "Never"
    if primary:
        count = len(props.get("containers") or [])
        effect = f"ACI restarts all {count} container(s) of group {group['name']}"
        public = {(int(p["port"]), str(p.get("protocol") or "TCP").upper()) for p in _ip(props).get("ports") or []}
        mounted = {v["name"] for v in props.get("volumes") or [] if "secret" in v}
        for item in props.get("containers") or []:
            meta = tags.get_json(all_tags, tags.container_key(item["name"]))
            containers.append(
                Resource(
                    "container",
                    item["name"],
                    container_properties(item, public, mounted, meta),
                    depends_on=(group_key(str(group["name"])),),
                    replace_on=CONTAINER_REPLACE_ON,
                    replace_mode="delete-before-create",
                    service=item["name"],
                    payload=payload,
                    update_effect=effect,
                    faults=container_faults(item) if never_restarted else (),
                    target=all_tags.get(tags.TARGET, ""),
                )
            )
    failed = props.get("provisioningState") == "Failed"
    faults = [f"group {group['name']} failed to provision: {failure(group)}"] if failed else []
    if terminated(group) == "Stopped":
        faults.append(f"group {group['name']} is stopped and ACI cannot update a terminated group in place")
    group_resource = Resource(
        "group",
        str(group["name"]),
        group_properties(group, tags.get_json(all_tags, tags.GROUP_META)),
        replace_on=GROUP_REPLACE_ON,
        replace_mode="delete-before-create",
        payload=payload,
        faults=tuple(faults),
        target=all_tags.get(tags.TARGET, ""),
    )
    return [*containers, group_resource]


def terminated(group: Mapping[str, Any]) -> str | None:
    """The group's state when it has terminated (Stopped, Succeeded or Failed: every container
    exited), else None; ACI updates such a group only by recreating it."""
    state = (group["properties"].get("instanceView") or {}).get("state")
    return str(state) if state in TERMINATED else None


def failure(group: Mapping[str, Any]) -> str:
    """Why a group failed, from its containers' states and its events (ARM's words)."""
    props = group["properties"]
    reasons = [((c["properties"].get("instanceView") or {}).get("currentState") or {}).get("detailStatus")
               for c in props.get("containers") or []]
    reasons += [e.get("message") for e in (props.get("instanceView") or {}).get("events") or []]
    found = list(dict.fromkeys(r for r in reasons if r))
    return "; ".join(found) or "no reason given; see `multicloud logs`"


def exit_code(group: Mapping[str, Any], name: str) -> int | None:
    """The exit code of one container of a GET once it has terminated, else None."""
    for item in group["properties"].get("containers") or []:
        if item["name"] == name:
            return _exit_code(item)
    return None


def _exit_code(item: Mapping[str, Any]) -> int | None:
    current = (item["properties"].get("instanceView") or {}).get("currentState") or {}
    code = current.get("exitCode")
    return int(code) if current.get("state") == "Terminated" and code is not None else None


def container_faults(item: Mapping[str, Any]) -> tuple[str, ...]:
    """What is broken in a container of a group ACI never restarts: it exited with a failure."""
    code = _exit_code(item)
    if code not in (None, 0):
        return (f"{item['name']} exited ({code})",)
    return ()


def group_properties(group: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """What the plan compares for the group itself."""
    props = group["properties"]
    ip = _ip(props)
    registry = None
    for cred in props.get("imageRegistryCredentials") or []:
        if cred.get("username") == ACR_TOKEN_USER:
            continue  # the `acr` registry's, with a refresh token from each apply (compared as `acr`)
        digest = meta.get("r")
        registry = {
            "server": cred.get("server"),
            "username": cred.get("username"),
            "password": tags.decode_digest(digest) if isinstance(digest, str) else None,
        }
    return {
        "location": str(group.get("location", "")).replace(" ", "").lower(),
        "os_type": props.get("osType"),
        "restart_policy": props.get("restartPolicy") or "Always",
        "sku": props.get("sku") or "Standard",
        "ip": {"type": ip.get("type"), "dns_label": ip.get("dnsNameLabel")} if ip else None,
        "registry": registry,
        "acr": meta.get("a"),
        "containers": sorted(str(c["name"]) for c in props.get("containers") or []),
    }


def container_properties(
    item: Mapping[str, Any], public: set[tuple[int, str]], secret_volumes: set[str], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """What the plan compares for one container; secure values come back as digests from the
    tag metadata (ARM never returns them)."""
    props = item["properties"]
    digests = [tags.decode_digest(d) for d in meta.get("s") or [] if isinstance(d, str)]
    env: dict[str, str | Sensitive | None] = {}
    for var in props.get("environmentVariables") or []:
        if var.get("value") is not None:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = digests.pop(0) if digests else None
    names = {(int(p[0]), str(p[1])): (str(p[2]), str(p[3])) for p in meta.get("p") or [] if len(p) == 4}
    ports = []
    for port in props.get("ports") or []:
        key = (int(port["port"]), str(port.get("protocol") or "TCP").upper())
        name, protocol = names.get(key, (f"{key[0]}-{key[1].lower()}", key[1].lower()))
        ports.append({"name": name, "port": key[0], "protocol": protocol, "public": key in public})
    requests = (props.get("resources") or {}).get("requests") or {}
    mounts = [m for m in props.get("volumeMounts") or [] if m.get("name") in secret_volumes]
    files = meta.get("f") or {}
    secret_files: dict[str, Sensitive] | None = None
    if any(m.get("name") == secrets_volume(item["name"]) and m.get("mountPath") == SECRETS_PATH for m in mounts):
        secret_files = {k: tags.decode_digest(v) for k, v in sorted(files.items()) if isinstance(v, str)}
    image = props.get("image")
    build = meta.get("b")
    if isinstance(image, str) and isinstance(build, dict) and image.partition("@")[0].endswith(f"/{item['name']}"):
        image = build  # pushed from a `build:` (acr.push_builds): compared as the build it came from
    return {
        "image": image,
        "command": list(props["command"]) if props.get("command") else None,
        "env": env,
        "ports": ports,
        "cpu": float(requests.get("cpu") or 0),
        "memory_gb": float(requests.get("memoryInGB") or 0),
        "liveness": _probe(props.get("livenessProbe")),
        "readiness": _probe(props.get("readinessProbe")) or _unprobed(meta.get("t")),
        "secret_files": secret_files,
    }


def _unprobed(port: Any) -> str | None:
    """What the plan says for a tcp check ACI cannot probe, or None."""
    if not isinstance(port, int):
        return None
    return f"none: the tcp check on port {port} is not probed (ACI probes are exec or httpGet only)"


def _probe(probe: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The compared fields of a probe, or None."""
    if not probe:
        return None
    keys = ("exec", "httpGet", "initialDelaySeconds", "periodSeconds", "failureThreshold", "successThreshold",
            "timeoutSeconds")
    return {k: probe[k] for k in keys if probe.get(k) is not None}


def _ip(props: Mapping[str, Any]) -> Json:
    """A group's ipAddress, or {}."""
    ip = props.get("ipAddress")
    return dict(ip) if isinstance(ip, Mapping) else {}


def container_state(group: Mapping[str, Any], name: str) -> tuple[str, str, int]:
    """(state, detail, restart count) of one container from a GET, ('Missing', ...) if absent."""
    for item in group["properties"].get("containers") or []:
        if item["name"] == name:
            view = item["properties"].get("instanceView") or {}
            current = view.get("currentState") or {}
            return str(current.get("state") or "Waiting"), str(current.get("detailStatus") or ""), int(
                view.get("restartCount") or 0
            )
    return "Missing", f"no container {name} in group {group.get('name')}", 0


def public_host(group: Mapping[str, Any]) -> str | None:
    """The group's FQDN, else its public IP, else None."""
    ip = _ip(group["properties"])
    if ip.get("type") != "Public":
        return None
    return ip.get("fqdn") or ip.get("ip")


def stamped(line: str) -> tuple[str, str]:
    """(time, text) of a log line ACI returned with timestamps; the time's fraction padded to
    nanoseconds so that times compare as text ('' when the line has none)."""
    stamp, _, text = line.partition(" ")
    if not stamp.endswith("Z") or "T" not in stamp:
        return "", line
    whole, _, fraction = stamp[:-1].partition(".")
    return f"{whole}.{fraction.ljust(9, '0')[:9]}Z", text


def stamp_of(moment: datetime) -> str:
    """A time as `stamped` gives it (UTC, nanoseconds), to compare with the times of lines."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}000Z"


def after(lines: list[tuple[str, str]], mark: tuple[str, int] | None) -> Iterator[tuple[str, tuple[str, int]]]:
    """The texts of stamped lines that come after `mark` (the last time yielded and how many lines
    had that time), each with the mark it leaves; unstamped lines count as at the previous time."""
    last, count = mark or ("", 0)
    current, index = "", 0
    for given, text in lines:
        stamp = given or current
        index = index + 1 if stamp == current else 1
        current = stamp
        if stamp > last or (stamp == last and index > count):
            yield text, (stamp, index)
