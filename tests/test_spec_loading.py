"""Loading specs: valid specs and short forms, and every kind of error with file:line:column."""

from __future__ import annotations

import json
import textwrap

import pytest

from multicloud.errors import SpecError, UserError
from multicloud.spec import Build, load, loader, loads, spec_from_dict
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


# --- errors: each names file, line, column, field, in plain words ----------------------------


def test_unknown_field_suggests_the_right_one():
    text = """\
        name: app
        services:
          web:
            image: nginx
            replica: 2
        """
    found = problem(text)
    assert found.file == "multicloud.yaml"
    assert at(found) == where(text, "replica")
    assert found.field == "services.web.replica"
    assert found.message == "unknown field 'replica'; did you mean 'replicas'?"
    assert str(found) == "multicloud.yaml:5:5: services.web.replica: unknown field 'replica'; did you mean 'replicas'?"


@pytest.mark.parametrize(
    ("snippet", "field", "suggestion"),
    [
        ("    ports: [{name: web, port: 80, protocl: http}]\n", "services.web.ports[0].protocl", "protocol"),
        ("    resources: {cpus: 1}\n", "services.web.resources.cpus", "cpu"),
        ("    healthcheck: {tcp: 80, intervall: 5}\n", "services.web.healthcheck.intervall", "interval"),
        ("    build: {context: ., dockerfil: X}\n", "services.web.build.dockerfil", "dockerfile"),
    ],
)
def test_unknown_nested_fields(snippet, field, suggestion):
    text = "name: app\nservices:\n  web:\n" + snippet
    if "build" not in snippet:
        text = text.replace("  web:\n", "  web:\n    image: x\n")
    found = problem(text)
    assert found.field == field
    assert f"did you mean {suggestion!r}" in found.message
    assert at(found) == where(text, field.rsplit(".", 1)[-1])


def test_unknown_top_level_field():
    found = problems("name: app\nservice:\n  web: {image: x}\n")
    assert [(p.field, p.message, at(p)) for p in found] == [
        ("services", "missing required field 'services'", (1, 1)),
        ("service", "unknown field 'service'; did you mean 'services'?", (2, 1)),
    ]


def test_missing_required_field_points_at_its_parent():
    text = """\
        name: app
        services:
          web:
            image: x
            ports:
              - {name: web}
        """
    found = problem(text)
    assert found.field == "services.web.ports[0].port"
    assert found.message == "missing required field 'port'"
    assert at(found) == where(text, "{name: web}")


def test_missing_name():
    found = problem("services:\n  web: {image: x}\n")
    assert (found.field, found.message, at(found)) == ("name", "missing required field 'name'", (1, 1))


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("    replicas: two", "services.web.replicas", "should be a whole number (got string 'two')"),
        ("    replicas: [2]", "services.web.replicas", "should be a whole number (got list [2])"),
        ("    image: [x]", "services.web.image", "should be a string (got list ['x'])"),
        ("    env: [A=1]", "services.web.env", "should be a mapping (got list ['A=1'])"),
        ("    env: {A: null}", "services.web.env.A", "should be a string (got null)"),
        ("    read_only: maybe", "services.web.read_only", "should be true or false (got string 'maybe')"),
        ("    resources: {cpu: lots}", "services.web.resources.cpu", "should be a number (got string 'lots')"),
        ("    resources: {memory: 12Zi}", "services.web.resources.memory", "'12Zi' is not a memory size"),
        ("    resources: {cpu: 0}", "services.web.resources.cpu", "greater than 0"),
        ("    ports: [{name: p, port: 70000}]", "services.web.ports[0].port", "less than or equal to 65535"),
        ("    ports: [{name: p, port: 1, protocol: ftp}]", "services.web.ports[0].protocol", "'mqtt-ws'"),
        ("    healthcheck: {tcp: 80, interval: soon}", "services.web.healthcheck.interval", "not a duration"),
        ("    command: []", "services.web.command", "must not be empty"),
        ('    command: "echo \'open"', "services.web.command", "cannot split command into arguments"),
        ("    volumes: [data]", "services.web.volumes[0]", "a volume is written NAME:/path or NAME:/path:ro"),
    ],
)
def test_wrong_types_and_values(line, field, expected):
    first = "    build: ." if "image" in line else "    image: x"
    text = f"name: app\nservices:\n  web:\n{first}\n{line}\n"
    found = problems(text)
    found = [p for p in found if "exactly one of image or build" not in p.message]
    assert len(found) == 1, found
    assert found[0].field == field
    assert expected in found[0].message
    assert found[0].line == 5


def test_type_messages_use_yaml_words_not_python_names():
    found = problem("name: app\nservices:\n  web: null\n")
    assert found.field == "services.web"
    assert found.message == "should be a mapping of fields (got null)"
    assert "NoneType" not in str(found) and "instance of" not in str(found)
    found = problem("name: app\nservices: []\n")
    assert found.message == "should be a mapping (got list [])"
    found = problem("name: app\nservices: {}\n")
    assert (found.field, found.message) == ("services", "must not be empty")


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("name: App\nservices:\n  web: {image: x}\n", "name", "name"),
        ("name: app\nservices:\n  Web_1: {image: x}\n", "services.Web_1", "Web_1"),
        ("name: app\nservices:\n  web: {image: x, depends_on: [Db]}\n", "services.web.depends_on[0]", "Db"),
        (
            "name: app\nservices:\n  web: {image: x, ports: [{name: Web!, port: 1}]}\n",
            "services.web.ports[0].name",
            "name: Web!",
        ),
        ("name: app\nservices:\n  web: {image: x}\nsecrets:\n  9lives: {from_env: X}\n", "secrets.9lives", "9lives"),
        ("name: app\nservices:\n  web: {image: x}\ntargets:\n  AWS: {provider: aws-ecs}\n", "targets.AWS", "AWS"),
    ],
)
def test_bad_names(text, field, needle):
    found = problem(text)
    assert found.field == field
    assert "is not a valid name: use" in found.message
    assert at(found) == where(text, needle)


