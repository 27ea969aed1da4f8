"""The spec's shape: pydantic v2 models, strict about unknown fields."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from multicloud.spec.backing import Postgres
from multicloud.spec.certificate import TlsGenerate, generate_form
from multicloud.spec.units import (
    DURATION_PATTERN,
    MAX_DURATION,
    MAX_MEMORY,
    MEMORY_PATTERN,
    format_memory,
    parse_duration,
    parse_memory,
)

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
IDENTIFIER_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]


def unit_schema(number: dict[str, Any], pattern: str, description: str) -> WithJsonSchema:
    """The JSON Schema of a value written as a number or as text with a unit (512Mi, 10s): the
    exported schema describes the file people write, not the parsed model."""
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description})


MemorySize = Annotated[
    int,
    BeforeValidator(parse_memory),
    PlainSerializer(format_memory, return_type=str, when_used="json"),
    Field(gt=0, le=MAX_MEMORY, json_schema_extra={"examples": ["512Mi", "1Gi"]}),
    unit_schema(
        {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_MEMORY},
        MEMORY_PATTERN,
        "bytes, or a size such as 512Mi, 1Gi, 1G",
    ),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0, le=MAX_DURATION),
    unit_schema(
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
        DURATION_PATTERN,
        "seconds, or a duration such as 10s, 1m30s, 500ms",
    ),
]
PortProtocol = Literal["http", "https", "grpc", "tcp", "udp", "mqtt", "mqtts", "mqtt-ws", "mqtt-wss"]
Exposure = Literal["public", "internal"]


def _scalar_to_str(value: Any) -> Any:
    """Render YAML scalars (8080, true) as the strings a process environment holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[
    str,
    BeforeValidator(_scalar_to_str),
    WithJsonSchema({"type": ["string", "number", "boolean"], "description": "numbers and booleans become text"}),
]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]


def _split_command(value: Any) -> Any:
    """Accept a command as a list of arguments or as one shell-quoted string."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command into arguments: {exc}") from exc
    return value


Command = Annotated[
    list[str],
    BeforeValidator(_split_command),
    Field(min_length=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "string", "minLength": 1, "description": "split into arguments like a shell"},
            ],
            "examples": [["python", "-m", "app"]],
        }
    ),
]


class Model(BaseModel):
    """Base: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


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


def _generate_kind(value: Any) -> str:
    """The union branch a `generate:` value is read as: a mapping is a generated TLS pair."""
    return "TLS" if isinstance(value, Mapping | TlsGenerate) else "True"


GenerateForm = Annotated[
    Annotated[
        Annotated[Literal[True], Tag("True")] | Annotated[TlsGenerate, Tag("TLS")],
        Discriminator(_generate_kind),
    ],
    BeforeValidator(generate_form),
]


class Secret(Model):
    """Where a secret's value comes from at plan time: an environment variable, a file, or
    (`generate: true`) made once and kept in the target's secret store."""

    from_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """an environment variable holding the value at plan time"""
    from_file: str | None = None
    """a UTF-8 file holding the value (relative to the spec file)"""
    generate: GenerateForm | None = Field(
        default=None,
        description="true: a random value made on the first apply and kept in the target's secret store; "
        "{type: tls, names: [...]}: a CA and a server certificate issued by it (docs: generated TLS certificates)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if sum(source is not None for source in (self.from_env, self.from_file, self.generate)) != 1:
            raise ValueError("give exactly one of from_env, from_file or generate: true")
        return self


class DerivedSecret(Secret):
    """A secret the core composes for a target (a resource's URL) instead of reading it: never
    written in a spec file, so it has no source."""

    @model_validator(mode="after")
    def _one_source(self) -> DerivedSecret:
        return self


class TlsPart(DerivedSecret):
    """One part (cert, key, ca, ca_key) of a generated TLS secret, as the core gives it a target: never
    written in a spec file (see multicloud.spec.certificate)."""

    of: str
    part: str


class Volume(Model):
    """A named volume; its data survives updates and, by default, destroy."""

    required: bool = Field(
        default=True,
        description="false: where the target has no persistent volumes (ECS Fargate, ACI, Cloud Run) nothing is "
        "mounted and the service keeps that data on its own disk, lost when it is replaced",
    )


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


TARGET_RESERVED = ("provider", "app", "defaults", "overrides", "exclude")


class Target(BaseModel):
    """A deployment target: a provider name, its settings, and per-target changes."""

    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)

    provider: str = Field(min_length=1)
    app: Name | None = Field(
        default=None, description="the app's name on this target (default: the spec's name); labels everything"
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="service fields for every service on this target (overrides beat them)"
    )
    overrides: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="per-service fields that replace the base ones"
    )
    exclude: list[Name] = Field(
        default_factory=list,
        description="services and resources that do not run on this target (services refer to an excluded "
        "resource's stand-in through this target's overrides)",
    )

    @property
    def settings(self) -> dict[str, Any]:
        """The provider settings: every key other than the core's (TARGET_RESERVED)."""
        return dict(self.model_extra or {})

    def override(self, service: str) -> dict[str, Any]:
        """What this target changes in a service: its defaults, then the service's own override
        (env, resources and build merged key by key)."""
        from multicloud.spec.targets import merge_override

        return merge_override(self.defaults, self.overrides.get(service) or {})


