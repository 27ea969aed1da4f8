"""The CLI end to end against the memory provider (state in a file, as separate runs share it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from multicloud.cli.main import main

SPEC = """\
name: clidemo
services:
  web:
    image: registry.example.com/web:1
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {TOKEN: "${secrets.token}", LEVEL: "%(level)s"}
  worker:
    image: registry.example.com/worker:1
    depends_on: [web]
    env: {WEB: "${services.web.url}"}
secrets:
  token: {from_env: CLI_TOKEN}
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""
SECRET = "cli-secret-9d8c7b"


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLI_TOKEN", SECRET)
    monkeypatch.delenv("MULTICLOUD_TARGET", raising=False)
    path = tmp_path / "multicloud.yaml"
    write_spec(path, level="info")
    return path


def write_spec(path: Path, level: str) -> None:
    state = path.parent / "state.json"
    path.write_text(SPEC % {"level": level, "state": state})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_apply_replan_destroy(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(spec_file)
    code, out, _ = run(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert code == 2 and "+ service/web will be created" in out
    code, out, _ = run(capsys, "apply", "-f", f, "--yes")
    assert code == 0 and "Apply complete: 3 changed" in out and "http://web.clidemo" in out
    code, out, _ = run(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert code == 0 and "No changes" in out
    write_spec(spec_file, level="debug")
    code, out, _ = run(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert code == 2 and '~ env.LEVEL: "info" -> "debug"' in out and "service/worker" not in out
    code, out, _ = run(capsys, "destroy", "-f", f, "--yes")
    assert code == 0 and "Destroy complete: 3 changed" in out
    code, out, _ = run(capsys, "status", "-f", f)
    assert code == 0 and "nothing deployed" in out


def test_json_outputs_hide_secrets(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(spec_file)
    code, out, _ = run(capsys, "apply", "-f", f, "--yes", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert [s["outcome"] for s in data["steps"]] == ["done", "done", "done"]
    assert SECRET not in out
    for command in ("plan", "status", "endpoints"):
        code, out, _ = run(capsys, command, "-f", f, "-o", "json")
        assert code == 0 and SECRET not in out
        json.loads(out)
    code, out, _ = run(capsys, "plan", "-f", f, "-v")
    assert SECRET not in out
    code, out, _ = run(capsys, "logs", "-f", f, "web")
    assert code == 0 and "create" in out


def test_bad_spec_exits_2_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "multicloud.yaml"
    path.write_text("name: x\nservices:\n  web:\n    imag: nginx\n")
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 2 and out == ""
    assert f"{path}:4:5: services.web.imag: unknown field 'imag'; did you mean 'image'?" in err
    assert "Traceback" not in err


def test_detailed_exitcode_reports_errors_as_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "-f", str(tmp_path / "missing.yaml"), "--detailed-exitcode")
    assert code == 1 and "file not found" in err


def test_target_must_be_named_when_ambiguous(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file.write_text(spec_file.read_text() + "  other: {provider: memory}\n")
    code, _, err = run(capsys, "plan", "-f", str(spec_file))
    assert code == 2 and "say which target with --target" in err and "mem, other" in err
    code, _, err = run(capsys, "plan", "-f", str(spec_file), "-t", "nope")
    assert code == 2 and "unknown target 'nope'" in err


def test_missing_secret_is_named(
    spec_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLI_TOKEN")
    code, _, err = run(capsys, "plan", "-f", str(spec_file))
    assert code == 2 and "environment variable CLI_TOKEN is not set" in err


def test_unknown_provider_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "multicloud.yaml"
    path.write_text("name: x\nservices: {web: {image: nginx}}\ntargets: {t: {provider: nomad}}\n")
    code, _, err = run(capsys, "plan", "-f", str(path))
    assert code == 2 and "no provider named 'nomad' is installed" in err


def test_capability_violation_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "multicloud.yaml"
    path.write_text(textwrap.dedent("""\
        name: x
        services:
          broker:
            image: mosquitto
            ports: [{name: mqtt, port: 1883, protocol: mqtt, expose: public}]
        targets: {t: {provider: memory, raw_tcp_ingress: false}}
        """))
    code, _, err = run(capsys, "validate", "-f", str(path), "-t", "t")
    assert code == 2 and "no raw TCP ingress" in err and "mqtt-ws" in err


def test_apply_without_yes_refuses_when_not_a_terminal(spec_file: Path) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "multicloud")
    command = [exe, "apply", "-f", str(spec_file)]
    done = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    state = spec_file.parent / "state.json"
    assert not state.exists() or "clidemo" not in state.read_text()


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"].startswith("multicloud spec")
    assert "services" in schema["properties"]


def test_providers_lists_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "providers", "-o", "json")
    assert code == 0 and "memory" in {p["name"] for p in json.loads(out)["providers"]}


def test_second_apply_is_refused_while_one_holds_the_lock(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from multicloud.lock import app_lock

    with app_lock("clidemo", "mem", "apply"):
        code, _, err = run(capsys, "apply", "-f", str(spec_file), "--yes")
    assert code == 1 and "another apply (pid" in err and "clidemo" in err
