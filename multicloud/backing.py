"""Backing resources (`resources:` in the spec; first type `postgres`) on a target: the interface a
provider implements to provide them, and how the core binds `${resources.NAME.*}` for its services.

The interface, for provider authors:

- A provider that can provide PostgreSQL lists `"postgres"` in `Capabilities.resources` (plan refuses a
  spec whose resources a target cannot provide, at the resource's line) and implements
  `SupportsPostgres.postgres_address(spec, name)`: where the target's services reach database `name`,
  worked out from names and settings alone (pure, no API call), e.g. docker: `Address("db")` (the
  network alias), azure: `Address("SERVER.postgres.database.azure.com", options={"sslmode": "require"})`,
  Cloud Run through the Cloud SQL connector: `Address("/cloudsql/PROJECT:REGION:INSTANCE")`.
- Before `desired()` the core binds the target spec (`bind`): in every service `${resources.N.host}`,
  `.port` and `.name` become literal values, and `${resources.N.url}` / `.url.file` become
  `${secrets.resources_N_url}` / `.file`, a secret the core composes
  (`postgresql://USER:PASSWORD@HOST:PORT/DATABASE?OPTIONS`) and hands to `desired()` with the others.
  So the URL travels each provider's existing secret path (Secrets Manager, secret volumes, files) and
  plans show only its digest.
- The password is the generated secret `resources_N_password`, in `secrets` as well. It is kept like
  every generated secret: by the core's local store, or, for a provider with a secret store of its own
  (`SupportsSecretStore`), by the provider, which must write it there itself (a secret resource), since
  no service names it.
- `desired()` renders each `spec.resources[N]` (a `Postgres`: version, storage, tier, database,
  user, deletion) as a resource keyed `postgres/N` (plus whatever helpers it needs), `persistent` when
  `Postgres.persistent` (deletion: keep), with the hints as the platform takes them and the password as
  `Sensitive` in its properties, and `deletion` too (so changing it is an update: e.g. RDS deletion
  protection; observe reports `persistent` from that property, not from how it was created). Which
  properties force a replace is the provider's to say (`replace_on`): the planner then shows update
  or replace with the reasons, and refuses replacing a persistent one without `--volumes`. A kept
  database keeps what it needs: its helpers (subnet group, firewall rule) are persistent alike, since
  destroy removes everything that is not. A service's resource depends on
  `spec.resource_keys(service)`, the databases it refers to, so they are made (and healthy) first and
  deleted last.
- Where apply makes things inside a database server after creating it (a database, a role, a firewall
  rule: separate API calls), an apply killed in between leaves a server that looks complete by its own
  fields. So the resource carries `setup`: `SETUP_DONE` desired, and observed `setup_state(missing)`
  from what observe really finds inside it (or "pending: ..." while the server is too busy to be read):
  the plan is an in-place update naming what is missing, never a replace.
- Deleting `postgres/N`: `keep` reaches the provider only under `destroy --volumes` (delete with the
  data, no snapshot); `snapshot` deletes after a final snapshot where the platform takes one (locally
  the volume stays); `delete` deletes with the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlencode

from multicloud.spec.backing import Address, Postgres, password_secret, url_secret
from multicloud.spec.placeholders import ResourceRef, bind_resources, rewrite_service
from multicloud.spec.targets import TargetSpec

__all__ = ["SETUP_DONE", "Address", "SupportsPostgres", "bind", "connection_url", "connection_urls", "setup_state"]

SETUP_DONE = "done"
"""A database resource's `setup` when everything apply makes inside its server exists."""


def setup_state(missing: Sequence[str]) -> str:
    """A database resource's observed `setup`: SETUP_DONE, else "missing A, B" naming what is not there."""
    return f"missing {', '.join(missing)}" if missing else SETUP_DONE


@runtime_checkable
class SupportsPostgres(Protocol):
    """A provider that provides `postgres` resources (see the module's notes)."""

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """Where the target's services reach database `name` of `spec.resources`; pure."""
        ...


def bind(spec: TargetSpec, provider: object) -> TargetSpec:
    """The target spec with `${resources...}` bound to where the provider puts each resource; unchanged
    when there are none, or when the provider cannot provide them (the capability check says so)."""
    if not spec.resources or not isinstance(provider, SupportsPostgres):
        return spec
    addresses = {name: provider.postgres_address(spec, name) for name in spec.resources}

    def bound(ref: ResourceRef) -> str:
        address = addresses[ref.name]
        if ref.attribute == "url":
            return f"${{secrets.{url_secret(ref.name)}{'.file' if ref.file else ''}}}"
        if ref.attribute == "host":
            return address.host.replace("$", "$$")
        if ref.attribute == "port":
            return str(address.port)
        return spec.resources[ref.name].database_name(ref.name)

    services = {
        name: rewrite_service(service, lambda text: bind_resources(text, bound)) if name in spec.uses else service
        for name, service in spec.services.items()
    }
    return replace(spec, services=services, addresses=addresses)


def connection_url(name: str, resource: Postgres, address: Address, password: str) -> str:
    """The `postgresql://` URL of a database at an address (a Unix socket directory goes in `host=`)."""
    user = quote(resource.user_name(name), safe="")
    database = quote(resource.database_name(name), safe="")
    options = dict(address.options)
    if address.host.startswith("/"):
        where = ""
        options = {"host": address.host, **({"port": str(address.port)} if address.port != 5432 else {}), **options}
    else:
        where = f"{address.host}:{address.port}"
    query = f"?{urlencode(options)}" if options else ""
    return f"postgresql://{user}:{quote(password, safe='')}@{where}/{database}{query}"


def connection_urls(spec: TargetSpec, values: Mapping[str, str]) -> dict[str, str]:
    """The URL secret of each bound resource, from its password among `values` (the generated secrets)."""
    return {
        url_secret(name): connection_url(name, resource, spec.addresses[name], values[password_secret(name)])
        for name, resource in spec.resources.items()
        if name in spec.addresses and password_secret(name) in values
    }
