"""The service models: what a service runs (image or build, command, env), the ports it serves,
its resources, health check and volume mounts."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from multicloud.spec.fields import (
    Command,
    Duration,
    EnvName,
    EnvValue,
    Exposure,
    Identifier,
    MemorySize,
    Model,
    Name,
    PortProtocol,
)


class Build(Model):
    """Build an image from a context directory (relative to the spec file)."""

    context: str
    """the build context: a directory relative to the spec file"""
    dockerfile: str = "Dockerfile"
    """the Dockerfile, relative to the context"""
    args: dict[str, EnvValue] = Field(default_factory=dict)
    """build arguments (ARG values)"""
    target: str | None = None
    """the stage of a multi-stage Dockerfile to build (default: the last)"""


class Port(Model):
    """A port the service listens on; `expose: public` makes it reachable from outside.
    https, mqtts and mqtt-wss ports are served over TLS by the container itself."""

    name: Name
    """the port's name, used by ${services.S.port.NAME}, ${services.S.url.NAME} and the service's own
    ${ports.NAME} (the container port served for it on the target, 0 if none) and ${ports.NAME.tls}"""
    port: int = Field(ge=1, le=65535)
    """the number the container listens on"""
    protocol: PortProtocol = "tcp"
    """what the port speaks; https, mqtts and mqtt-wss: the container serves TLS itself"""
    expose: Exposure = "internal"
    """public: reachable from outside the target; internal: only the app's services"""
    fallback: Name | None = Field(
        default=None,
        description="another port of this service to use where a target cannot serve this one (no raw TCP)",
    )


class Resources(Model):
    """CPU (in cores) and memory (bytes, written like 512Mi) for each replica."""

    cpu: float = Field(default=0.25, gt=0, le=64)
    """cores per replica"""
    memory: MemorySize = 512 * 1024 * 1024
    """memory per replica"""


class HealthCheck(Model):
    """Exactly one of http (a path), tcp (a port) or command, with timing."""

    http: str | None = Field(default=None, pattern=r"^/")
    """a path answered with 2xx or 3xx when healthy"""
    port: int | None = Field(default=None, ge=1, le=65535, description="port for http checks")
    tcp: int | None = Field(default=None, ge=1, le=65535)
    """a port that accepts connections when healthy"""
    command: Command | None = None
    """a command run in the container, healthy when it exits 0"""
    interval: Duration = 10.0
    """time between checks"""
    timeout: Duration = 5.0
    """how long one check may take"""
    retries: int = Field(default=3, ge=1, le=100)
    """failed checks in a row that make it unhealthy"""
    start_period: Duration = 0.0
    """time after start during which failures do not count"""

    @model_validator(mode="after")
    def _exactly_one_probe(self) -> HealthCheck:
        probes = [name for name in ("http", "tcp", "command") if getattr(self, name) is not None]
        if len(probes) != 1:
            found = ", ".join(probes) or "none"
            raise ValueError(f"give exactly one of http, tcp or command (found: {found})")
        if self.port is not None and self.http is None:
            raise ValueError("port applies only to http checks; for tcp give the port as tcp: N")
        return self


def _volume_short_form(value: Any) -> Any:
    """Accept "name:/path" and "name:/path:ro" as well as the mapping form."""
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ValueError("a volume is written NAME:/path or NAME:/path:ro")
        return {"source": parts[0], "target": parts[1], "read_only": parts[2:] == ["ro"]}
    return value


class VolumeMount(Model):
    """A named volume (declared under top-level `volumes`) mounted at an absolute path."""

    source: Identifier
    """a volume declared under the top-level volumes"""
    target: str = Field(pattern=r"^/")
    """where it is mounted in the container (an absolute path)"""
    read_only: bool = False
    """mount it read-only"""


def _build_short_form(value: Any) -> Any:
    return {"context": value} if isinstance(value, str) else value


VOLUME_SHORT_FORM = r"^[A-Za-z][A-Za-z0-9_-]{0,62}:/[^:]*(:(ro|rw))?$"


class Service(Model):
    """One containerised service: what to run and how it is reached."""

    image: str | None = None
    """the image to run (repository/name:tag); give image or build"""
    build: Annotated[
        Build | None,
        BeforeValidator(_build_short_form, json_schema_input_type=Build | str | None),
    ] = None
    """build the image from a context (a path, or context, dockerfile, args, target); give image or build"""
    command: Command | None = None
    """the arguments to run (default: the image's CMD); placeholders allowed"""
    entrypoint: Command | None = None
    """replaces the image's ENTRYPOINT; placeholders allowed"""
    ports: list[Port] = Field(default_factory=list)
    """the ports it listens on"""
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    """environment variables; values may hold ${...} placeholders (${services.S.url}, ${secrets.N.file},
    ${ports.P} and ${ports.P.tls}: what the container serves for its port P on the target, ...)"""
    secrets: list[Identifier] = Field(default_factory=list, description="mounted at /run/secrets/NAME")
    resources: Resources = Field(default_factory=Resources)
    """CPU and memory of each replica"""
    replicas: int = Field(default=1, ge=0, le=1000)
    """how many copies run"""
    healthcheck: HealthCheck | None = None
    """how the target tells the service is ready and alive"""
    depends_on: list[Name] = Field(default_factory=list)
    """services started (and healthy) before this one"""
    volumes: list[
        Annotated[
            VolumeMount,
            BeforeValidator(
                _volume_short_form,
                json_schema_input_type=VolumeMount | Annotated[str, StringConstraints(pattern=VOLUME_SHORT_FORM)],
            ),
        ]
    ] = Field(default_factory=list)
    """named volumes mounted into the container (NAME:/path[:ro])"""
    user: str | None = None
    """user (and group) the process runs as, e.g. 1000:1000"""
    read_only: bool = False
    """a read-only root filesystem"""

    @model_validator(mode="after")
    def _image_or_build(self) -> Service:
        if (self.image is None) == (self.build is None):
            raise ValueError("give exactly one of image or build")
        return self

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[Port]) -> list[Port]:
        names = [p.name for p in ports]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"port names must be unique (repeated: {', '.join(dup)})")
        numbers = [(p.port, p.protocol == "udp") for p in ports]
        if len(set(numbers)) != len(numbers):
            raise ValueError("two ports use the same number and transport")
        return ports

    def port(self, name: str | None = None) -> Port | None:
        """Return the named port, or the first port when no name is given."""
        if name is None:
            return self.ports[0] if self.ports else None
        return next((p for p in self.ports if p.name == name), None)
