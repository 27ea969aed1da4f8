"""Variables: `vars:` defaults, MULTICLOUD_VAR_name, --var-file, --var (in that order of precedence),
`${env.NAME}` from the environment or the `.env` beside the spec; unknown or unset ones are errors at
their line; the CLI and the Python API take them alike."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from multicloud.api import Deployment
from multicloud.cli.main import main
from multicloud.errors import SpecError, UserError
from multicloud.spec import load, loads, target_spec
from multicloud.spec.dotenv import DotenvError, parse_dotenv
from multicloud.spec.variables import Variables, parse_assignment
from tests.helpers import where

SPEC = """\
name: vardemo
vars:
  tag: "1.0"
  region: eu-west-1
  replicas: 2
  level:
  state: "%(state)s"
services:
  web:
    image: "registry.example.com/web:${vars.tag}"
    replicas: ${vars.replicas}
    env:
      LEVEL: "${vars.level}"
      REGION: "${vars.region}"
      HOME_URL: "${env.VARDEMO_URL:-http://default.example}"
targets:
  mem: {provider: memory, state_file: "${vars.state}"}
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "multicloud.yaml"
    path.write_text(SPEC % {"state": tmp_path / "state.json"})
    return path


def _load(path: Path, *, values: dict[str, str] | None = None, files: tuple[Path, ...] = (),
          environ: dict[str, str] | None = None):
    return load(path, Variables(values=values or {}, files=files, environ=environ or {}))


def _web(spec):
    return target_spec(spec, "mem").services["web"]


def test_defaults_fill_every_kind_of_field(spec_file: Path) -> None:
    spec = _load(spec_file, values={"level": "info"})
    web = _web(spec)
    assert web.image == "registry.example.com/web:1.0"
    assert web.replicas == 2
    assert web.env == {"LEVEL": "info", "REGION": "eu-west-1", "HOME_URL": "http://default.example"}
    assert spec.targets["mem"].settings["state_file"] == str(spec_file.parent / "state.json")


