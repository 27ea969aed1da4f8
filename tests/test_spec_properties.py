"""Property tests: whatever text or data a spec holds, loading gives a Spec or a SpecError
whose every problem names file, line, column and (but for whole-document problems) a field.
Never any other exception, never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from multicloud.errors import MulticloudError, SpecError
from multicloud.settings import settings_models, target_problems
from multicloud.spec import Spec, loads, read_secrets, target_spec
from multicloud.testing import MemoryCloud, MemoryProvider
from tests.helpers import SKETCH

FILE = "props/multicloud.yaml"
BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Problems about the document as a whole rather than one field.
DOCUMENT_LEVEL = (
    "YAML syntax: ",
    "the file is empty",
    "the spec must be a mapping",
    "keys must be plain names",
    "cannot read ",
    "the YAML tag ",
    "nested more than ",
    "an alias refers ",
    "the document expands ",
    "character U+",
)

RICH = """\
name: shop
services:
  db:
    image: postgres:16
    ports: [{name: pg, port: 5432}]
    env: {POSTGRES_PASSWORD: "${secrets.pw}"}
    volumes: ["data:/var/lib/postgresql/data:ro"]
    healthcheck: {command: pg_isready, interval: 5s, retries: 3}
  api:
    build: {context: ./api, dockerfile: Dockerfile, args: {V: 1}}
    command: serve --port 8080
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {DB: "${services.db.host}:${services.db.port.pg}", URL: "${services.web.url}", COST: "$$5"}
    resources: {cpu: 1, memory: 1Gi}
    replicas: 2
    depends_on: [db]
    secrets: [pw]
    user: "1000"
    read_only: true
    healthcheck: {http: /health, port: 8080}
  web:
    image: web:1
    ports: [{name: http, port: 80, protocol: http, expose: public}]
secrets:
  pw: {from_env: PW}
volumes:
  data:
targets:
  local: {provider: memory}
  cloud:
    provider: memory
    exclude: [db]
    overrides:
      api: {env: {DB: db.example.com}, resources: {memory: 2Gi}, depends_on: []}
