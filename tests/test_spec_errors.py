"""Specs that cannot load: every kind of error named at its file:line:column and field, in plain
words, and hostile YAML refused."""

from __future__ import annotations

import pytest

from multicloud.errors import SpecError, UserError
from multicloud.spec import load, loader
from tests.helpers import at, problem, problems, where

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
