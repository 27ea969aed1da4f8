"""Azure Database for PostgreSQL flexible servers in the ARM emulator, through the real, unmodified
azure-mgmt-postgresqlflexibleservers client: long-running PUTs, ARM's refusals (global names,
weak passwords, shrinking storage, a busy server), databases and firewall rules; with a data
plane, a server is a real PostgreSQL that keeps its data across a password change (the container
groups reach it: test_azure_postgres.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
from multicloud_azure.client import StaticTokenCredential
from multicloud_azure.emulator import AzureEmulator, EmulatorHandle
from multicloud_azure.flexclient import FlexibleServers
from multicloud_azure.settings import TOKEN_ENV, parse_settings

from multicloud.errors import RetryableError
from multicloud.testing.psql import psql

SUBSCRIPTION = "00000000-0000-0000-0000-0000000f1e70"
PASSWORD = "Zq8-unguessable-Pw"


def sdk(handle: EmulatorHandle) -> Any:
    """The real SDK client pointed at the emulator (short polls)."""
    return PostgreSQLManagementClient(
        StaticTokenCredential(handle.token),
        SUBSCRIPTION,
        base_url=handle.endpoint,
        credential_scopes=[f"{handle.endpoint}/.default"],
        polling_interval=0.05,
        connection_verify=handle.ca_bundle,
    )


def server_body(**properties: Any) -> dict[str, Any]:
    """A Burstable server with an administrator, as a deploy script would send it."""
    return {
        "location": "West Europe",
        "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
        "properties": {
            "administratorLogin": "iotadmin",
            "administratorLoginPassword": PASSWORD,
            "version": "16",
            "storage": {"storageSizeGB": 32},
            **properties,
        },
    }


def unique() -> str:
    """A server name no other test uses (names are global)."""
    return f"pg-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def arm() -> Iterator[EmulatorHandle]:
    """An API-only ARM emulator."""
    handle = AzureEmulator(op_seconds=0.02).serve()
    yield handle
    handle.stop()


def test_create_read_children_and_delete_through_the_sdk(arm: EmulatorHandle) -> None:
    client, name = sdk(arm), unique()
    server = client.servers.begin_create_or_update("rg-a", name, server_body()).result()
    assert server.state == "Ready"
    assert server.fully_qualified_domain_name == f"{name}.postgres.database.azure.com"
    assert server.administrator_login == "iotadmin" and server.administrator_login_password is None
    assert server.storage.storage_size_gb == 32 and server.version == "16"
    assert PASSWORD not in str(client.servers.get("rg-a", name).as_dict())

    client.databases.begin_create("rg-a", name, "iot", {"properties": {"charset": "UTF8"}}).result()
    assert {d.name for d in client.databases.list_by_server("rg-a", name)} >= {"iot", "postgres"}
    rule = {"properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"}}
    client.firewall_rules.begin_create_or_update("rg-a", name, "AllowAzure", rule).result()
    assert client.firewall_rules.get("rg-a", name, "AllowAzure").start_ip_address == "0.0.0.0"
    assert [s.name for s in client.servers.list_by_resource_group("rg-a")] == [name]

    updated = client.servers.begin_update("rg-a", name, {"properties": {"storage": {"storageSizeGB": 64}}}).result()
    assert updated.storage.storage_size_gb == 64

    client.servers.begin_delete("rg-a", name).result()
    with pytest.raises(ResourceNotFoundError):
        client.servers.get("rg-a", name)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"administratorLoginPassword": "short1A"}, "PasswordNotComplex"),
        ({"administratorLogin": "admin"}, "InvalidAdministratorLogin"),
        ({"version": "9.6"}, "InvalidServerVersion"),
        ({"storage": {"storageSizeGB": 33}}, "InvalidStorageSize"),
    ],
)
def test_the_service_refuses_bad_servers(arm: EmulatorHandle, change: dict[str, Any], code: str) -> None:
    with pytest.raises(HttpResponseError) as caught:
        sdk(arm).servers.begin_create_or_update("rg-a", unique(), server_body(**change))
    assert caught.value.status_code == 400 and caught.value.error.code == code


def test_names_are_global_storage_only_grows_and_a_busy_server_refuses(arm: EmulatorHandle) -> None:
    client, name = sdk(arm), unique()
    with pytest.raises(HttpResponseError) as caught:
        client.servers.begin_create_or_update("rg-a", "Bad_Name", server_body())
    assert caught.value.error.code == "InvalidServerName"
    client.servers.begin_create_or_update("rg-a", name, server_body()).result()
    with pytest.raises(HttpResponseError) as caught:
        client.servers.begin_create_or_update("rg-other", name, server_body())
    assert caught.value.status_code == 409 and caught.value.error.code == "ServerNameAlreadyExists"
    kind = "Microsoft.DBforPostgreSQL/flexibleServers"
    availability = client.name_availability.check_globally({"name": name, "type": kind})
    assert availability.name_available is False and availability.reason == "AlreadyExists"

    with pytest.raises(HttpResponseError) as caught:
        client.servers.begin_update("rg-a", name, {"properties": {"storage": {"storageSizeGB": 32 // 2}}})
    assert caught.value.error.code == "InvalidStorageSize"

    arm.backend.postgres.op_seconds = 5.0  # type: ignore[union-attr]
    try:
        client.servers.begin_update("rg-a", name, {"sku": {"name": "Standard_B2s", "tier": "Burstable"}})
        with pytest.raises(HttpResponseError) as caught:
            client.servers.begin_update("rg-a", name, {"tags": {"x": "1"}})
        assert caught.value.status_code == 409 and caught.value.error.code == "ServerBusy"
        assert client.servers.get("rg-a", name).state == "Updating"
    finally:
        arm.backend.postgres.op_seconds = 0.02  # type: ignore[union-attr]
        arm.backend.postgres.servers[(SUBSCRIPTION, "rg-a", name)].operation.done_at = 0  # type: ignore[union-attr]


def test_a_server_runs_one_operation_at_a_time_children_included(
    arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name, servers = sdk(arm), unique(), arm.backend.postgres
    assert servers is not None
    servers.op_seconds = 1.0  # the server's create runs a second; the writes after it are quick
    try:
        creating = client.servers.begin_create_or_update("rg-a", name, server_body())
    finally:
        servers.op_seconds = 0.02
    with pytest.raises(HttpResponseError) as caught:
        client.databases.begin_create("rg-a", name, "iot", {"properties": {"charset": "UTF8"}})
    assert caught.value.status_code == 409 and caught.value.error.code == "ServerBusy"
    assert caught.value.error.message == f"Server '{name}' is busy with another operation. Please try again later."
    rule = {"properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"}}
    with pytest.raises(HttpResponseError, match="ServerBusy"):
        client.firewall_rules.begin_create_or_update("rg-a", name, "AllowAzure", rule)
    assert "postgres" in {d.name for d in client.databases.list_by_server("rg-a", name)}  # reads pass

    monkeypatch.setenv(TOKEN_ENV, arm.token)
    provider = FlexibleServers(parse_settings({
        "subscription_id": SUBSCRIPTION, "resource_group": "rg-a", "location": "West Europe",
        "arm_endpoint": arm.endpoint, "ca_bundle": arm.ca_bundle, "poll_interval": 0.05,
    }))
    with pytest.raises(RetryableError, match=f"creating database 'iot' on '{name}': 409 ServerBusy: Server"):
        provider.ensure_database(name, "iot")

    assert creating.result().state == "Ready"
    client.databases.begin_create("rg-a", name, "iot", {"properties": {"charset": "UTF8"}}).result()
    client.firewall_rules.begin_create_or_update("rg-a", name, "AllowAzure", rule).result()
    assert "iot" in {d.name for d in client.databases.list_by_server("rg-a", name)}


# --- the data plane ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_arm(data_plane_arm: EmulatorHandle) -> EmulatorHandle:
    """An ARM emulator whose servers are real PostgreSQL containers (skips without an engine)."""
    return data_plane_arm


def admin(address: str) -> str:
    """The connection string of a server's administrator, to its database iot."""
    return f"host={address} user=iotadmin dbname=iot"


@pytest.mark.docker
def test_a_server_is_a_real_postgres_that_keeps_its_data(running_arm: EmulatorHandle) -> None:
    client, name = sdk(running_arm), unique()
    client.servers.begin_create_or_update("rg-run", name, server_body()).result()
    client.databases.begin_create("rg-run", name, "iot", {}).result()
    address = running_arm.backend.postgres.address(SUBSCRIPTION, "rg-run", name)  # type: ignore[union-attr]
    made = psql(admin(address), "CREATE TABLE readings (v int); INSERT INTO readings VALUES (42);", password=PASSWORD)
    assert made.returncode == 0, made.stderr

    new_password = "An0ther-unguessable"
    client.servers.begin_update("rg-run", name, {"properties": {"administratorLoginPassword": new_password}}).result()
    assert psql(admin(address), "SELECT 1", password=PASSWORD).returncode != 0
    assert psql(admin(address), "SELECT v FROM readings", password=new_password).stdout.strip() == "42"

    client.servers.begin_delete("rg-run", name).result()
    deadline = time.monotonic() + 30
    while psql(admin(address), "SELECT 1", password=new_password).returncode == 0:
        assert time.monotonic() < deadline, "the deleted server still answers"
        time.sleep(0.2)
