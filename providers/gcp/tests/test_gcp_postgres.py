"""`postgres` resources on gcp-cloudrun: a Cloud SQL instance (database, user with the generated
password, deletion protection while kept) made before the service that uses it, which gets
`${resources.db.url}` through Secret Manager and a cloud_sql_instance volume at /cloudsql; planned
again as nothing, a tier change an update, kept by destroy and deleted by destroy --volumes; an instance a
killed apply left (no database, no user; or still PENDING_CREATE) planned as an update naming what is missing
and finished by the next apply; with the data plane, the revision logs in through the connector's socket for
real."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from multicloud_gcp import cloudsql
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun

from multicloud.api import Deployment
from multicloud.contract import Event
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict


def spec(running: RunningCloudRun, app: str, *, tier: str = "small", image: str = "multicloud-test/app:1",
         entrypoint: list[str] | None = None) -> dict[str, Any]:
    """A web service that gets the database's URL, and the database."""
    web: dict[str, Any] = {"image": image, "ports": [{"name": "http", "port": 8080, "protocol": "http"}],
                           "env": {"DATABASE_URL": "${resources.db.url}"}}
    if entrypoint:
        web["entrypoint"] = entrypoint
    return {
        "name": app,
        "services": {"web": web},
        "resources": {"db": {"type": "postgres", "version": 15, "tier": tier, "database": "orders"}},
        "targets": {"gcp": {"provider": "gcp-cloudrun", **running.settings(), "poll_interval": 0.02}},
    }


def deployment(data: dict[str, Any], on_event: Any = None) -> Deployment:
    """A Deployment of the spec's gcp target."""
    return Deployment(spec_from_dict(data), "gcp", retry=RetryPolicy(attempts=3, base_delay=0.1), health_timeout=120,
                      on_event=on_event)


def test_a_database_on_gcp_is_a_cloud_sql_instance_kept_by_destroy(quick_cloudrun: RunningCloudRun) -> None:
    app = f"pg{uuid.uuid4().hex[:6]}"
    deploy = deployment(spec(quick_cloudrun, app))
    planned = deploy.plan()
    steps = {c.key: c for c in planned.changes}
    assert steps["postgres/db"].action is Action.CREATE
    assert "postgres/db" in steps["service/web"].resource.depends_on
    assert deploy.apply(planned).ok
    values = deploy._secret_values()
    password, url = values["resources_db_password"], values["resources_db_url"]

    sql = quick_cloudrun.cloudsql
    assert sql is not None
    ((key, instance),) = [
        (k, i) for k, i in sql.instances.items() if i["settings"]["userLabels"].get("multicloud-app") == app
    ]
    connection = instance["connectionName"]
    assert url == f"postgresql://orders:{password}@/orders?host=%2Fcloudsql%2F{connection.replace(':', '%3A')}"
    assert instance["settings"]["deletionProtectionEnabled"] is True and instance["settings"]["tier"] == "db-g1-small"
    assert "orders" in sql.databases[key] and "orders" in sql.users[key]
    service = quick_cloudrun.model.services[f"{deploy.provider.settings.parent}/services/{app}-web"]  # type: ignore[attr-defined]
    template = service["template"]
    assert {"name": "cloudsql", "cloudSqlInstance": {"instances": [connection]}} in template["volumes"]
    assert {"name": "cloudsql", "mountPath": "/cloudsql"} in template["containers"][0]["volumeMounts"]
    url_ref = next(e for e in template["containers"][0]["env"] if e["name"] == "DATABASE_URL")
    secret_id = url_ref["valueSource"]["secretKeyRef"]["secret"].rsplit("/", 1)[-1]
    assert quick_cloudrun.model.secret_values[secret_id] == url
    shown = [plan_text(planned, verbose=True), str(plan_json(planned)), repr(deploy.provider.observe(app))]
    assert not any(secret in text for secret in (password, url) for text in shown)

    assert not deployment(spec(quick_cloudrun, app)).plan().has_changes
    bigger = deployment(spec(quick_cloudrun, app, tier="medium"))
    assert {c.key: c for c in bigger.plan().changes}["postgres/db"].action is Action.UPDATE
    assert bigger.apply().ok and sql.instances[key]["settings"]["tier"] == "db-custom-2-8192"

    gone = bigger.plan(destroy=True)
    assert gone.kept and bigger.destroy(gone).ok and key in sql.instances
    assert deployment(spec(quick_cloudrun, app, tier="medium")).destroy(volumes=True).ok
    assert key not in sql.instances and key in sql.taken


