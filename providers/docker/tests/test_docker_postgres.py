"""A `postgres` resource on the real engine: a PostgreSQL container made before the service that
uses it, reached at the URL the service gets as a secret file (user, password, database checked by
a real login over TCP), its data kept by destroy and there again after the next apply, removed by
destroy --volumes; the generated password never printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import APP_IMAGE, deployment, owned

from multicloud.render import plan_json, plan_text

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images", "postgres_image")]


def _spec(app: str) -> dict[str, Any]:
    return {
        "name": app,
        "services": {
            "client": {
                "image": APP_IMAGE,
                "ports": [{"name": "http", "port": 8080, "protocol": "http"}],
                "env": {"DATABASE_URL_FILE": "${resources.db.url.file}", "DB_HOST": "${resources.db.host}",
                        "DB_PORT": "${resources.db.port}", "DB_NAME": "${resources.db.name}"},
                "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
            },
        },
        "resources": {"db": {"type": "postgres", "version": 15, "database": "shop"}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 2}},
    }


def _exec(api: Any, container: str, argv: list[str]) -> str:
    run = api.exec_create(container, argv)
    output = bytes(api.exec_start(run["Id"])).decode()
    assert api.exec_inspect(run["Id"])["ExitCode"] == 0, output
    return output


def _containers(api: Any, app: str) -> dict[str, str]:
    return {c["Labels"]["multicloud.resource"]: c["Id"] for c in owned(api, app)["containers"]}


def _sql(api: Any, app: str, url: str, statement: str) -> str:
    """Run SQL as the services do: over TCP, at the URL's host (the network alias), with its password."""
    return _exec(api, _containers(api, app)["postgres/db"], ["psql", url, "-tAc", statement]).strip()


def test_database_made_first_reached_by_url_and_kept_by_destroy(engine: Any, app: str, _state_dir: Path) -> None:
    deploy = deployment(_spec(app))
    planned = deploy.plan()
    steps = {c.key: c for c in planned.changes}
    assert set(steps) >= {"postgres/db", "volume/postgres.db", "service/client"}
    assert "postgres/db" in steps["service/client"].requires
    assert deploy.apply(planned).ok
    password = (_state_dir / "secrets" / "docker" / app / "local" / "resources_db_password").read_text()
    client = _containers(engine, app)["service/client"]
    url = _exec(engine, client, ["cat", "/run/secrets/resources_db_url"])
    assert url == f"postgresql://shop:{password}@db:5432/shop"
    env = engine.inspect_container(client)["Config"]["Env"]
    assert {"DB_HOST=db", "DB_PORT=5432", "DB_NAME=shop"} <= set(env) and password not in json.dumps(env)
    assert _sql(engine, app, url, "SELECT current_user || '@' || current_database()") == "shop@shop"
    _sql(engine, app, url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives destroy')")
    shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), repr(deploy.provider.observe(app))]
    assert not any(password in text for text in shown)

    gone = deployment(_spec(app)).destroy()
    assert gone.ok and [v["Name"] for v in owned(engine, app)["volumes"]] == [f"{app}_postgres.db"]
    again = deployment(_spec(app))
    assert again.apply().ok  # the kept volume and password: the data is there again
    assert _sql(engine, app, url, "SELECT v FROM kept") == "survives destroy"

    assert deployment(_spec(app)).destroy(volumes=True).ok
    assert not any(owned(engine, app).values())
    assert not (_state_dir / "secrets" / "docker" / app / "local").exists()


def test_a_new_major_version_replaces_the_data_volume_which_is_kept(app: str) -> None:
    bound = deployment({**_spec(app), "resources": {"db": {"type": "postgres", "version": 16}}})
    rendered = {r.key: r for r in bound.provider.desired(bound.target_spec, {
        "resources_db_password": "pw", "resources_db_url": "postgresql://db:pw@db:5432/db"})}
    volume = rendered["volume/postgres.db"]
    assert volume.persistent and "postgres" in volume.replace_on and volume.properties["postgres"] == "16"
    assert rendered["postgres/db"].properties["image"] == "postgres:16"


def test_the_data_volume_is_kept_unless_its_database_says_delete() -> None:
    from multicloud_docker.observe import data_policy

    from multicloud.resources import Resource

    def observed(deletion: str | None) -> list[Resource]:
        found = [Resource("volume", "postgres.db", {}), Resource("volume", "data", {}, persistent=True)]
        return found + ([Resource("postgres", "db", {"deletion": deletion})] if deletion else [])

    assert [r.persistent for r in data_policy(observed("keep"))[:2]] == [True, True]
    assert [r.persistent for r in data_policy(observed("snapshot"))[:2]] == [True, True]
    assert [r.persistent for r in data_policy(observed("delete"))[:2]] == [False, True]
    assert [r.persistent for r in data_policy(observed(None))[:2]] == [True, True]  # no container: keep
