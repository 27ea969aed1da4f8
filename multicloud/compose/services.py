"""One compose service as a spec service: the keys the spec can carry, and a note at file:line for each it cannot."""

from __future__ import annotations

import re
from typing import Any

from multicloud.compose.context import Context, FieldPath
from multicloud.spec.models import IDENTIFIER_PATTERN, NAME_PATTERN
from multicloud.spec.units import format_memory

WHY_NOT = {
    "container_name": "each target names containers itself",
    "networks": "the services of an app share one network on every target",
    "hostname": "a service is reached by its name (${services.NAME.host})",
    "labels": "targets label what they create with the app's own labels",
    "logging": "each target ships logs its own way (multicloud logs)",
    "stop_grace_period": "targets stop containers with their own grace period",
    "working_dir": "set WORKDIR in the image",
    "extends": "write the service out in full",
}
SHAPES = {
    "ports": "a list of \"HOST:CONTAINER\" or of mappings with target",
    "expose": "a list of port numbers",
    "volumes": "a list of \"NAME:/path\" or of mappings with type, source, target",
    "secrets": "a list of names or of mappings with source",
    "healthcheck": "a mapping with test, interval, timeout, retries, start_period",
    "deploy": "a mapping with replicas and resources.limits",
    "depends_on": "a list of services or a mapping of service: {condition}",
    "environment": "a list of KEY=VALUE or a mapping",
    "profiles": "a list of names",
}
RESTARTS_CARRIED = ("always", "unless-stopped", None)
_COMPOSE_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_PORT_PROTOCOLS = ("http", "https", "grpc", "tcp", "udp")


def convert_service(ctx: Context, name: str, service: dict[str, Any], out: dict[str, Any]) -> None:
    """Fill `out` (the spec service) from a compose service at services.NAME; record notes and errors in ctx."""
    at: FieldPath = ("services", name)
    for key, value in service.items():
        path = (*at, key)
        if key.startswith("x-") or value is None:
            continue
        handler = _HANDLERS.get(key)
        if handler is not None:
            try:
                handler(ctx, path, value, out)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                shape = SHAPES.get(key, "see the compose specification")
                ctx.error(path, f"cannot read `{key}` as compose writes it ({shape}): {exc}")
        else:
            ctx.note(path, f"the spec has no `{key}`" + (f": {WHY_NOT[key]}" if key in WHY_NOT else ""))
    if "image" in out and "build" in out:
        ctx.note((*at, "image"), "built images are tagged by each target; the build is kept, the image name dropped")
        del out["image"]


