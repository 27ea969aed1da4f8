"""Flexible servers through the real azure-mgmt-postgresqlflexibleservers client (api-version
2026-10-01), errors translated by client._translated, once; and what applying a `postgres/NAME`
change does with them. Imported only when a spec declares a database."""

from __future__ import annotations

from collections.abc import Callable

from multicloud.errors import RetryableError, UserError
from multicloud.planner import Action, Change
from multicloud.retry import RetryPolicy, wait_for
from multicloud_azure import postgres, tags
from multicloud_azure.api import Json
from multicloud_azure.client import _translated, credential, sdk_options
from multicloud_azure.settings import AzureSettings

BUSY_WAIT_S = 1800.0
"""How long an apply waits for a server still provisioning or updating (a create takes 5 to 15
minutes on Azure) before giving up with a RetryableError."""


class FlexibleServers:
    """The flexible servers of one resource group; every write waits for its operation."""

    def __init__(self, settings: AzureSettings) -> None:
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient, models

        self.settings = settings
        self._models = models
        self._rg = settings.resource_group
        options = sdk_options(settings)
        self._client = PostgreSQLManagementClient(credential(settings), settings.subscription_id, **options)

    def get(self, name: str) -> Json | None:
        """A server as ARM returns it, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"reading flexible server {name!r}", self.settings):
            try:
                return dict(self._client.servers.get(self._rg, name).as_dict())
            except ResourceNotFoundError:
                return None

    def list(self) -> list[Json]:
        """Every server of the resource group (none when the group does not exist)."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"listing flexible servers in {self._rg!r}", self.settings):
            try:
                return [dict(s.as_dict()) for s in self._client.servers.list_by_resource_group(self._rg)]
            except ResourceNotFoundError:
                return []

    def put(self, name: str, body: Json) -> None:
        """Create a server and wait until it is provisioned."""
        with _translated(f"creating flexible server {name!r}", self.settings):
            self._client.servers.begin_create_or_update(self._rg, name, self._models.Server(body)).result()

    def patch(self, name: str, body: Json) -> None:
        """Change a server in place and wait."""
        with _translated(f"updating flexible server {name!r}", self.settings):
            self._client.servers.begin_update(self._rg, name, self._models.ServerForPatch(body)).result()

    def delete(self, name: str) -> None:
        """Delete a server with its data and wait; absent is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"deleting flexible server {name!r}", self.settings):
            try:
                self._client.servers.begin_delete(self._rg, name).result()
            except ResourceNotFoundError:
                return

    def setup(self, server: Json) -> str:
        """What the server lacks of its database and firewall rule (postgres.setup): two list calls, none
        while the server is busy (its children may not be listable then). Raises on a failed read."""
        name = str(server["name"])
        if postgres.busy(server):
            return postgres.setup(server, None, None)
        with _translated(f"reading the databases and firewall rules of {name!r}", self.settings):
            databases = {str(d.name) for d in self._client.databases.list_by_server(self._rg, name)}
            rules = {str(r.name) for r in self._client.firewall_rules.list_by_server(self._rg, name)}
        return postgres.setup(server, databases, rules)

    def until_idle(self, server: Json, say: Callable[[str], None]) -> Json:
        """The server once it is neither provisioning nor updating, re-read every poll interval; raises
        RetryableError after BUSY_WAIT_S or when the server disappears meanwhile."""
        if not postgres.busy(server):
            return server
        name = str(server["name"])
        say(f"waiting for flexible server {name} ({postgres.state(server).lower()}) before its database and "
            "firewall rule")
        interval = self.settings.poll_interval
        policy = RetryPolicy.within(BUSY_WAIT_S, base_delay=interval, max_delay=interval)

        def idle() -> Json | None:
            found = self.get(name)
            return found if found is None or not postgres.busy(found) else None

        found = wait_for(idle, policy, timed_out=lambda: RetryableError(
            f"flexible server {name!r} was still {postgres.state(server).lower()} after {BUSY_WAIT_S:.0f}s"))
        if found is None:
            raise RetryableError(f"flexible server {name!r} disappeared while it was being waited for")
        return found

    def ensure_database(self, server: str, database: str) -> None:
        """Create a database unless the server has it."""
        with _translated(f"creating database {database!r} on {server!r}", self.settings):
            if database in {d.name for d in self._client.databases.list_by_server(self._rg, server)}:
                return
            body = self._models.Database({"properties": {"charset": "UTF8", "collation": "en_US.utf8"}})
            self._client.databases.begin_create(self._rg, server, database, body).result()

    def ensure_azure_access(self, server: str) -> None:
        """Let Azure services (the container groups) in: the 0.0.0.0 firewall rule."""
        azure = "0.0.0.0"  # noqa: S104 - ARM's way of saying "Azure services", not a bind address
        rule = self._models.FirewallRule({"properties": {"startIpAddress": azure, "endIpAddress": azure}})
        rules = self._client.firewall_rules
        with _translated(f"opening {server!r} to Azure services", self.settings):
            if postgres.FIREWALL_RULE in {r.name for r in rules.list_by_server(self._rg, server)}:
                return
            rules.begin_create_or_update(self._rg, server, postgres.FIREWALL_RULE, rule).result()


def apply(servers: FlexibleServers, app: str, target: str, change: Change, say: Callable[[str], None]) -> None:
    """Create, update or delete the server of one `postgres/NAME`, then make sure its database
    and firewall rule exist. Re-reads the server first and waits while it is busy (ARM refuses a
    busy server's writes); PATCHes it only when a server-level field differs. A failure leaves
    what ARM made (tagged: the next plan sees what is missing and the next apply finishes it)."""
    resource = change.resource
    name = str((change.before or resource).properties["server"])
    current = servers.get(name)
    if current is not None and (current.get("tags") or {}).get(tags.APP) != app:
        raise UserError(f"flexible server {name!r} exists and is not app {app!r}'s; multicloud will not touch it")
    if change.action is Action.DELETE:
        if current is not None:
            say(f"deleting flexible server {name} with its data")
            servers.delete(name)
        return
    body = postgres.server_body(resource, servers.settings, app, target)
    if current is None:
        props = resource.properties
        say(f"creating flexible server {name} ({props['sku']}, PostgreSQL {props['version']})")
        servers.put(name, body)
    else:
        current = servers.until_idle(current, say)
        patch = postgres.patch_body(body, current)
        if patch is None:
            say(f"flexible server {name} already as desired; no PATCH")
        else:
            say(f"updating flexible server {name} in place")
            servers.patch(name, patch)
    servers.ensure_database(name, str(resource.properties["database"]))
    servers.ensure_azure_access(name)

