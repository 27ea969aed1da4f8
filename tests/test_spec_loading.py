"""Loading specs: valid specs and short forms, cross-references between their parts, and
placeholders. Malformed input is tests/test_spec_errors.py; targets are tests/test_spec_targets.py."""

from __future__ import annotations

import json

import pytest

from multicloud.spec import Build, load, loads, spec_from_dict
from tests.helpers import SKETCH, at, problem, problems, spec, where

# --- valid specs ---------------------------------------------------------------------------


def test_design_sketch_loads():
    loaded = loads(SKETCH, file="multicloud.yaml")
    assert loaded.name == "iot-backend"
    assert list(loaded.services) == ["broker", "ingestion", "db"]
    broker = loaded.services["broker"]
    assert broker.build == Build(context="./services/broker")
    assert broker.build.dockerfile == "Dockerfile"
    assert broker.image is None
    assert [(p.name, p.port, p.protocol, p.expose) for p in broker.ports] == [
        ("mqtt", 1883, "mqtt", "public"),
        ("mqtt-ws", 8080, "mqtt-ws", "public"),
    ]
    assert broker.resources.cpu == 0.5
    assert broker.resources.memory == 512 * 1024**2
    assert broker.healthcheck is not None and broker.healthcheck.tcp == 1883
    ingestion = loaded.services["ingestion"]
    assert ingestion.replicas == 2
    assert ingestion.depends_on == ["broker", "db"]
    assert ingestion.env["MQTT_HOST"] == "${services.broker.host}"
    assert loaded.secrets["database_url"].from_env == "DATABASE_URL"
    assert set(loaded.targets) == {"local", "aws", "azure", "gcp"}
    assert loaded.targets["aws"].provider == "aws-ecs"
    assert loaded.targets["aws"].settings == {"region": "eu-west-1"}
    assert loaded.targets["azure"].settings["resource_group"] == "iot"
    assert loaded.source.path == "multicloud.yaml"


def test_defaults():
    loaded = spec(
        """\
        name: app
        services:
          web: {image: nginx}
        """
    )
    web = loaded.services["web"]
    assert web.replicas == 1
    assert web.resources.cpu == 0.25 and web.resources.memory == 512 * 1024**2
    assert web.ports == [] and web.env == {} and web.depends_on == [] and web.volumes == []
    assert web.healthcheck is None and web.read_only is False and web.user is None
    assert loaded.targets == {} and loaded.secrets == {} and loaded.volumes == {}


def test_short_forms():
    loaded = spec(
        """\
        name: app
        services:
          web:
            build: ./web
            command: python -m http.server "8080" --bind '0.0.0.0'
            entrypoint: [tini, --]
            volumes:
              - data:/srv/data:ro
              - cache:/cache
              - {source: logs, target: /logs, read_only: true}
            env:
              PORT: 8080
              RATIO: 0.5
              DEBUG: true
              QUIET: false
              NAME: plain
        volumes:
          data:
          cache: {}
          logs:
        """
    )
    web = loaded.services["web"]
    assert web.build == Build(context="./web", dockerfile="Dockerfile")
    assert web.command == ["python", "-m", "http.server", "8080", "--bind", "0.0.0.0"]
    assert web.entrypoint == ["tini", "--"]
    assert [(v.source, v.target, v.read_only) for v in web.volumes] == [
        ("data", "/srv/data", True),
        ("cache", "/cache", False),
        ("logs", "/logs", True),
    ]
    assert web.env == {"PORT": "8080", "RATIO": "0.5", "DEBUG": "true", "QUIET": "false", "NAME": "plain"}
    assert set(loaded.volumes) == {"data", "cache", "logs"}