def _image(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    out["image"] = ctx.text(path, value)


def _build(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, dict):
        ctx.error(path, "build is a context path or a mapping (context, dockerfile, args, target)")
        return
    build: dict[str, Any] = {"context": ctx.text((*path, "context"), value.get("context", "."))}
    for key, item in value.items():
        if key in ("dockerfile", "target"):
            build[key] = ctx.text((*path, key), item)
        elif key == "args":
            build["args"] = {k: ctx.text((*path, key, k), v) for k, v in _as_map(item).items() if v is not None}
        elif key != "context" and not key.startswith("x-"):
            ctx.note((*path, key), f"the spec's build has no `{key}` (only context, dockerfile, args, target)")
    out["build"] = build


def _command(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, list):
        out[str(path[-1])] = [ctx.text((*path, i), str(v)) for i, v in enumerate(value)]
    else:
        out[str(path[-1])] = ctx.text(path, str(value))


def _environment(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    env = out.setdefault("env", {})
    for key, item in _as_map(value).items():
        if item is None:  # `KEY` alone: compose passes the variable through from the shell
            env[key] = f"${{env.{key}:-}}"
        else:
            env[key] = ctx.text((*path, key), item if isinstance(item, str) else _scalar(item))
        ctx.mark(("env", key), (*path, key))


def _env_file(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    entries = value if isinstance(value, list) else [value]
    read: dict[str, str] = {}
    for index, entry in enumerate(entries):
        file, required = (entry.get("path"), entry.get("required", True)) if isinstance(entry, dict) else (entry, True)
        read.update(ctx.read_env_file((*path, index) if isinstance(value, list) else path, str(file), bool(required)))
    if read:
        ctx.note(path, f"the file itself: its variables ({', '.join(sorted(read))}) are copied into env; "
                 "move any secret among them to secrets:")
    out["env"] = {**read, **out.get("env", {})}  # `environment` beats env_file, as in compose


def _ports(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    for index, item in enumerate(_listed(value)):
        where = (*path, index)
        port = _long_port(ctx, where, item) if isinstance(item, dict) else _short_port(ctx, where, item)
        if port is not None:
            _add_port(ctx, (*path, index), port, out)


def _short_port(ctx: Context, path: FieldPath, item: Any) -> dict[str, Any] | None:
    """`[IP:][HOST:]CONTAINER[/PROTO]` as a spec port; None (with an error or note) when it cannot be one."""
    text = ctx.resolve(path, str(item))
    spec, _, proto = text.partition("/")
    parts = spec.rsplit(":", 2)
    if any("-" in part for part in parts):
        ctx.error(path, f"port range {text!r}: the spec names each port; list them one by one")
        return None
    host_ip = parts[0] if len(parts) == 3 else None
    published = parts[-2] if len(parts) >= 2 else None
    return _port(ctx, path, parts[-1], published=published, proto=proto or "tcp", host_ip=host_ip)


def _long_port(ctx: Context, path: FieldPath, item: dict[str, Any]) -> dict[str, Any] | None:
    for key in item:
        if key == "mode":
            ctx.note((*path, key), "each target routes a port to every replica itself")
        elif key not in ("target", "published", "protocol", "host_ip", "app_protocol", "name"):
            ctx.note((*path, key), f"a port has no `{key}` in the spec")
    published = item.get("published")
    if published is not None and "-" in str(published):
        ctx.error((*path, "published"), f"port range {published!r}: the spec names each port; list them one by one")
        return None
    return _port(ctx, path, str(item.get("target", "")), published=None if published is None else str(published),
                 proto=str(item.get("protocol", "tcp")), host_ip=item.get("host_ip"),
                 app_protocol=item.get("app_protocol"), name=item.get("name"))


def _port(ctx: Context, path: FieldPath, target: str, *, published: str | None, proto: str, host_ip: Any = None,
          app_protocol: Any = None, publish: bool = True, name: Any = None) -> dict[str, Any] | None:
    """A spec port from its parts; notes what the spec does not keep (host port, host address)."""
    if not target.isdigit() or not 1 <= int(target) <= 65535:
        ctx.error(path, f"container port {target!r} is not a number from 1 to 65535")
        return None
    number = int(target)
    if published not in (None, "", target):
        ctx.note(path, f"host port {published}: each target publishes the container port {number} itself")
    local_only = host_ip in ("127.0.0.1", "localhost", "::1")
    if local_only:
        ctx.note(path, f"host address {host_ip}: kept internal (reached from inside the app only)")
    protocol = app_protocol if app_protocol in _PORT_PROTOCOLS else ("udp" if proto == "udp" else "tcp")
    valid_name = isinstance(name, str) and re.fullmatch(NAME_PATTERN, name)
    port = {"name": name if valid_name else f"{protocol}-{number}", "port": number, "protocol": protocol}
    port["expose"] = "public" if publish and not local_only else "internal"
    return port


def _add_port(ctx: Context, path: FieldPath, port: dict[str, Any], out: dict[str, Any]) -> None:
    ports = out.setdefault("ports", [])
    same = [p for p in ports if p["port"] == port["port"] and (p["protocol"] == "udp") == (port["protocol"] == "udp")]
    if same:
        if port["expose"] == "public":
            same[0]["expose"] = "public"
        return
    ctx.mark(("ports", len(ports)), path)
    ports.append(port)


def _expose(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    for index, item in enumerate(_listed(value)):
        text = ctx.resolve((*path, index), str(item))
        number, _, proto = text.partition("/")
        if "-" in number:
            ctx.error((*path, index), f"port range {text!r}: the spec names each port; list them one by one")
            continue
        port = _port(ctx, (*path, index), number, published=None, proto=proto or "tcp", publish=False)
        if port is not None:
            _add_port(ctx, (*path, index), port, out)


def _volumes(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    for index, item in enumerate(_listed(value)):
        where = (*path, index)
        if isinstance(item, dict):
            kind, source, target = item.get("type", "volume"), item.get("source"), item.get("target")
            read_only = bool(item.get("read_only", False))
        else:
            parts = ctx.resolve(where, str(item)).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source and source[0] in "./~" else "volume"
        if kind == "bind":
            ctx.note(where, f"bind mount of {source}: cloud targets cannot mount a directory of this machine "
                     "(refused; use a named volume, or build the files into the image)")
        elif kind != "volume" or not source:
            ctx.note(where, f"{kind if source else 'anonymous'} volume at {target}: the spec has named volumes only")
        elif not re.fullmatch(IDENTIFIER_PATTERN, str(source)):
            ctx.error(where, f"volume name {source!r}: a spec volume is letters, digits, '_' and '-'")
        else:
            ctx.mark(("volumes", len(out.setdefault("volumes", []))), where)
            out["volumes"].append(f"{source}:{target}:ro" if read_only else f"{source}:{target}")
            ctx.used_volumes.add(str(source))


def _secrets(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    for index, item in enumerate(_listed(value)):
        source = item.get("source") if isinstance(item, dict) else item
        if isinstance(item, dict):
            for key in item:
                if key != "source":
                    ctx.note((*path, index, key), f"secrets are mounted at /run/secrets/NAME; `{key}` is not kept")
        ctx.mark(("secrets", len(out.setdefault("secrets", []))), (*path, index))
        out["secrets"].append(source)


def _healthcheck(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    test = _mapping(value).get("test")
    if value.get("disable") or test in (["NONE"], "NONE", None):
        return
    check: dict[str, Any] = {}
    if isinstance(test, str):
        check["command"] = ["sh", "-c", ctx.text((*path, "test"), test)]
    elif not isinstance(test, list):
        ctx.error((*path, "test"), "test is a string, [CMD, ...], [CMD-SHELL, ...] or [NONE]")
        return
    elif test[:1] == ["CMD"]:
        check["command"] = [ctx.text((*path, "test", i + 1), str(a)) for i, a in enumerate(test[1:])]
    elif test[:1] == ["CMD-SHELL"]:
        check["command"] = ["sh", "-c", ctx.text((*path, "test", 1), " ".join(map(str, test[1:])))]
    else:
        ctx.error((*path, "test"), "test is a string, [CMD, ...], [CMD-SHELL, ...] or [NONE]")
        return
    for key, item in value.items():
        if key in ("interval", "timeout", "start_period", "retries"):
            check[key] = ctx.resolve((*path, key), str(item)) if key != "retries" else item
        elif key not in ("test", "disable"):
            ctx.note((*path, key), f"the spec's healthcheck has no `{key}`")
    ctx.mark(("healthcheck",), path)
    out["healthcheck"] = check


def _depends_on(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    names = list(value) if isinstance(value, dict) else _listed(value)
    for name in names:
        options = value[name] if isinstance(value, dict) and isinstance(value[name], dict) else {}
        condition = options.get("condition", "service_started")
        if condition == "service_completed_successfully":
            ctx.note((*path, name), "condition service_completed_successfully: the spec runs services, not one-off "
                     "jobs; kept as an ordering")
        for key in options:
            if key != "condition":
                ctx.note((*path, name, key), f"depends_on has no `{key}` in the spec")
        ctx.depends.append((path, name))
        out.setdefault("depends_on", []).append(name)


def _deploy(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    for key, item in _mapping(value).items():
        if key == "replicas":
            out["replicas"] = int(ctx.resolve((*path, key), str(item)))
        elif key == "resources" and isinstance(item, dict):
            _resources(ctx, (*path, key), item, out)
        elif not key.startswith("x-"):
            ctx.note((*path, key), f"the spec has no deploy.{key}; targets place and update replicas themselves")


def _resources(ctx: Context, path: FieldPath, value: dict[str, Any], out: dict[str, Any]) -> None:
    for key, item in value.items():
        if key != "limits":
            ctx.note((*path, key), f"the spec sizes each replica by its limits; `{key}` is not kept")
            continue
        resources: dict[str, Any] = {}
        for limit, amount in (item or {}).items():
            where = (*path, key, limit)
            if limit == "cpus":
                resources["cpu"] = float(ctx.resolve(where, str(amount)))
            elif limit == "memory":
                resources["memory"] = _memory(ctx.resolve(where, str(amount)))
            else:
                ctx.note(where, f"the spec has no `{limit}` limit")
            ctx.mark(("resources", "cpu" if limit == "cpus" else limit), where)
        out["resources"] = resources


def _memory(text: str) -> Any:
    """Compose's memory units (b, k, m, g; powers of 1024) as bytes; the text itself when it is not one."""
    match = _COMPOSE_MEMORY.match(text)
    if match is None:
        return text
    scale = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return format_memory(int(float(match.group(1)) * scale))


def _scale(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    out["replicas"] = int(ctx.resolve(path, str(value)))


def _restart(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    if value not in RESTARTS_CARRIED:
        ctx.note(path, f"restart {value}: every target restarts a container that stops")


def _user(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    out[str(path[-1])] = value if isinstance(value, bool) else ctx.text(path, str(value))


def _profiles(ctx: Context, path: FieldPath, value: Any, out: dict[str, Any]) -> None:
    """Profiles were applied before conversion (a service outside the active ones is left out)."""


def _listed(value: Any) -> list[Any]:
    """A compose list; TypeError (reported at the key) for anything else."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    """A compose mapping; TypeError (reported at the key) for anything else."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, found {type(value).__name__}")
    return value


def _as_map(value: Any) -> dict[str, Any]:
    """A compose list of KEY=VALUE (or KEY alone) or a mapping, as a mapping."""
    if isinstance(value, dict):
        return value
    pairs = [str(item).partition("=") for item in _listed(value)]
    return {key: (val if sep else None) for key, sep, val in pairs}


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


_HANDLERS = {
    "image": _image, "build": _build, "command": _command, "entrypoint": _command,
    "environment": _environment, "env_file": _env_file, "ports": _ports, "expose": _expose,
    "volumes": _volumes, "secrets": _secrets, "healthcheck": _healthcheck, "depends_on": _depends_on,
    "deploy": _deploy, "scale": _scale, "restart": _restart, "user": _user, "read_only": _user,
    "profiles": _profiles,
}