def test_precedence_default_env_files_then_var(spec_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("tag: from-file-a\nregion: file-a\nreplicas: 4\n")
    second.write_text("tag: from-file-b\n")
    environ = {"MULTICLOUD_VAR_tag": "from-env", "MULTICLOUD_VAR_region": "env-region", "MULTICLOUD_VAR_level": "e"}
    assert _web(_load(spec_file, environ=environ)).image.endswith(":from-env")
    spec = _load(spec_file, files=(first, second), environ=environ)
    web = _web(spec)
    assert web.image.endswith(":from-file-b") and web.env["REGION"] == "file-a" and web.replicas == 4
    assert web.env["LEVEL"] == "e"  # only the environment sets it
    spec = _load(spec_file, values={"tag": "from-var"}, files=(first, second), environ=environ)
    assert _web(spec).image.endswith(":from-var")


def test_unknown_and_unset_variables_are_errors_at_their_line(spec_file: Path) -> None:
    text = spec_file.read_text().replace('REGION: "${vars.region}"', 'REGION: "${vars.regoin}"')
    spec_file.write_text(text)
    with pytest.raises(SpecError) as caught:
        _load(spec_file)
    found = {p.field: p for p in caught.value.problems}
    assert set(found) == {"services.web.env.LEVEL", "services.web.env.REGION"}
    assert (found["services.web.env.REGION"].line, found["services.web.env.REGION"].file) == (
        where(text, "REGION")[0], str(spec_file))
    assert "unknown variable" in found["services.web.env.REGION"].message
    assert "regoin" in found["services.web.env.REGION"].message
    assert "not set and has no default" in found["services.web.env.LEVEL"].message
    assert "--var level=" in found["services.web.env.LEVEL"].message


def test_var_and_var_file_must_name_declared_variables(spec_file: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="declares no such variable"):
        _load(spec_file, values={"level": "x", "nope": "1"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("level: x\n\nnope: 1\nregion: [a, b]\n")
    with pytest.raises(SpecError) as caught:
        _load(spec_file, files=(bad,))
    found = [(p.file, p.line, p.field) for p in caught.value.problems]
    assert found == [(str(bad), 3, "nope"), (str(bad), 4, "region")]
    with pytest.raises(SpecError, match="var file not found"):
        _load(spec_file, files=(tmp_path / "missing.yaml",))
    with pytest.raises(UserError, match="expected name=value"):
        parse_assignment("no-equals")
    assert parse_assignment("a=b=c") == ("a", "b=c")


def test_a_value_is_never_read_as_a_placeholder() -> None:
    text = textwrap.dedent("""\
        name: lit
        vars: {v: "${secrets.token} and $$HOME", n: "${vars.v}"}
        services:
          web:
            image: "web:${vars.n}"
            command: [run, "${vars.v}"]
            env: {A: "${vars.v}", B: "$${vars.v}"}
        secrets:
          token: {from_env: TOKEN}
        targets:
          mem: {provider: memory}
        """)
    spec = loads(text, variables=Variables(environ={}))
    web = spec.services["web"]
    assert web.image == "web:${vars.v}"  # a default is text, not a placeholder
    assert web.env == {"A": "$${secrets.token} and $$$$HOME", "B": "$${vars.v}"}
    assert web.command == ["run", "$${secrets.token} and $$$$HOME"]
    assert target_spec(spec, "mem").used_secrets() == []


def test_env_placeholders_read_the_environment_then_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(textwrap.dedent("""\
        # compose-style
        export FROM_DOTENV=dotenv-value  # a comment
        OVERRIDDEN=from-dotenv
        EMPTY=
        """))
    spec_path = tmp_path / "multicloud.yaml"
    spec_path.write_text(textwrap.dedent("""\
        name: envdemo
        services:
          web:
            image: web
            env:
              A: "${env.FROM_DOTENV}"
              B: "${env.OVERRIDDEN}"
              C: "${env.EMPTY:-fallback}"
              D: "${env.EMPTY-kept-empty}"
              E: "${env.UNSET-unset-default}"
        targets:
          mem: {provider: memory}
        """))
    spec = load(spec_path, Variables(environ={"OVERRIDDEN": "from-process"}))
    assert spec.services["web"].env == {
        "A": "dotenv-value", "B": "from-process", "C": "fallback", "D": "", "E": "unset-default"}
    spec_path.write_text(spec_path.read_text().replace("${env.UNSET-unset-default}", "${env.UNSET}"))
    with pytest.raises(SpecError) as caught:
        load(spec_path, Variables(environ={}))
    (found,) = caught.value.problems
    assert (found.line, found.field) == (10, "services.web.env.E") and "UNSET is not set" in found.message


def test_a_bad_dotenv_line_is_an_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOOD=1\n\nthis is not an assignment\n")
    spec_path = tmp_path / "multicloud.yaml"
    spec_path.write_text("name: e\nservices:\n  web: {image: 'web:${env.GOOD}'}\n")
    with pytest.raises(SpecError) as caught:
        load(spec_path, Variables(environ={}))
    assert [(p.file, p.line) for p in caught.value.problems] == [(str(tmp_path / ".env"), 3)]


def test_dotenv_reads_like_compose() -> None:
    text = textwrap.dedent("""\
        PLAIN=  spaced value   # comment
        HASH=a#b
        SINGLE='literal $PLAIN \\n'
        DOUBLE="line1\\nline2 \\"q\\" ${PLAIN} \\$PLAIN"
        MULTI="first
        second"
        EXPANDED=${HOST_ONLY}-$PLAIN-${MISSING:-dflt}-${MISSING}
        dotted.key-name=ok
        """)
    values = parse_dotenv(text, {"HOST_ONLY": "h"})
    assert values == {
        "PLAIN": "spaced value",
        "HASH": "a#b",
        "SINGLE": "literal $PLAIN \\n",
        "DOUBLE": 'line1\nline2 "q" spaced value $PLAIN',
        "MULTI": "first\nsecond",
        "EXPANDED": "h-spaced value-dflt-",
        "dotted.key-name": "ok",
    }
    for bad, line in (("A=1\nB='open\n", 2), ("=1\n", 1), ('A="x" trailing\n', 1)):
        with pytest.raises(DotenvError) as caught:
            parse_dotenv(bad, {})
        assert caught.value.line == line


def test_malformed_vars_and_env_placeholders() -> None:
    text = textwrap.dedent("""\
        name: bad
        vars: {ok: 1, "9bad": 2, nested: {a: 1}}
        services:
          web: {image: "web:${vars.ok.x}", env: {A: "${env.}"}}
        """)
    with pytest.raises(SpecError) as caught:
        loads(text, variables=Variables(environ={}))
    fields = sorted(p.field for p in caught.value.problems)
    assert fields == ["services.web.env.A", "services.web.image", "vars.9bad", "vars.nested"]


def test_cli_takes_var_and_var_file(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTICLOUD_VAR_level", "debug")
    monkeypatch.setenv("MULTICLOUD_VAR_tag", "env-tag")
    values = tmp_path / "prod.yaml"
    values.write_text("replicas: 3\ntag: file-tag\n")
    f = str(spec_file)
    assert main(["plan", "-f", f, "-v", "--var-file", str(values), "--var", "tag=cli-tag"]) == 0
    out = capsys.readouterr().out
    assert '+ image: "registry.example.com/web:cli-tag"' in out and "+ replicas: 3" in out
    assert '"LEVEL": "debug"' in out
    monkeypatch.delenv("MULTICLOUD_VAR_level")
    assert main(["validate", "-f", f]) == 2
    err = capsys.readouterr().err
    assert f"{f}:{where(SPEC, 'LEVEL')[0]}:" in err and "${vars.level}" in err and "Traceback" not in err
    assert main(["validate", "-f", f, "--var", "levle=x"]) == 2
    assert "declares no such variable" in capsys.readouterr().err


def test_python_api_takes_vars(spec_file: Path) -> None:
    deployment = Deployment.from_file(
        spec_file, "mem", vars={"level": "warn", "tag": "api"}, environ={"VARDEMO_URL": "http://from-environ"})
    web = deployment.target_spec.services["web"]
    assert web.image.endswith(":api") and web.env["LEVEL"] == "warn" and web.env["HOME_URL"] == "http://from-environ"
    planned = deployment.plan()
    assert any(c.key == "service/web" for c in planned.changes)
