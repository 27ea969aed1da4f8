"""Targeted plans (`plan/apply/destroy SERVICE…`) and saved plans (`plan --out FILE`, `apply FILE`), memory target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multicloud.cli.main import main

SPEC = """\
name: targetdemo
services:
  db:
    image: postgres:16
    env: {PASSWORD: "${secrets.token}"}
  api:
    image: registry.example.com/api:%(version)s
    depends_on: [db]
    ports: [{name: http, port: 8000, protocol: http}]
  web:
    image: registry.example.com/web:1
    env: {API: "${services.api.url}"}
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
  batch:
    image: registry.example.com/batch:1
secrets:
  token: {from_env: TARGET_TOKEN}
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""
SECRET = "target-secret-5e4f3a"


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TARGET_TOKEN", SECRET)
    monkeypatch.delenv("MULTICLOUD_TARGET", raising=False)
    monkeypatch.delenv("MULTICLOUD_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "multicloud.yaml", "1")
    return tmp_path / "multicloud.yaml"


def write(path: Path, version: str) -> None:
    path.write_text(SPEC % {"version": version, "state": path.parent / "state.json"})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def deployed(spec: Path) -> set[str]:
    path = spec.parent / "state.json"
    state = json.loads(path.read_text() or "{}") if path.exists() else {}
    return {key.partition("#")[0] for key in state.get("targetdemo", {})}


def test_targeted_apply_takes_in_what_the_service_needs(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "web")
    assert code == 0
    assert "Limited to web; also included: api (needed by web), db (needed by api)." in out
    assert "service/batch" not in out and "service/db will be created" in out
    code, out, _ = run(capsys, "apply", "web", "--yes")
    assert code == 0 and "Apply complete" in out
    assert deployed(spec) == {"network/targetdemo", "service/web", "service/api", "service/db"}
    # a targeted plan of another service leaves what it does not name alone (nothing is deleted)
    code, out, _ = run(capsys, "plan", "batch", "--detailed-exitcode")
    assert code == 2 and "Limited to batch." in out and "1 to add" in out and "to destroy" in out
    assert "0 to destroy" in out


def test_targeted_destroy_takes_in_what_needs_the_service(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "apply", "--yes")[0] == 0
    code, out, _ = run(capsys, "destroy", "api", "--yes")
    assert code == 0
    assert "Limited to api; also included: web (it needs api)." in out
    assert deployed(spec) == {"network/targetdemo", "service/db", "service/batch"}


def test_unknown_service_is_named(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "nope")
    assert code == 2 and "no service 'nope'" in err and "db, api, web, batch" in err


def test_out_is_never_taken_as_output(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--out", "p.bin")
    assert code == 0 and not err and (spec.parent / "p.bin").exists()
    with pytest.raises(SystemExit):
        main(["plan", "--outp", "x"])  # no abbreviation is accepted either


def test_saved_plan_applies_exactly_and_holds_no_secret(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = spec.parent / "api.plan"
    code, out, _ = run(capsys, "plan", "api", "--out", str(plan_file))
    assert code == 0 and f"Saved the plan to {plan_file}" in out
    text = plan_file.read_text()
    assert SECRET not in text and plan_file.stat().st_mode & 0o077 == 0
    assert json.loads(text)["services"] == ["api"]
    code, out, _ = run(capsys, "apply", str(plan_file))  # reviewed when saved: no --yes needed
    assert code == 0 and "Apply complete: 3 changed" in out
    assert deployed(spec) == {"network/targetdemo", "service/api", "service/db"}


def test_saved_plan_refused_when_what_exists_changed(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = spec.parent / "all.plan"
    assert run(capsys, "plan", "--out", str(plan_file))[0] == 0
    assert run(capsys, "apply", "batch", "--yes")[0] == 0  # someone applies meanwhile
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 2 and f"what exists on target 'mem' changed since {plan_file} was saved" in err
    assert "nothing was applied" in err
    assert deployed(spec) == {"network/targetdemo", "service/batch"}


def test_saved_plan_refused_when_the_spec_or_a_secret_changed(
    spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_file = spec.parent / "all.plan"
    assert run(capsys, "plan", "--out", str(plan_file))[0] == 0
    monkeypatch.setenv("TARGET_TOKEN", "another-value")
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 2 and "secret(s) token changed since" in err and "another-value" not in err
    monkeypatch.setenv("TARGET_TOKEN", SECRET)
    write(spec, "2")
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 2 and "the spec no longer gives the plan saved in" in err
    assert deployed(spec) == set()


def test_a_file_that_is_not_a_plan_is_refused(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = spec.parent / "bogus.plan"
    bogus.write_text("{not json")
    code, _, err = run(capsys, "apply", str(bogus))
    assert code == 2 and f"{bogus}:1:2: not a saved plan" in err
    bogus.write_text('{"format": "multicloud-plan/1", "app": "targetdemo"}')
    code, _, err = run(capsys, "apply", str(bogus))
    assert code == 2 and "not a saved plan (field 'target' is missing)" in err and "Traceback" not in err


def test_a_saved_plan_generates_at_apply_what_no_store_holds_yet(
    spec: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    """`plan --out` stores no generated secret (its diff says each is known after apply); `apply FILE` makes
    them then; a secret generated meanwhile, or changed since, refuses a saved plan."""
    spec.write_text(spec.read_text().replace("token: {from_env: TARGET_TOKEN}", "token: {generate: true}"))
    kept = _state_dir / "secrets" / "memory" / "targetdemo" / "mem" / "token"
    plan_file, other = spec.parent / "first.plan", spec.parent / "other.plan"
    code, out, _ = run(capsys, "plan", "--out", str(plan_file))
    assert code == 0 and "secret(s) token will be generated at apply (known after apply)" in out
    assert run(capsys, "plan", "--out", str(other))[0] == 0
    assert not kept.exists(), "a plan stores nothing"
    assert json.loads(plan_file.read_text())["secrets"] == {"token": "(known after apply)"}
    code, out, _ = run(capsys, "apply", str(plan_file))
    assert code == 0 and "Apply complete" in out and kept.exists()
    assert kept.read_text() not in plan_file.read_text() + out
    code, _, err = run(capsys, "apply", str(other))  # made before the apply above generated the token
    assert code == 2 and "secret(s) token were generated since" in err
    write(spec, "2")
    spec.write_text(spec.read_text().replace("token: {from_env: TARGET_TOKEN}", "token: {generate: true}"))
    assert run(capsys, "plan", "--out", str(plan_file))[0] == 0
    assert json.loads(plan_file.read_text())["secrets"]["token"] != "(known after apply)"
    kept.write_text("changed-by-hand")
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 2 and "secret(s) token changed since" in err and "changed-by-hand" not in err


def test_a_targeted_plan_lists_and_keeps_only_the_secrets_its_services_need(
    spec: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    text = spec.read_text().replace("token: {from_env: TARGET_TOKEN}", "token: {generate: true}\n  other: {generate: "
                                    "true}\n  tls: {generate: {type: tls, names: [web.example.com]}}")
    text = text.replace('env: {API: "${services.api.url}"}', 'env: {API: "${services.api.url}", CERT: '
                        '"${secrets.tls_cert.file}"}')
    spec.write_text(text.replace("batch:1\n", 'batch:1\n    env: {OTHER: "${secrets.other}"}\n'))
    store, saved = _state_dir / "secrets" / "memory" / "targetdemo" / "mem", spec.parent / "api.plan"
    code, out, _ = run(capsys, "plan", "api", "--out", str(saved))  # api needs db, which reads the token
    assert code == 0 and "secret(s) token will be generated at apply (known after apply)" in out, out
    assert json.loads(saved.read_text())["secrets"] == {"token": "(known after apply)"}
    assert run(capsys, "apply", str(saved))[0] == 0
    assert sorted(p.name for p in store.iterdir()) == ["token"]  # what batch and web use is made when they are
    code, out, _ = run(capsys, "plan", "web", "--out", str(saved))
    assert code == 0 and "secret(s) tls_ca, tls_ca_key, tls_cert, tls_key will be generated" in out, out
    assert sorted(json.loads(saved.read_text())["secrets"]) == ["tls_ca", "tls_ca_key", "tls_cert", "tls_key", "token"]