"""


def check_outcome(text: str) -> Spec | None:
    """Load text; assert the result is a Spec or a well-formed SpecError."""
    try:
        loaded = loads(text, file=FILE)
    except SpecError as error:
        assert error.problems, "a SpecError carries at least one problem"
        last_line = text.count("\n") + text.count("\r") + 2
        rendered = str(error)
        for problem in error.problems:
            assert problem.file == FILE
            assert 1 <= problem.line <= last_line, problem
            assert problem.column >= 1, problem
            assert problem.message, problem
            if not problem.message.startswith(DOCUMENT_LEVEL):
                assert problem.field, f"no field named in: {problem}"
            assert f"{FILE}:{problem.line}:{problem.column}: " in rendered
        assert "Traceback" not in rendered
        return None
    assert isinstance(loaded, Spec)
    exercise(loaded)
    return loaded


def exercise(loaded: Spec) -> None:
    """A spec that loads must also resolve for each of its targets and render resources."""
    for name in loaded.targets:
        view = target_spec(loaded, name)  # never a pydantic error for a spec that loaded
        environ = {s.from_env: "value" for s in loaded.secrets.values() if s.from_env}
        try:
            secrets = read_secrets(view, environ)
        except MulticloudError:
            continue  # from_file secrets that do not exist here
        if view.provider == "memory":
            MemoryProvider(cloud=MemoryCloud()).desired(view, secrets)


# --- random text ---------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "name:",
        "services:",
        "image:",
        "build:",
        "ports:",
        "env:",
        "targets:",
        "secrets:",
        "volumes:",
        "depends_on:",
        "overrides:",
        "exclude:",
        "provider:",
        "replicas:",
        "resources:",
        "healthcheck:",
        "web",
        "db",
        "x",
        "1883",
        "-1",
        "0.5",
        "512Mi",
        "true",
        "null",
        "~",
        "''",
        '"',
        "'",
        "${services.db.host}",
        "${secrets.pw}",
        "${",
        "}",
        "$$",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "- ",
        "? ",
        "&a",
        "*a",
        "<<:",
        "!!int",
        "!!str",
        "!!python/name:os.system",
        "---",
        "...",
        "#",
        "%YAML 1.1",
        "\n",
        "\n  ",
        "\n    ",
        "\t",
        " ",
        "é",
        "名前",
        "\u200b",
        "\x00",
        "\ufeff",
        "\r\n",
    ]
)


@BOUNDED
@given(st.text(max_size=200))
@example("")
@example("\x00")
@example("name: app\nservices:\n  a: &x [*x]\n")
@example("[" * 200)
@example("!!int")
@example("a: !!float\nb: !!timestamp 2001-02-30\nc: !!binary '%%'")
def test_random_text(text):
    check_outcome(text)


@BOUNDED
@given(st.lists(TOKENS, max_size=40).map("".join))
def test_random_yamlish_text(text):
    check_outcome(text)


@BOUNDED
@given(st.integers(0, len(RICH) - 1), st.integers(0, 5), st.text(max_size=4))
def test_edits_of_valid_text(position, cut, insert):
    check_outcome(RICH[:position] + insert + RICH[position + cut :])


# --- random mutations of a valid spec ------------------------------------------------------

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["web", "db", "512Mi", "10s", "${services.db.host}", "${secrets.pw}", "${bad", "a:/b:ro"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
FIELD_NAMES = st.sampled_from(
    ["name", "image", "build", "ports", "env", "replicas", "depends_on", "volumes", "provider", "port", "imagee"]
) | st.text(max_size=8)
MUTATIONS = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(["set", "delete", "add", "rename", "wrap"]), VALUES, FIELD_NAMES),
    min_size=1,
    max_size=4,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


def mutate(data: dict[str, Any], mutations: list[tuple[int, str, Any, str]]) -> Any:
    """Apply deterministic mutations: each picks a path by index and changes it."""
    root: Any = copy.deepcopy(data)
    for index, action, value, name in mutations:
        every = paths(root)
        path = every[index % len(every)]
        if not path:
            if action == "set":
                root = value
            elif isinstance(root, dict):
                root[name] = value
            continue
        parent = root
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if action == "set":
            parent[last] = value
        elif action == "delete":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]]
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][name] = value
        elif action == "rename" and isinstance(parent, dict):
            parent[name] = parent.pop(last)
        else:
            parent[last] = {name: parent[last]}
    return root


BASES = [yaml.safe_load(SKETCH), yaml.safe_load(RICH)]
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@BOUNDED
@given(st.sampled_from(BASES), MUTATIONS, st.booleans())
def test_mutated_specs(base, mutations, flow):
    data = mutate(base, mutations)
    text = yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=flow, width=60)
    check_outcome(text)


def test_the_bases_are_valid():
    assert check_outcome(SKETCH) is not None
    assert check_outcome(RICH) is not None


# --- random specs built from parts that refer to each other --------------------------------

NAMES = ["a", "b", "c"]
PORTS = {
    "http": {"name": "http", "port": 80, "protocol": "http"},
    "ws": {"name": "ws", "port": 81, "protocol": "mqtt-ws"},
}
REFERENCES = st.sampled_from(
    [f"${{services.{n}.{attr}}}" for n in [*NAMES, "z"] for attr in ("host", "port", "url")]
    + [f"${{services.{n}.url.{p}}}" for n in NAMES for p in [*PORTS, "nope"]]
    + ["${secrets.s1}", "${secrets.s2}", "plain", "$$", "${oops"]
)
PARTS = {
    "ports": st.lists(st.sampled_from(sorted(PORTS)), unique=True, max_size=2).map(lambda ns: [PORTS[n] for n in ns]),
    "env": st.dictionaries(st.sampled_from(["K1", "K2"]), REFERENCES, max_size=2),
    "depends_on": st.lists(st.sampled_from([*NAMES, "z"]), unique=True, max_size=2),
    "secrets": st.lists(st.sampled_from(["s1", "s2"]), unique=True, max_size=1),
    "volumes": st.lists(st.sampled_from(["v1:/data", "v2:/data:ro"]), unique=True, max_size=1),
    "replicas": st.sampled_from([1, 2, "x"]),
}
SERVICE = st.fixed_dictionaries({"image": st.just("x")}, optional=PARTS)
OVERRIDE = st.fixed_dictionaries({}, optional={**PARTS, "build": st.just("./b"), "image": st.just("y")})
TARGET = st.fixed_dictionaries(
    {"provider": st.just("memory")},
    optional={
        "exclude": st.lists(st.sampled_from(NAMES), unique=True, max_size=2),
        "overrides": st.dictionaries(st.sampled_from(NAMES), OVERRIDE, max_size=2),
    },
)
WOVEN = st.fixed_dictionaries(
    {
        "name": st.just("woven"),
        "services": st.dictionaries(st.sampled_from(NAMES), SERVICE, min_size=1, max_size=3),
        "secrets": st.dictionaries(st.sampled_from(["s1"]), st.just({"from_env": "S1"})),
        "volumes": st.dictionaries(st.sampled_from(["v1"]), st.none()),
        "targets": st.dictionaries(st.sampled_from(["t1", "t2"]), TARGET, max_size=2),
    }
)


@BOUNDED
@given(WOVEN)
def test_specs_that_load_render_on_every_target(data):
    check_outcome(yaml.dump(data, Dumper=DUMPER, sort_keys=False))


# --- provider settings ---------------------------------------------------------------------

SETTINGS_MODELS = settings_models()
SETTING_VALUES = VALUES | st.sampled_from(
    ["eu-west-1", "europe-west1", "my-project", "vpc-0a", "subnet-1", "tcp://h:2375", "0.0.0.0", "5m", "rest",
     "always", "https://management.azure.com", "http://127.0.0.1:1", "arn:aws:iam::123456789012:role/r"]
)


def setting_keys(provider: str) -> st.SearchStrategy[str]:
    """A provider's own setting names, near misses of them, the core's reserved keys, and junk."""
    known = list(SETTINGS_MODELS[provider].model_fields)
    return st.sampled_from(known) | st.sampled_from([k[:-1] for k in known if len(k) > 3]) | st.text(max_size=8)


@st.composite
def targets_section(draw: st.DrawFn) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(["t1", "t2", "t3"]), unique=True, min_size=1, max_size=3)):
        provider = draw(st.sampled_from(sorted(SETTINGS_MODELS)))
        settings = draw(st.dictionaries(setting_keys(provider), SETTING_VALUES, max_size=5))
        for reserved in ("provider", "overrides", "exclude"):
            settings.pop(reserved, None)
        targets[name] = {"provider": provider, **settings}
    return targets


@BOUNDED
@given(targets_section(), st.booleans())
def test_provider_settings_never_a_traceback_always_file_line(targets, flow):
    """Whatever target settings hold, the core's check of them gives problems at file:line under
    `targets.NAME`, each at a line of the file, and never any other exception."""
    data = {"name": "s", "services": {"web": {"image": "x"}}, "targets": targets}
    text = yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=flow, width=60)
    spec = check_outcome(text)
    if spec is None:
        return
    last_line = text.count("\n") + 2
    for problem in target_problems(spec):
        assert problem.file == FILE and 1 <= problem.line <= last_line and problem.column >= 1, problem
        assert problem.field.startswith("targets.") and problem.message, problem
        assert "Traceback" not in str(problem)


def test_every_installed_provider_has_settings_to_fuzz():
    assert {"docker", "aws-ecs", "azure-aci", "gcp-cloudrun", "memory"} <= set(SETTINGS_MODELS)
