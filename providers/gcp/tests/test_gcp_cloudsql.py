"""Cloud SQL for PostgreSQL in the gcp emulator (Admin API v1 over REST), through the provider's
client (multicloud_gcp.sqladmin on google-auth's AuthorizedSession): sql#operations, states,
connectionName and addresses, Cloud SQL's refusals, waiting for a busy instance. (With a data plane an
instance is a real PostgreSQL: test_gcp_postgres.py logs in to one from a Cloud Run revision.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from multicloud_gcp.emulator import RunningCloudRun
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


def test_instances_databases_users_and_operations(quick_cloudrun: RunningCloudRun) -> None:
    sql, name = admin(quick_cloudrun), f"pg-{uuid.uuid4().hex[:8]}"
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
    with pytest.raises(UserError, match="until one week"):  # a 409: Cloud SQL keeps the name
        sql.insert_instance(instance_body(name))


def test_cloud_sql_refuses_what_it_refuses(quick_cloudrun: RunningCloudRun) -> None:
    sql, name = admin(quick_cloudrun), f"pg-{uuid.uuid4().hex[:8]}"
    with pytest.raises(UserError, match="instance name"):
        sql.insert_instance(instance_body("Bad_Name"))
    with pytest.raises(UserError, match="Invalid tier"):
        sql.insert_instance(instance_body(name, tier="db-custom-3-3840"))
    with pytest.raises(UserError, match="PostgreSQL"):
        sql.insert_instance({**instance_body(name), "databaseVersion": "MYSQL_8_0"})

    sql.insert_instance(instance_body(name, deletionProtectionEnabled=True))
    with pytest.raises(UserError, match="protected from deletion"):
        sql.delete_instance(name)

    assert quick_cloudrun.cloudsql is not None
    quick_cloudrun.cloudsql.op_seconds = 5.0
    try:
        started = sql._call("PATCH", f"/instances/{name}", "patch", {"settings": {"tier": "db-custom-2-7680"}})
        assert started["status"] == "RUNNING"
        with pytest.raises(RetryableError, match="already in progress"):
            sql._call("POST", f"/instances/{name}/databases", "insert", {"name": "x"})
        said: list[str] = []

        def say(text: str) -> None:  # the operation ends once the wait has begun
            said.append(text)
            _finish_operations(quick_cloudrun)

        idle = sql.wait_idle(name, say)
        assert said == [f"waiting for Cloud SQL instance {name}: UPDATE runs on it"]
        assert idle["state"] == "RUNNABLE" and idle["settings"]["tier"] == "db-custom-2-7680"
    finally:
        _finish_operations(quick_cloudrun)
    with pytest.raises(NotFoundError):
        sql._call("GET", "/instances/none-such", "get")


def _finish_operations(running: RunningCloudRun) -> None:
    """Make every running Cloud SQL operation due now, and new ones quick again."""
    assert running.cloudsql is not None
    running.cloudsql.op_seconds = 0.02
    running.cloudsql._due = {k: (0, w, f) for k, (_, w, f) in running.cloudsql._due.items()}