@pytest.mark.parametrize(
    ("written", "size"),
    [("512Mi", 512 * 1024**2), ("1Gi", 1024**3), ("1G", 10**9), ("1.5Gi", 3 * 1024**3 // 2), (1048576, 1048576)],
)
def test_memory_units(written, size):
    loaded = spec_from_dict({"name": "a", "services": {"s": {"image": "x", "resources": {"memory": written}}}})
    assert loaded.services["s"].resources.memory == size


def test_healthcheck_forms_and_durations():
    loaded = spec(
        """\
        name: app
        services:
          a:
            image: x
            ports: [{name: http, port: 80, protocol: http}]
            healthcheck: {http: /healthz, interval: 1m30s, timeout: 500ms, retries: 5, start_period: 2}
          b:
            image: x
            healthcheck: {command: "pg_isready -U postgres"}
        """
    )
    check = loaded.services["a"].healthcheck
    assert check is not None
    assert (check.http, check.interval, check.timeout, check.retries, check.start_period) == (
        "/healthz",
        90.0,
        0.5,
        5,
        2.0,
    )
    other = loaded.services["b"].healthcheck
    assert other is not None and other.command == ["pg_isready", "-U", "postgres"]


def test_yaml_anchors_and_merge_keys_are_allowed():
    loaded = spec(
        """\
        name: app
        services:
          a: &common {image: base:1, replicas: 2}
          b: {<<: *common, user: app}
          c: *common
        """
    )
    assert loaded.services["b"].image == "base:1" and loaded.services["b"].user == "app"
    assert loaded.services["c"].replicas == 2


def test_dollar_dollar_escape_is_not_a_placeholder():
    loaded = spec(
        """\
        name: app
        services:
          a:
            image: x
            env: {PRICE: "$$5", TEMPLATE: "$${services.nothing.host}"}
            command: ["echo", "$${secrets.none}"]
        """
    )
    assert loaded.services["a"].env["TEMPLATE"] == "$${services.nothing.host}"


def test_spec_from_dict_and_load_from_file(tmp_path):
    data = {"name": "app", "services": {"a": {"image": "x", "env": {"N": 1}}}}
    assert spec_from_dict(data).services["a"].env == {"N": "1"}
    path = tmp_path / "multicloud.yaml"
    path.write_text(SKETCH, encoding="utf-8")
    loaded = load(path)
    assert loaded.source.path == str(path)
    assert loaded.source.base_dir == str(tmp_path)


def test_json_schema_is_available_for_editors():
    from multicloud.spec import Spec

    schema = Spec.model_json_schema()
    json.dumps(schema)
    assert {"name", "services"} <= set(schema["required"])
    assert "Service" in schema["$defs"]


# --- cross-references ----------------------------------------------------------------------


def test_unknown_depends_on():
    text = """\
        name: app
        services:
          web:
            image: x
            depends_on: [api, dbb]
          db: {image: postgres}
          api: {image: y}
        """
    found = problem(text)
    assert found.field == "services.web.depends_on[1]"
    assert found.message == "unknown service 'dbb' (known: api, db, web)"
    assert at(found) == where(text, "dbb")


def test_self_dependency():
    text = "name: app\nservices:\n  web: {image: x, depends_on: [web]}\n"
    found = problem(text)
    assert (found.field, found.message) == ("services.web.depends_on[0]", "a service cannot depend on itself")
    assert at(found) == where(text, "web]")


def test_dependency_cycle():
    text = """\
        name: app
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: [c]}
          c: {image: x, depends_on: [d, a]}
          d: {image: x}
        """
    found = problem(text)
    assert found.message == "dependency cycle: a -> b -> c -> a"
    assert found.field == "services.c.depends_on[1]"
    assert at(found) == where(text, "a]")


def test_unknown_secret_and_undeclared_volume():
    text = """\
        name: app
        services:
          web:
            image: x
            secrets: [api_key, tls]
            volumes: ["data:/data"]
        secrets:
          api_key: {from_env: API_KEY}
        """
    found = problems(text)
    assert [(p.field, p.message, at(p)) for p in found] == [
        ("services.web.secrets[1]", "unknown secret 'tls' (known: api_key)", where(text, "tls")),
        (
            "services.web.volumes[0]",
            "volume 'data' is not declared under top-level volumes",
            where(text, '"data:/data"'),
        ),
    ]


def test_secret_needs_one_source():
    found = problem("name: app\nservices:\n  a: {image: x}\nsecrets:\n  s: {from_env: A, from_file: b}\n")
    assert (found.field, found.message) == ("secrets.s", "give exactly one of from_env, from_file or generate: true")


def test_http_healthcheck_needs_a_port():
    found = problem("name: app\nservices:\n  a:\n    image: x\n    healthcheck: {http: /health}\n")
    assert found.field == "services.a.healthcheck.http"
    assert "needs a port" in found.message


# --- placeholders --------------------------------------------------------------------------

PLACEHOLDER_BASE = """\
name: app
services:
  broker:
    image: eclipse-mosquitto
    ports: [{name: mqtt, port: 1883, protocol: mqtt}, {name: ws, port: 8080, protocol: mqtt-ws}]
  worker:
    image: w
    env:
      VALUE: "{value}"
secrets:
  token: {from_env: TOKEN}
"""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${services.brokr.host}", "${services.brokr...}: unknown service (known: broker, worker)"),
        ("${services.broker.port.http}", "service 'broker' has no port named 'http' (ports: mqtt, ws)"),
        ("mqtt://${services.broker.url.mqt}", "service 'broker' has no port named 'mqt' (ports: mqtt, ws)"),
        ("${services.worker.port}", "${services.worker.port}: service 'worker' has no ports"),
        ("${secrets.tokn}", "${secrets.tokn}: unknown secret (known: token)"),
        ("${services.broker.hostname}", "${services.broker.hostname} is not a known placeholder"),
        ("${services.broker.host.mqtt}", "${services.broker.host.mqtt}: host takes no port name"),
        ("${secret.token}", "${secret.token} is not a known placeholder"),
        ("${}", "${} is not a known placeholder"),
        ("${services.broker}", "(write $$ for a literal $)"),
    ],
)
def test_bad_placeholders(value, message):
    text = PLACEHOLDER_BASE.replace("{value}", value)
    found = problem(text)
    assert found.field == "services.worker.env.VALUE"
    assert message in found.message
    assert at(found) == where(text, "VALUE")


def test_placeholders_in_command_are_checked():
    text = "name: app\nservices:\n  a:\n    image: x\n    command: [run, --peer, '${services.b.host}']\n"
    found = problem(text)
    assert found.field == "services.a.command[2]"
    assert at(found) == where(text, "'${services")


def test_good_placeholders_load():
    for value in (
        "${services.broker.host}",
        "${services.broker.port}",
        "${services.broker.port.ws}",
        "${services.broker.url}",
        "${services.broker.url.ws}",
        "${secrets.token}",
        "user:${secrets.token}@${services.broker.host}:${services.broker.port.mqtt}",
        "$${not.a.placeholder}",
        "cost: $$5 ${ secrets.token }",
    ):
        loads(PLACEHOLDER_BASE.replace("{value}", value))
