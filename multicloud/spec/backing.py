"""The `resources:` section's types: backing resources a target provides beside the services
(first and only type so far: `postgres`). Their fields are hints each provider maps onto what its
platform offers (a container with a volume locally, RDS, Azure Database, Cloud SQL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

from multicloud.spec.units import MEMORY_PATTERN, format_memory, parse_memory

POSTGRES_VERSIONS = ("13", "14", "15", "16", "17")
"""Major versions every managed PostgreSQL the providers map onto still offers."""
TIERS = {
    "small": "about 1-2 vCPUs (burstable) and 1-2 GiB of memory",
    "medium": "about 2 vCPUs and 8 GiB of memory",
    "large": "about 4 vCPUs and 16 GiB of memory",
}
"""What each tier asks of a provider; each maps it onto the nearest size its platform sells."""
MAX_STORAGE = 64 * 1024**4
"""64Ti: RDS's largest volume; more is a mistake."""
RESERVED_ROLES = frozenset(
    {"admin", "administrator", "root", "guest", "public", "postgres", "rdsadmin", "rdsrepladmin",
     "azure_superuser", "azure_pg_admin", "cloudsqlsuperuser", "cloudsqladmin", "cloudsqlagent"}
)
"""Role names at least one managed PostgreSQL keeps for itself or refuses as the owner (with pg_*)."""
SQL_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


def _major_version(value: Any) -> Any:
    """Accept 15 as well as "15"."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _storage(value: Any) -> int:
    return parse_memory(value, MAX_STORAGE)


StorageSize = Annotated[
    int,
    BeforeValidator(_storage),
    PlainSerializer(format_memory, return_type=str, when_used="json"),
    Field(ge=1024**3, le=MAX_STORAGE),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1024**3}, {"type": "string", "pattern": MEMORY_PATTERN}],
            "description": "bytes, or a size such as 20Gi, 1Ti (at least 1Gi; providers round up to their minimum)",
        }
    ),
]
SqlName = Annotated[str, StringConstraints(pattern=SQL_NAME)]


class Postgres(BaseModel):
    """A PostgreSQL database the target provides: services reach it through
    `${resources.NAME.url}` (a secret) or `.host`, `.port`, `.name`; its password is generated and
    kept in the target's secret store. `destroy` keeps it and its data unless `--volumes` is given
    or `deletion` says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["postgres"]
    version: Annotated[
        Literal["13", "14", "15", "16", "17"],
        BeforeValidator(_major_version),
        WithJsonSchema({"enum": [*POSTGRES_VERSIONS, *map(int, POSTGRES_VERSIONS)], "description": "major version"}),
    ] = "16"
    storage: StorageSize = 20 * 1024**3
    tier: Literal["small", "medium", "large"] = Field(
        default="small", description="; ".join(f"{name}: {means}" for name, means in TIERS.items())
    )
    database: SqlName | None = Field(default=None, description="the database's name (default: the resource's name)")
    user: SqlName | None = Field(default=None, description="the role that owns it (default: the database's name)")
    deletion: Literal["keep", "snapshot", "delete"] = Field(
        default="keep",
        description="what destroy does: keep (the database and its data stay unless --volumes), snapshot "
        "(deleted after a final snapshot where the platform takes one; locally its volume stays), delete "
        "(deleted with its data)",
    )

    def database_name(self, name: str) -> str:
        """The database's name: as given, else the resource's name with `_` for `-`."""
        return self.database or name.replace("-", "_")

    def user_name(self, name: str) -> str:
        """The owning role: as given, else the database's name."""
        return self.user or self.database_name(name)

    @property
    def persistent(self) -> bool:
        """Whether destroy keeps it (unless --volumes): the `keep` deletion setting."""
        return self.deletion == "keep"


@dataclass(frozen=True)
class Address:
    """Where a target's services reach a backing resource: a host name (or, starting with `/`, the
    directory of a Unix socket), a port, and the connection options its URL carries (sslmode=require)."""

    host: str
    port: int = 5432
    options: Mapping[str, str] = field(default_factory=dict)


def password_secret(name: str) -> str:
    """The name of the generated secret holding resource `name`'s password."""
    return f"resources_{name}_password"


def url_secret(name: str) -> str:
    """The name of the secret the core composes from resource `name`'s address and password (its URL)."""
    return f"resources_{name}_url"


def reserved_secrets(resources: Mapping[str, Postgres]) -> dict[str, str]:
    """The secret names the core gives these resources' own secrets -> what each holds."""
    found: dict[str, str] = {}
    for name in resources:
        found[password_secret(name)] = f"the password of resources.{name}"
        found[url_secret(name)] = f"${{resources.{name}.url}}"
    return found


def role_problem(role: str) -> str | None:
    """Why a managed PostgreSQL would refuse a role name as a database's owner, or None."""
    if role in RESERVED_ROLES or role.startswith("pg_"):
        return f"{role!r} is reserved by at least one managed PostgreSQL; choose another user"
    return None
