"""Cloud SQL for PostgreSQL in the gcp emulator (Admin API v1 over REST), through the provider's
client (multicloud_gcp.sqladmin on google-auth's AuthorizedSession): sql#operations, states,
connectionName and addresses, Cloud SQL's refusals; with a data plane an instance is a real
PostgreSQL that this machine reaches at its PRIMARY address and Cloud Run instances at its PRIVATE one."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.settings import GcpSettings
from multicloud_gcp.sqladmin import SqlAdmin

from multicloud.errors import NotFoundError, RetryableError, UserError

PROJECT = "demo-project"


def instance_body(name: str, **settings: Any) -> dict[str, Any]:
    """A small PostgreSQL 15 instance with a root password."""
    return {
        "name": name,
        "region": "europe-west1",
        "databaseVersion": "POSTGRES_15",
        "rootPassword": "root-Zq81-unguessable",
        "settings": {"tier": "db-custom-1-3840", "dataDiskSizeGb": "10", **settings},
    }


def admin(running: RunningCloudRun) -> SqlAdmin:
    """The provider's Cloud SQL client pointed at the emulator."""
    return SqlAdmin(GcpSettings.model_validate({**running.settings(), "poll_interval": 0.02}))


@pytest.fixture(scope="module")
def cloudrun() -> Iterator[RunningCloudRun]:
    """An API-only emulator with quick operations."""
    running = CloudRunEmulator().start()
    assert running.cloudsql is not None
    running.cloudsql.op_seconds = 0.02
    yield running
    running.stop()


def test_instances_databases_users_and_operations(cloudrun: RunningCloudRun) -> None:
    sql, name = admin(cloudrun), f"pg-{uuid.uuid4().hex[:8]}"
    operation = sql.insert_instance(instance_body(name))
    assert operation["kind"] == "sql#operation" and operation["operationType"] == "CREATE"
    assert operation["status"] == "DONE" and operation["targetId"] == name
    instance = sql.get_instance(name)
    assert instance is not None and instance["state"] == "RUNNABLE"
    assert instance["connectionName"] == f"{PROJECT}:europe-west1:{name}"
    assert [a["type"] for a in instance["ipAddresses"]] == ["PRIMARY"]
    assert instance["settings"]["settingsVersion"] == "1" and "rootPassword" not in instance

    sql.insert_database(name, "iot")
    assert sql.list_databases(name) == ["iot", "postgres"]
    sql.set_user(name, "iot", "user-pw-unguessable")
    sql.set_user(name, "iot", "changed-pw-unguessable")
    assert sql.list_users(name) == ["iot", "postgres"]

    sql.patch_instance(name, {"settings": {"dataDiskSizeGb": "20", "ipConfiguration": {"privateNetwork": "x"}}})
    instance = sql.get_instance(name)
    assert instance is not None and instance["settings"]["settingsVersion"] == "2"
    assert [a["type"] for a in instance["ipAddresses"]] == ["PRIMARY", "PRIVATE"]
    with pytest.raises(UserError, match="cannot be decreased"):
        sql.patch_instance(name, {"settings": {"dataDiskSizeGb": "10"}})

    sql.delete_instance(name)
    assert sql.get_instance(name) is None
    with pytest.raises(RetryableError, match="until one week"):  # a 409: Cloud SQL keeps the name
        sql.insert_instance(instance_body(name))


def test_cloud_sql_refuses_what_it_refuses(cloudrun: RunningCloudRun) -> None:
    sql, name = admin(cloudrun), f"pg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(UserError, match="instance name"):
        sql.insert_instance(instance_body("Bad_Name"))
    with pytest.raises(UserError, match="Invalid tier"):
        sql.insert_instance(instance_body(name, tier="db-custom-3-3840"))
    with pytest.raises(UserError, match="PostgreSQL"):
        sql.insert_instance({**instance_body(name), "databaseVersion": "MYSQL_8_0"})

    sql.insert_instance(instance_body(name, deletionProtectionEnabled=True))
    with pytest.raises(UserError, match="protected from deletion"):
        sql.delete_instance(name)

    assert cloudrun.cloudsql is not None
    cloudrun.cloudsql.op_seconds = 5.0
    try:
        started = sql._call("PATCH", f"/instances/{name}", "patch", {"settings": {"tier": "db-custom-2-7680"}})
        assert started["status"] == "RUNNING"
        with pytest.raises(RetryableError, match="already in progress"):
            sql._call("POST", f"/instances/{name}/databases", "insert", {"name": "x"})
    finally:
        cloudrun.cloudsql.op_seconds = 0.02
        cloudrun.cloudsql._due = {k: (0, w, f) for k, (_, w, f) in cloudrun.cloudsql._due.items()}
    with pytest.raises(NotFoundError):
        sql._call("GET", "/instances/none-such", "get")


@pytest.mark.docker
def test_an_instance_is_a_real_postgres() -> None:
    running = CloudRunEmulator(run=True).start()
    try:
        if running.cloudsql is None or running.cloudsql.plane is None:
            pytest.skip(running.notes[-1])
        running.cloudsql.op_seconds = 0.02
        sql, name = admin(running), f"pg-{uuid.uuid4().hex[:8]}"
        body = instance_body(name, ipConfiguration={"privateNetwork": f"projects/{PROJECT}/global/networks/default"})
        sql.insert_instance(body)
        sql.insert_database(name, "iot")
        sql.set_user(name, "iot", "user-pw-unguessable")
        instance = sql.get_instance(name)
        assert instance is not None
        addresses = {a["type"]: a["ipAddress"] for a in instance["ipAddresses"]}
        assert addresses["PRIMARY"].startswith("127.") and not addresses["PRIVATE"].startswith("127.")
        made = _psql(
            addresses["PRIMARY"], "iot", "user-pw-unguessable", "CREATE TABLE t (v int); INSERT INTO t VALUES (7)"
        )
        assert made.returncode == 0, made.stderr
        assert _psql(addresses["PRIMARY"], "iot", "user-pw-unguessable", "SELECT v FROM t").stdout.strip() == "7"
        sql.delete_instance(name)
        deadline = time.monotonic() + 30
        while _psql(addresses["PRIMARY"], "iot", "user-pw-unguessable", "SELECT 1").returncode == 0:
            assert time.monotonic() < deadline, "the deleted instance still answers"
            time.sleep(0.2)
    finally:
        running.stop()


def _psql(address: str, user: str, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run SQL with this machine's psql against database iot."""
    return subprocess.run(
        ["psql", "-X", "-tA", "-h", address, "-U", user, "-d", "iot", "-c", sql],
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, timeout=60, check=False,
    )