class Spec(Model):
    """A whole application: services, the resources they use, secrets, volumes and the targets it deploys to."""

    name: Name
    """the app's name: labels everything it owns on every target"""
    vars: dict[Identifier, str | int | float | bool | None] = Field(
        default_factory=dict, description="variables and their defaults (empty: must be set); use as ${vars.NAME}"
    )
    services: dict[Name, Service] = Field(min_length=1)
    """the containers to run, by name"""
    resources: dict[Name, Postgres] = Field(
        default_factory=dict, description="backing resources the target provides (type: postgres), by name"
    )
    secrets: dict[Identifier, Secret] = Field(default_factory=dict)
    """secret values and where they come from; used as ${secrets.NAME} or ${secrets.NAME.file}"""
    volumes: dict[
        Identifier, Annotated[Volume, BeforeValidator(_none_to_empty, json_schema_input_type=Volume | None)]
    ] = Field(default_factory=dict)
    """named volumes services mount; their data survives updates"""
    targets: dict[Name, Target] = Field(default_factory=dict)
    """where the app deploys: a provider and its settings per name"""

    _source: SourceMap | None = PrivateAttr(default=None)

    @property
    def source(self) -> SourceMap:
        """Where the spec came from, for error messages and relative paths."""
        return self._source or SourceMap(path="<memory>", base_dir=".", marks={})


class SourceMap:
    """The file a spec was read from and the line and column of every field in it (and, for a spec
    merged from override files, the file of each field that came from another file than the first)."""

    def __init__(
        self, path: str, base_dir: str, marks: dict[tuple[str | int, ...], Mark],
        files: dict[tuple[str | int, ...], str] | None = None,
    ) -> None:
        self.path = path
        self.base_dir = base_dir
        self._marks: dict[tuple[str | int, ...], Mark] | None = marks
        self._packed = b""
        self.files = files or {}

    @property
    def marks(self) -> dict[tuple[str | int, ...], Mark]:
        """The line and column of every field (unpacked on first use in a spec read from the cache)."""
        if self._marks is None:
            import pickle

            self._marks = pickle.loads(self._packed)  # noqa: S301 - packed by __getstate__ below
        return self._marks

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the marks packed: a spec reused from the cache unpacks them only to locate an error."""
        import pickle

        packed = self._packed if self._marks is None else pickle.dumps(self._marks, pickle.HIGHEST_PROTOCOL)
        return {"path": self.path, "base_dir": self.base_dir, "files": self.files, "packed": packed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.base_dir, self.files = state["path"], state["base_dir"], state["files"]
        self._marks, self._packed = None, state["packed"]

    def locate(self, path: tuple[str | int, ...]) -> Mark:
        """Return the line and column of a field, or of its nearest ancestor that exists."""
        return self.where(path)[1:]

    def where(self, path: tuple[str | int, ...]) -> tuple[str, int, int]:
        """Return the file, line and column of a field, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:end]))
            if mark is not None:
                return (self.files.get(tuple(path[:end]), self.path), *mark)
        return (self.path, 1, 1)


Mark = tuple[int, int]
