"""The spec's shape: pydantic v2 models, strict about unknown fields. The whole spec, its targets,
secrets and volumes live here; the service models (multicloud.spec.service) and the field types
(multicloud.spec.fields) other modules import from here are re-exported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PrivateAttr, Tag, model_validator

from multicloud.spec.backing import Postgres
from multicloud.spec.certificate import TlsGenerate, generate_form
from multicloud.spec.fields import IDENTIFIER_PATTERN, NAME_PATTERN, Identifier, Model, Name, unit_schema
from multicloud.spec.service import VOLUME_SHORT_FORM, Build, HealthCheck, Port, Resources, Service, VolumeMount

__all__ = [
    "IDENTIFIER_PATTERN",
    "NAME_PATTERN",
    "TARGET_RESERVED",
    "VOLUME_SHORT_FORM",
    "Build",
    "DerivedSecret",
    "HealthCheck",
    "Mark",
    "Model",
    "Port",
    "Postgres",
    "Resources",
    "Secret",
    "Service",
    "SourceMap",
    "Spec",
    "Target",
    "TlsPart",
    "Volume",
    "VolumeMount",
    "unit_schema",
]


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
