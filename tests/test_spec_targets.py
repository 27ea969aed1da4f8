"""Targets: the per-target view of a spec (overrides, exclude, reading secret values) and the
load-time checks of targets, their overrides and what they exclude, named at their lines."""

from __future__ import annotations

import textwrap

import pytest

from multicloud.errors import TargetError
from multicloud.spec import loads, read_secrets, target_spec
from tests.helpers import SKETCH, at, problem, problems, where

SPEC = """\
name: shop
services:
  db:
    image: postgres:16
    ports: [{name: pg, port: 5432}]
    volumes: ["pgdata:/var/lib/postgresql/data"]
  api:
    build: {context: ./api, args: {VERSION: "1"}}
    command: serve --port 8080
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {DB_HOST: "${services.db.host}", LOG_LEVEL: info, WORKERS: 2}
    resources: {cpu: 0.5, memory: 512Mi}
    replicas: 2
    depends_on: [db, cache]
    secrets: [api_key]
  cache:
    image: redis:7
    ports: [{name: redis, port: 6379}]
  worker:
    image: worker:1
    env: {TOKEN: "${secrets.token}", CERT: "${secrets.cert}"}
    depends_on: [api]
secrets:
  api_key: {from_env: API_KEY}
  token: {from_env: TOKEN}
  cert: {from_file: secrets/cert.pem}
  unused: {from_env: NEVER_SET}
volumes:
  pgdata:
targets:
  local: {provider: docker}
  edge: {provider: docker, exclude: [worker]}
  aws:
    provider: aws-ecs
    region: eu-west-1
    exclude: [db, cache]
    overrides:
      api:
        env: {DB_HOST: db.rds.example.com, LOG_LEVEL: warn}
        resources: {memory: 1Gi}
        command: [serve, --port, "8080", --cloud]
        ports: [{name: web, port: 80, protocol: http, expose: public}]
        replicas: 4
        build: {dockerfile: Dockerfile.aws}
"""


@pytest.fixture
def shop():
    return loads(SPEC, file="/srv/shop/multicloud.yaml", base_dir="/srv/shop")


def test_target_without_overrides_is_the_spec(shop):
    view = target_spec(shop, "local")
    assert (view.app, view.target, view.provider) == ("shop", "local", "docker")
    assert view.settings == {}
    assert dict(view.services) == dict(shop.services)
    assert view.excluded == frozenset()
    assert view.base_dir == "/srv/shop"
    assert list(view.volumes) == ["pgdata"]


def test_overrides_merge_env_and_resources_key_by_key(shop):
    api = target_spec(shop, "aws").services["api"]
    assert api.env == {"DB_HOST": "db.rds.example.com", "LOG_LEVEL": "warn", "WORKERS": "2"}
    assert api.resources.cpu == 0.5  # kept from the base
    assert api.resources.memory == 1024**3  # from the override


def test_overrides_replace_other_fields(shop):
    api = target_spec(shop, "aws").services["api"]
    assert api.command == ["serve", "--port", "8080", "--cloud"]
    assert [(p.name, p.port) for p in api.ports] == [("web", 80)]  # replaced, not appended
    assert api.replicas == 4
    assert api.secrets == ["api_key"]  # untouched fields stay


def test_build_merges_key_by_key(shop):
    api = target_spec(shop, "aws").services["api"]
    assert api.build is not None
    assert (api.build.context, api.build.dockerfile, api.build.args) == ("./api", "Dockerfile.aws", {"VERSION": "1"})


def test_exclude_drops_the_service_and_its_depends_on_edges(shop):
    view = target_spec(shop, "aws")
    assert set(view.services) == {"api", "worker"}
    assert view.excluded == frozenset({"db", "cache"})
    assert view.services["api"].depends_on == []
    assert view.services["worker"].depends_on == ["api"]
    assert view.settings == {"region": "eu-west-1"}
    assert shop.services["api"].depends_on == ["db", "cache"]  # the spec itself is unchanged


