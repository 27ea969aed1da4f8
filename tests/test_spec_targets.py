"""The per-target view of a spec: overrides, exclude, and reading secret values."""

from __future__ import annotations

import pytest

from multicloud.errors import TargetError
from multicloud.spec import loads, read_secrets, target_spec
from tests.helpers import SKETCH

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
