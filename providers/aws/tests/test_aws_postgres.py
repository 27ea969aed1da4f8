"""A `postgres` resource on the emulated AWS account as RDS for PostgreSQL: private, encrypted, deletion
protection while destroy keeps it, reached through a Cloud Map CNAME named before it exists, its URL in
the task definition only as a Secrets Manager reference; tier and major version change in place,
storage never shrinks; destroy keeps it (`deletion: keep`) or leaves a final snapshot (`snapshot`).
(The postgres contract runs on the memory provider; on aws this one test covers it, being slower.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.provider import AwsEcsProvider

from multicloud.errors import ApplyFailedError
from multicloud.planner import Action
from multicloud.spec import spec_from_dict


def _data(app: str, **db: Any) -> dict[str, Any]:
    return {
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"DATABASE_URL_FILE": "${resources.db.url.file}",
                                     "DB_HOST": "${resources.db.host}"},
                             "ports": [{"name": "http", "port": 8080, "protocol": "http"}]}},
        "resources": {"db": {"type": "postgres", "version": 15, "storage": "30Gi", "database": "shop", **db}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    }


def test_rds_instance_alias_updates_and_final_snapshot(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                       deploy: Any) -> None:
    provider = make_provider()
    rds = provider.ctx.client("rds")
    identifier = f"{app_name}-db"
    first = deploy(spec_from_dict(_data(app_name)), provider, {})
    try:
        assert first.target_spec.services["api"].env["DB_HOST"] == f"db.{app_name}.internal"
        planned = first.plan()
        steps = {c.key: c for c in planned.changes}
        assert {"postgres/db", "alias/db", "db-security-group/db", "secret/resources_db_password"} <= set(steps)
        assert {"postgres/db", "alias/db"} <= set(steps["service/api"].requires)
        assert first.apply(planned).ok
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        assert (instance["Engine"], instance["DBInstanceClass"], instance["AllocatedStorage"]) == (
            "postgres", "db.t4g.micro", 30)
        assert instance["DeletionProtection"] and instance["StorageEncrypted"] and not instance["PubliclyAccessible"]
        assert (instance["DBName"], instance["MasterUsername"]) == ("shop", "shop")
        sd = provider.ctx.client("servicediscovery")
        alias = next(s for s in sd.list_services()["Services"] if s["Name"] == "db")
        (target,) = sd.list_instances(ServiceId=alias["Id"])["Instances"]
        assert target["Attributes"]["AWS_INSTANCE_CNAME"] == instance["Endpoint"]["Address"]
        ecs = provider.ctx.client("ecs")
        family = next(a for a in ecs.list_task_definitions()["taskDefinitionArns"] if f"/{app_name}_api:" in a)
        (container,) = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["containerDefinitions"]
        assert [s["name"] for s in container["secrets"]] == ["DATABASE_URL"]
        assert container["secrets"][0]["valueFrom"].endswith(f"multicloud/{app_name}/resources_db_url") or (
            f"multicloud/{app_name}/resources_db_url" in container["secrets"][0]["valueFrom"])

        kept = first.plan(destroy=True)
        assert {r.key for r in kept.kept} == {"postgres/db", "db-security-group/db", "secret/resources_db_password"}
        assert first.destroy(kept).ok
        assert rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DeletionProtection"]

        changed = _data(app_name, tier="medium", version=16, deletion="snapshot")
        bigger = deploy(spec_from_dict(changed), make_provider(), {})
        change = next(c for c in bigger.plan().changes if c.key == "postgres/db")
        assert change.action is Action.UPDATE and {f.path for f in change.fields} == {"class", "deletion", "version"}
        assert bigger.apply().ok  # everything else again, beside the kept instance
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        assert instance["DBInstanceClass"] == "db.m6g.large" and instance["EngineVersion"].startswith("16")
        assert not instance["DeletionProtection"]
        smaller = deploy(spec_from_dict({**changed, "resources": {"db": {**changed["resources"]["db"],
                                                                         "storage": "20Gi"}}}), make_provider(), {})
        with pytest.raises(ApplyFailedError, match="RDS cannot shrink storage"):
            smaller.apply()
        gone = bigger.plan(destroy=True)
        assert not gone.kept and bigger.destroy(gone).ok
        snapshots = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]]
        assert any(s.startswith(f"{identifier}-final-") for s in snapshots)
    finally:
        deploy(spec_from_dict(_data(app_name)), make_provider(), {}).destroy(volumes=True)
    assert not [i for i in rds.describe_db_instances()["DBInstances"] if i["DBInstanceIdentifier"] == identifier]
