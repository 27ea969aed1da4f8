"""Target settings of the docker provider: parsed and checked before anything runs."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from multicloud.errors import SettingsError

DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "NET_BIND_SERVICE", "SETGID", "SETUID")
"""Kept after `cap_drop: ALL`: enough for images whose entrypoint drops root (postgres, mosquitto)."""

_CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")
_PUBLISH_KEY = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?\.[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")

DESCRIPTIONS = {
    "host": "engine address, e.g. unix:///var/run/docker.sock or tcp://host:2375 (default: DOCKER_HOST)",
    "port_offset": "added to every public port to get its host port (default 0)",
    "publish": "host port per public port, as {SERVICE.PORT: N}; 0 picks a free port",
    "bind_address": "host address public ports listen on (default 0.0.0.0)",
    "public_host": "host name endpoints print (default: localhost, or the host of a tcp:// engine)",
    "build": "allow build: services (default true)",
    "stop_timeout": "seconds a container gets to stop before it is killed (default 10)",
    "rollout_timeout": "seconds a new replica gets to become healthy during a rolling update (default 300)",
    "capabilities": f"Linux capabilities kept after dropping all (default {', '.join(DEFAULT_CAPABILITIES)})",
    "init": "run an init process (docker-init) as PID 1 that forwards signals and reaps zombies (default true)",
}


@dataclass(frozen=True)
class DockerSettings:
    """The validated settings of one docker target."""

    host: str | None = None
    port_offset: int = 0
    publish: Mapping[str, int] = field(default_factory=dict)
    bind_address: str = "0.0.0.0"  # noqa: S104 - like compose: devices on the LAN reach the broker
    public_host: str = "localhost"
    build: bool = True
    stop_timeout: int = 10
    rollout_timeout: float = 300.0
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    init: bool = True


def parse_settings(raw: Mapping[str, Any]) -> DockerSettings:
    """Check target settings and return them typed; raise SettingsError naming the first bad
    key (the message lists every problem, the hint every setting)."""
    problems: list[tuple[str, str]] = []
    for key in sorted(set(raw) - set(DESCRIPTIONS)):
        close = difflib.get_close_matches(key, list(DESCRIPTIONS), n=1)
        advice = f"did you mean {close[0]!r}?" if close else f"known settings: {', '.join(DESCRIPTIONS)}"
        problems.append((key, f"unknown docker setting; {advice}"))
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in DESCRIPTIONS:
            try:
                values[key] = _CHECKS[key](value)
            except ValueError as exc:
                problems.append((key, str(exc)))
    if problems:
        field, message = problems[0]
        others = "".join(f"; also {k}: {m}" for k, m in problems[1:])
        error = SettingsError(field, message + others)
        error.hint = "docker settings: " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())
        raise error
    if "public_host" not in values:
        values["public_host"] = _default_public_host(values.get("host"))
    return DockerSettings(**values)


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("give an engine address such as unix:///var/run/docker.sock or tcp://host:2375")
    if urlparse(value).scheme not in ("unix", "tcp", "ssh", "http", "https", "npipe"):
        raise ValueError(f"{value!r} has no known scheme (unix://, tcp://, ssh://)")
    return value


def _port_number(value: Any, *, allow_zero: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a port number")
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ValueError(f"{value} is outside {low}..65535")
    return value


def _offset(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -65535 < value < 65535:
        raise ValueError(f"{value!r} is not a whole number of ports between -65534 and 65534")
    return value


def _publish(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError("give a mapping such as {broker.mqtt: 11883, web.http: 0}")
    result: dict[str, int] = {}
    for key, port in value.items():
        if not isinstance(key, str) or not _PUBLISH_KEY.match(key):
            raise ValueError(f"key {key!r} is not SERVICE.PORT (a service name and one of its port names)")
        result[key] = _port_number(port, allow_zero=True)
    return result


def _address(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("give a host name")
    return value.strip()


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{value!r} is not a number of seconds")
    return float(value)


def _whole_seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number of seconds")
    return value


def _capabilities(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("give a list such as [CHOWN, SETUID, SETGID]")
    caps = [str(c).upper().removeprefix("CAP_") for c in value]
    bad = [c for c in caps if not _CAPABILITY.match(c) or c == "ALL"]
    if bad:
        raise ValueError(f"not capability names: {', '.join(bad)} (ALL is not allowed)")
    return tuple(sorted(set(caps)))


_CHECKS: dict[str, Any] = {
    "host": _host,
    "port_offset": _offset,
    "publish": _publish,
    "bind_address": _address,
    "public_host": _text,
    "build": _flag,
    "stop_timeout": _whole_seconds,
    "rollout_timeout": _seconds,
    "capabilities": _capabilities,
    "init": _flag,
}


def _default_public_host(host: str | None) -> str:
    parsed = urlparse(host or os.environ.get("DOCKER_HOST", ""))
    if parsed.scheme in ("tcp", "ssh", "http", "https") and parsed.hostname:
        return parsed.hostname
    return "localhost"