@pytest.mark.docker
def test_the_revision_logs_in_through_the_connector_socket() -> None:
    from multicloud_docker.dataplane.postgres import image_reference

    running = CloudRunEmulator(run=True).start()
    try:
        if running.model.runner is None:
            pytest.skip(running.notes[-1])
        assert running.cloudsql is not None
        running.cloudsql.op_seconds = 0.02
        serve = ('perl -MIO::Socket::INET -e \'$s=IO::Socket::INET->new(LocalPort=>$ENV{PORT},Listen=>5,ReuseAddr=>1)'
                 ' or die; while($c=$s->accept){print $c "HTTP/1.0 200 OK\\r\\n\\r\\nok"; close $c}\'')
        who = 'psql "$DATABASE_URL" -tAc "SELECT \'login:\' || current_user"'
        app = f"pg{uuid.uuid4().hex[:6]}"
        entrypoint = ["sh", "-c", f"{who}; exec {serve}"]
        deploy = deployment(spec(running, app, image=image_reference(), entrypoint=entrypoint))
        assert deploy.apply().ok
        deadline = time.monotonic() + 60
        while "login:orders" not in (log := _logs(running, app)):
            assert time.monotonic() < deadline, f"the revision did not log in: {log!r}"
            time.sleep(0.3)
        assert deploy.destroy(volumes=True).ok
    finally:
        running.stop()


def _logs(running: RunningCloudRun, app: str) -> str:
    """The output of the app's revision containers on the data plane."""
    import docker

    assert running.model.runner is not None
    api = docker.APIClient(version="1.41")
    session = running.model.runner.plane.session
    members = {"label": [f"multicloud.dataplane={session}", "multicloud.dataplane.role=member"]}
    found = api.containers(all=True, filters=members)
    mine = [c for c in found if f"/services/{app}-web/" in c["Labels"]["multicloud.dataplane.unit"]]
    return "".join(bytes(api.logs(c["Id"])).decode() for c in mine)


@pytest.mark.parametrize(("state", "lacking"), [("RUNNABLE", "missing database 'orders', user 'orders'"),
                                               ("PENDING_CREATE", "pending: the instance is PENDING_CREATE")])
def test_an_instance_a_killed_apply_left_is_finished_by_the_next_apply(
    quick_cloudrun: RunningCloudRun, state: str, lacking: str
) -> None:
    sql, app, lines = quick_cloudrun.cloudsql, f"pg{uuid.uuid4().hex[:6]}", []
    assert sql is not None

    def on_event(event: Event) -> None:
        lines.append(event.message)
        if event.message.startswith("waiting for Cloud SQL instance"):  # the killed apply's create is done now
            sql._due = {k: (0, w, f) for k, (_, w, f) in sql._due.items()}

    deploy = deployment(spec(quick_cloudrun, app), on_event)
    wanted = {c.key: c for c in deploy.plan().changes}["postgres/db"].resource
    body = cloudsql.instance_body(wanted, app, "gcp", "europe-west1")  # the killed apply's create, as it sent it
    admin = deploy.provider.sql  # type: ignore[attr-defined]
    if state == "RUNNABLE":
        admin.insert_instance(body)
    else:  # killed while Cloud SQL still makes it: it stays PENDING_CREATE until the apply waits for it
        sql.op_seconds = 3600.0
        try:
            admin._call("POST", "/instances", f"create {body['name']}", body)
        finally:
            sql.op_seconds = 0.02
    planned = deploy.plan()
    step = {c.key: c for c in planned.changes}["postgres/db"]
    assert step.action is Action.UPDATE and [f.path for f in step.fields] == ["setup"]
    assert f'~ setup: "{lacking}" -> "done"' in plan_text(planned)
    assert deploy.apply(planned).ok
    assert (f"waiting for Cloud SQL instance {body['name']}: it is PENDING_CREATE" in lines) is (state != "RUNNABLE")
    assert not any("updating Cloud SQL instance" in line for line in lines)  # no needless PATCH
    key = ("demo-project", body["name"])
    assert "orders" in sql.databases[key] and "orders" in sql.users[key]
    assert not deployment(spec(quick_cloudrun, app)).plan().has_changes