def test_unknown_target_names_the_known_ones(shop):
    with pytest.raises(
        TargetError, match=r"unknown target 'gcp' \(targets in /srv/shop/multicloud.yaml: local, edge, aws\)"
    ):
        target_spec(shop, "gcp")


def test_unknown_target_without_targets_section():
    bare = loads("name: a\nservices:\n  s: {image: x}\n")
    with pytest.raises(TargetError, match="add a `targets:` section"):
        target_spec(bare, "local")


def test_used_secrets_are_those_a_service_on_the_target_uses(shop):
    assert target_spec(shop, "local").used_secrets() == ["api_key", "token", "cert"]
    assert target_spec(shop, "edge").used_secrets() == ["api_key"]
    assert read_secrets(target_spec(shop, "edge"), {"API_KEY": "k"}) == {"api_key": "k"}
    sketch = loads(SKETCH)
    assert target_spec(sketch, "aws").used_secrets() == ["database_url"]


def test_read_secrets_from_env_and_file(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cert.pem").write_text("-----CERT-----\n", encoding="utf-8")
    shop = loads(SPEC, base_dir=str(tmp_path))
    values = read_secrets(target_spec(shop, "local"), {"API_KEY": "k-1", "TOKEN": "t-2"})
    assert values == {"api_key": "k-1", "token": "t-2", "cert": "-----CERT-----"}


def test_missing_secrets_are_all_named(tmp_path):
    shop = loads(SPEC, base_dir=str(tmp_path))
    with pytest.raises(TargetError) as caught:
        read_secrets(target_spec(shop, "local"), {"TOKEN": "t"})
    message = str(caught.value)
    assert "secret 'api_key': environment variable API_KEY is not set" in message
    assert "secret 'cert': cannot read " + str(tmp_path / "secrets" / "cert.pem") in message
    assert "No such file or directory" in message
    assert "token" not in message.replace("TOKEN", "")  # the one that is there is not named
    assert "unused" not in message and "NEVER_SET" not in message  # not used on this target


def test_secret_values_are_not_in_the_missing_message(tmp_path):
    shop = loads(SPEC, base_dir=str(tmp_path))
    with pytest.raises(TargetError) as caught:
        read_secrets(target_spec(shop, "local"), {"TOKEN": "hunter2-plaintext"})
    assert "hunter2" not in str(caught.value)


# --- targets -------------------------------------------------------------------------------

TARGETS_BASE = textwrap.dedent(
    """\
    name: app
    services:
      db:
        image: postgres
        ports: [{name: pg, port: 5432}]
      web:
        build: ./web
        env: {DB_HOST: "${services.db.host}", MODE: dev}
        depends_on: [db]
    targets:
    """
)


def test_unknown_service_in_exclude_and_overrides():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    exclude: [database]\n"
    text += "    overrides:\n      wbe: {replicas: 2}\n"
    found = problems(text)
    assert [(p.field, p.message, at(p)) for p in found] == [
        ("targets.aws.exclude[0]", "unknown service 'database' (known: db, web)", where(text, "database")),
        ("targets.aws.overrides.wbe", "unknown service 'wbe' (known: db, web)", where(text, "wbe")),
    ]


def test_bad_override_field_points_into_the_override():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    overrides:\n      web:\n        replica: 2\n"
    found = problem(text)
    assert found.field == "targets.aws.overrides.web.replica"
    assert found.message == "unknown field 'replica'; did you mean 'replicas'?"
    assert at(found) == where(text, "replica:")


def test_bad_override_value_points_into_the_override():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    overrides:\n      web:\n        resources: {cpu: none}\n"
    found = problem(text)
    assert found.field == "targets.aws.overrides.web.resources.cpu"
    assert found.message == "should be a number (got string 'none')"
    assert at(found) == where(text, "cpu: none")


def test_override_that_breaks_a_rule_points_at_the_override():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    overrides:\n      web:\n        image: registry/web:1\n"
    found = problem(text)
    assert (found.field, found.message) == ("targets.aws.overrides.web", "give exactly one of image or build")
    assert at(found) == where(text, "web:\n        image")


def test_override_cross_references_are_checked():
    text = TARGETS_BASE + (
        "  aws:\n    provider: aws-ecs\n    overrides:\n      web:\n"
        "        depends_on: [cache]\n        env: {TOKEN: '${secrets.nope}'}\n"
    )
    found = problems(text)
    assert [(p.field, at(p)) for p in found] == [
        ("targets.aws.overrides.web.depends_on[0]", where(text, "cache")),
        ("targets.aws.overrides.web.env.TOKEN", where(text, "TOKEN")),
    ]


def test_override_may_create_a_cycle_on_one_target():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    overrides:\n      db:\n        depends_on: [web]\n"
    found = problem(text)
    assert found.field == "targets.aws.overrides.db.depends_on[0]"
    assert found.message == "dependency cycle: db -> web -> db (on target 'aws')"


def test_placeholder_to_an_excluded_service():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    exclude: [db]\n"
    found = problem(text)
    assert found.field == "services.web.env.DB_HOST"
    assert at(found) == where(text, "DB_HOST")
    assert found.message == (
        "refers to service 'db', which target 'aws' excludes; override this field under targets.aws.overrides.web"
    )


def test_overriding_the_placeholder_fixes_the_excluded_reference():
    text = TARGETS_BASE + (
        "  aws:\n    provider: aws-ecs\n    exclude: [db]\n    overrides:\n"
        "      web: {env: {DB_HOST: db.example.com}}\n"
    )
    loaded = loads(text)
    assert loaded.targets["aws"].exclude == ["db"]


def test_excluded_reference_written_in_an_override_points_there():
    text = TARGETS_BASE + (
        "  aws:\n    provider: aws-ecs\n    exclude: [db]\n    overrides:\n"
        "      web: {env: {DB_HOST: rds.example.com, DB_URL: 'pg://${services.db.host}'}}\n"
    )
    found = problem(text)
    assert found.field == "targets.aws.overrides.web.env.DB_URL"
    assert at(found) == where(text, "DB_URL")


def test_override_merges_with_a_build_short_form():
    text = TARGETS_BASE + "  aws:\n    provider: aws-ecs\n    overrides:\n"
    text += "      web: {build: {dockerfile: Dockerfile.aws}}\n"
    loads(text)  # the base `build: ./web` merges as {context: ./web}


def test_target_needs_a_provider():
    text = TARGETS_BASE + "  aws: {region: eu-west-1}\n"
    found = problem(text)
    assert (found.field, found.message) == ("targets.aws.provider", "missing required field 'provider'")
    assert at(found) == where(text, "aws:")


def test_malformed_placeholder_with_targets_is_a_spec_error():
    text = TARGETS_BASE.replace("MODE: dev", "MODE: '${oops}'") + "  aws: {provider: aws-ecs}\n"
    found = problem(text)
    assert found.field == "services.web.env.MODE"


def test_references_are_checked_against_the_ports_a_target_overrides():
    text = (
        TARGETS_BASE
        + "  aws:\n    provider: aws-ecs\n    overrides:\n      db:\n        ports: [{name: sql, port: 5432}]\n"
    )
    text = text.replace("MODE: dev", "DB_PORT: '${services.db.port.pg}'")
    found = problem(text)
    assert found.field == "services.web.env.DB_PORT"
    assert found.message == ("service 'db' has no port named 'pg' (ports: sql) (on target 'aws', after its overrides)")
    assert at(found) == where(text, "DB_PORT")


def test_an_override_may_refer_to_a_port_that_another_override_adds():
    text = (
        TARGETS_BASE
        + "  gcp:\n    provider: gcp-cloudrun\n    overrides:\n      db:\n        ports: [{name: sql, port: 5432}]\n"
        + "      web:\n        env: {DB_PORT: '${services.db.port.sql}'}\n"
    )
    assert loads(text).targets["gcp"].overrides["web"]["env"]["DB_PORT"] == "${services.db.port.sql}"
    wrong = text.replace("port.sql}", "port.pg}")
    found = problem(wrong)
    assert found.field == "targets.gcp.overrides.web.env.DB_PORT"
    assert found.message == "service 'db' has no port named 'pg' (ports: sql)"