def test_bad_name_explains_the_rule():
    found = problem("name: my_app\nservices:\n  web: {image: x}\n")
    assert found.message == (
        "'my_app' is not a valid name: use lowercase letters, digits and '-', "
        "starting with a letter (it becomes a DNS name)"
    )


def test_duplicate_key():
    text = """\
        name: app
        services:
          web:
            image: x
            replicas: 1
            replicas: 2
        """
    found = problem(text)
    assert (found.field, found.message) == ("services.web.replicas", "key appears twice in this mapping")
    assert at(found) == where(text, "replicas", nth=1)


def test_duplicate_service():
    text = "name: app\nservices:\n  web: {image: x}\n  api: {image: y}\n  web: {image: z}\n"
    found = problem(text)
    assert found.field == "services.web"
    assert at(found) == (5, 3)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("name: app\nservices:\n  web: {image: x\n", 4, 1),
        ("name: app\nservices:\n  web:\n    image: x\n   replicas: 2\n", 5, 4),
        ("name: app\n\tservices: {}\n", 2, 1),
        ("name: 'unterminated\nservices: {}\n", 3, 1),
        ("name: app\n---\nname: other\n", 2, 1),
    ],
)
def test_yaml_syntax_errors(text, line, column):
    found = problem(text)
    assert found.message.startswith("YAML syntax: ")
    assert found.field == ""
    assert (found.line, found.column) == (line, column)
    assert str(found).startswith(f"multicloud.yaml:{line}:{column}: YAML syntax: ")


def test_multiple_documents_say_so():
    assert "expected a single document" in problem("name: app\n---\nname: other\n").message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- # nothing\n...\n", "~\n"])
def test_empty_file(text):
    found = problem(text)
    assert (found.message, found.field, at(found)) == ("the file is empty", "", (1, 1))


@pytest.mark.parametrize("text", ["- web\n- api\n", "just some words\n", "42\n"])
def test_top_level_must_be_a_mapping(text):
    found = problem(text)
    assert found.message == "the spec must be a mapping of fields (name, services...)"
    assert at(found) == (1, 1)


def test_image_and_build_both_or_neither():
    text = """\
        name: app
        services:
          both:
            image: x
            build: ./both
          neither:
            replicas: 2
        """
    found = problems(text)
    assert [(p.field, p.message, at(p)) for p in found] == [
        ("services.both", "give exactly one of image or build", where(text, "both:")),
        ("services.neither", "give exactly one of image or build", where(text, "neither:")),
    ]


def test_every_problem_is_reported_sorted_by_line():
    text = """\
        name: app
        services:
          web:
            image: x
            replicas: many
            colour: blue
          api:
            imag: y
        """
    found = problems(text)
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert {p.field for p in found} >= {"services.web.replicas", "services.web.colour", "services.api.imag"}
    error = SpecError(found)
    assert str(error).startswith(f"invalid spec ({len(found)} problems):\n  multicloud.yaml:5:5: ")
    assert isinstance(error, UserError) and error.exit_code == 2


def test_load_names_the_file(tmp_path):
    path = tmp_path / "multicloud.yaml"
    path.write_text("name: app\nservices:\n  web: {imag: x}\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load(path)
    assert str(path) + ":3:9: services.web.imag: unknown field 'imag'" in str(caught.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(SpecError, match="not valid UTF-16 after its byte-order mark"):
        load(binary)


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


# --- hostile YAML --------------------------------------------------------------------------


def test_recursive_alias():
    found = problem("name: app\nservices: &s\n  web: *s\n")
    assert found.message == "an alias refers to a mapping or list that contains it"
    assert found.field == "services.web"


def test_alias_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 5000)  # the real limit works the same, only slower
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    found = problem("\n".join(lines) + "\n")
    assert found.message == "the document expands to more than 5000 values (aliases?)"


def test_deep_nesting_is_refused():
    found = problem("name: app\nservices:\n  web:\n    image: " + "[" * 500 + "]" * 500 + "\n")
    assert "nested more than" in found.message
    assert found.field.startswith("services.web.image")


@pytest.mark.parametrize("text", ["name: !!int abc\n", "!!float x: 1\n", "name: !!timestamp 2001-99-99\n"])
def test_scalars_a_tag_cannot_read(text):
    assert "cannot read" in problem(text).message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: !!python/object/apply:os.system echo\n", "YAML syntax: could not determine a constructor"),
        ("name: !!python/object/apply:os.system [echo hi]\n", "the YAML tag tag:yaml.org,2002:python/object/apply"),
        ("name: app\nservices: !!set {a: null}\n", "the YAML tag tag:yaml.org,2002:set is not supported"),
        ("name: app\nservices: !!omap [{a: {image: x}}]\n", "the YAML tag tag:yaml.org,2002:omap is not supported"),
    ],
)
def test_unsupported_tags_are_refused(text, message):
    assert message in problem(text).message


def test_complex_keys_are_refused():
    found = problem("name: app\nservices:\n  ? [a, b]\n  : {image: x}\n")
    assert found.message == "keys must be plain names"
    assert found.field == "services"


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
