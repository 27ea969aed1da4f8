"""Target settings of the docker provider: a pydantic model the core checks before anything runs.

Imports no docker SDK: the core reads this model (entry point `multicloud.settings`) for
`multicloud validate` and `multicloud schema`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, WithJsonSchema, model_validator

from multicloud.settings import ProviderSettings, validate_settings

DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "NET_BIND_SERVICE", "SETGID", "SETUID")
"""Kept after `cap_drop: ALL`: enough for images whose entrypoint drops root (postgres, mosquitto)."""

_CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")
PUBLISH_KEY = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?\.[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
ENGINE_SCHEMES = ("unix", "tcp", "ssh", "http", "https", "npipe")


def _host(value: str) -> str:
    """An engine address with a scheme docker understands."""
    if urlparse(value).scheme not in ENGINE_SCHEMES:
        raise ValueError(f"{value!r} has no known scheme (unix://, tcp://, ssh://)")
    return value


def _address(value: str) -> str:
    """An IP address, normalised."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)") from None


def _capabilities(value: Any) -> Any:
    """Capability names upper-cased without CAP_, sorted, ALL refused."""
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise ValueError("give a list such as [CHOWN, SETUID, SETGID]")
    caps = [c.upper().removeprefix("CAP_") for c in value]
    bad = [c for c in caps if not _CAPABILITY.match(c) or c == "ALL"]
    if bad:
        raise ValueError(f"not capability names: {', '.join(bad)} (ALL is not allowed)")
    return tuple(sorted(set(caps)))


def _publish_key(value: str) -> str:
    """SERVICE.PORT: a service name and one of its port names."""
    if not re.match(PUBLISH_KEY, value):
        raise ValueError(f"key {value!r} is not SERVICE.PORT (a service name and one of its port names)")
    return value


Port = Annotated[StrictInt, Field(ge=0, le=65535)]
PublishKey = Annotated[str, AfterValidator(_publish_key), WithJsonSchema({"type": "string", "pattern": PUBLISH_KEY})]


class DockerSettings(ProviderSettings):
    """Settings of a `docker` target (a local or remote Docker engine)."""

    host: Annotated[str, Field(min_length=1), AfterValidator(_host)] | None = Field(
        default=None,
        description="engine address, e.g. unix:///var/run/docker.sock or tcp://host:2375 (default: DOCKER_HOST)",
    )
    port_offset: StrictInt = Field(
        default=0, gt=-65535, lt=65535, description="added to every public port to get its host port (default 0)"
    )
    publish: dict[PublishKey, Port] = Field(
        default_factory=dict, description="host port per public port, as {SERVICE.PORT: N}; 0 picks a free port"
    )
    bind_address: Annotated[str, AfterValidator(_address)] = Field(
        default="0.0.0.0",  # noqa: S104 - like compose: devices on the LAN reach the broker
        description="host address public ports listen on (default 0.0.0.0)",
    )
    public_host: Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)] = Field(
        default="localhost", min_length=1,
        description="host name endpoints print (default: localhost, or the host of a tcp:// engine)",
    )
    build: StrictBool = Field(default=True, description="allow build: services (default true)")
    stop_timeout: StrictInt = Field(
        default=10, ge=0, le=3600, description="seconds a container gets to stop before it is killed (default 10)"
    )
    capabilities: Annotated[tuple[str, ...], BeforeValidator(_capabilities)] = Field(
        default=DEFAULT_CAPABILITIES,
        description=f"Linux capabilities kept after dropping all (default {', '.join(DEFAULT_CAPABILITIES)})",
        json_schema_extra={"type": "array", "items": {"type": "string"}},
    )
    postgres_image: Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")] = Field(
        default="postgres:{version}",
        description="the image a postgres resource runs, {version} its major version (default postgres:{version}, "
        "the official image, or a stand-in of it)",
    )
    init: StrictBool = Field(
        default=True,
        description="run an init process (docker-init) as PID 1 that forwards signals and reaps zombies (default true)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_public_host(cls, data: Any) -> Any:
        """public_host defaults to the host of a remote engine (host or DOCKER_HOST), else localhost."""
        if isinstance(data, Mapping) and "public_host" not in data:
            host = data.get("host")
            parsed = urlparse(host if isinstance(host, str) else os.environ.get("DOCKER_HOST", ""))
            remote = parsed.scheme in ("tcp", "ssh", "http", "https") and parsed.hostname
            return {**data, "public_host": parsed.hostname if remote else "localhost"}
        return data


def parse_settings(raw: Mapping[str, Any] | DockerSettings) -> DockerSettings:
    """Check target settings and return them typed; raise SettingsError listing every problem."""
    return validate_settings(DockerSettings, raw, provider="docker")
