"""No-op plans and applies from the compiled target on the real engine: the full path's answer,
without pydantic, the spec models or the SDK; a changed input or a change of what exists takes the
full path again; no secret value reaches the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import APP_IMAGE, containers_by_service

from multicloud.cli.main import main
from multicloud.compiled import cache_dir

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]

SECRET = "quick-secret-4d1c"
PROBE = """
import sys
from multicloud.cli.main import main
code = main(sys.argv[1:])
print("loaded:", sorted(m for m in ("pydantic", "yaml", "docker", "multicloud.spec.models") if m in sys.modules))
sys.exit(code)
"""


def test_a_no_op_is_answered_from_the_compiled_target_until_something_changes(
    engine: Any, app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "name": app,
        "services": {
            "web": {
                "image": APP_IMAGE,
                "env": {"SERVICE_NAME": "web", "MODE": "${env.QUICK_MODE:-a}"},
                "secrets": ["token"],
                "healthcheck": {"tcp": 8080, "interval": "0.5s"},
            }
        },
        "secrets": {"token": {"from_env": "QUICK_TOKEN"}},
        "targets": {"local": {"provider": "docker"}},
    }
    path = tmp_path / "multicloud.yaml"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("QUICK_TOKEN", SECRET)
    plan = ["plan", "-f", str(path), "--target", "local", "--detailed-exitcode"]
    assert main(["apply", "-f", str(path), "--target", "local", "--yes"]) == 0

    quick = subprocess.run([sys.executable, "-c", PROBE, *plan, "-o", "json"], capture_output=True, text=True,
                           check=False, env=os.environ.copy(), cwd=os.getcwd(), timeout=60)
    assert quick.returncode == 0, quick.stderr
    answer, _, loaded = quick.stdout.rpartition("loaded:")
    assert loaded.strip() == "[]", quick.stdout  # nothing heavy: neither pydantic, YAML, the models nor the SDK
    monkeypatch.setenv("MULTICLOUD_NO_CACHE", "1")
    capsys.readouterr()
    assert main([*plan, "-o", "json"]) == 0
    assert json.loads(answer) == json.loads(capsys.readouterr().out)  # what the full path says
    monkeypatch.delenv("MULTICLOUD_NO_CACHE")
    assert main(["apply", "-f", str(path), "--target", "local", "--yes", "--progress", "json"]) == 0
    out = capsys.readouterr().out  # as the full path: the plan, then the progress display's summary
    assert "No changes." in out and json.loads(out.splitlines()[-1])["event"] == "summary"

    monkeypatch.setenv("QUICK_MODE", "b")  # an environment variable the spec reads
    assert main(plan) == 2 and "MODE" in capsys.readouterr().out
    monkeypatch.delenv("QUICK_MODE")
    monkeypatch.setenv("QUICK_TOKEN", "another")  # a secret's source
    assert main(plan) == 2 and "secrets.token" in capsys.readouterr().out
    monkeypatch.setenv("QUICK_TOKEN", SECRET)
    assert main(plan) == 0
    for entry in cache_dir().iterdir():
        assert SECRET.encode() not in entry.read_bytes()

    (web,) = containers_by_service(engine, app)["web"]
    engine.kill(web["Id"])  # what exists changed: the plan says so (the full path's answer)
    deadline = time.monotonic() + 10
    while engine.inspect_container(web["Id"])["State"]["Status"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.1)
    capsys.readouterr()
    assert main(plan) == 2 and "exited (137)" in capsys.readouterr().out


def test_a_no_op_right_after_an_apply_is_answered_before_the_engine_checks_health(
    engine: Any, app: str, tmp_path: Path
) -> None:
    check = {"tcp": 8080, "interval": "10m"}  # the engine's first check: ten minutes after the start
    data = {
        "name": app,
        "services": {"web": {"image": APP_IMAGE, "env": {"SERVICE_NAME": "web"}, "healthcheck": check}},
        "targets": {"local": {"provider": "docker"}},
    }
    path = tmp_path / "multicloud.yaml"
    path.write_text(json.dumps(data))
    assert main(["apply", "-f", str(path), "--target", "local", "--yes"]) == 0
    again = subprocess.run([sys.executable, "-c", PROBE, "apply", "-f", str(path), "--target", "local", "--yes"],
                           capture_output=True, text=True, check=False, env=os.environ.copy(), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "No changes." in again.stdout and again.stdout.rstrip().endswith("loaded: []")  # the light path
    (web,) = containers_by_service(engine, app)["web"]
    assert "(health: starting)" in web["Status"]  # its check ran by exec; the engine has not run it


def test_a_generated_certificate_is_answered_from_the_compiled_target_until_it_is_due(
    engine: Any, app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography import x509

    from multicloud.certificates import RENEW_DAYS
    from multicloud.cli import quick
    from multicloud.generated import LocalSecretStore

    data = {
        "name": app,
        "services": {"web": {"image": APP_IMAGE, "healthcheck": {"tcp": 8080, "interval": "0.5s"},
                             "env": {"SERVICE_NAME": "web", "CERT_FILE": "${secrets.tls_cert.file}"}}},
        "secrets": {"tls": {"generate": {"type": "tls", "names": ["web.example.com"]}}},
        "targets": {"local": {"provider": "docker"}},
    }
    path = tmp_path / "multicloud.yaml"
    path.write_text(json.dumps(data))
    plan = ["plan", "-f", str(path), "--target", "local", "--detailed-exitcode"]
    assert main(["apply", "-f", str(path), "--target", "local", "--yes"]) == 0
    # the apply recorded its compiled form as it holds once the pair it generated is kept: answered from it at once
    probe = PROBE.replace('"multicloud.spec.models"', '"multicloud.spec.models", "cryptography"')
    answered = subprocess.run([sys.executable, "-c", probe, *plan], capture_output=True, text=True, check=False,
                              env=os.environ.copy(), cwd=os.getcwd(), timeout=60)
    assert answered.returncode == 0 and answered.stdout.rpartition("loaded:")[2].strip() == "[]", answered
    cert = LocalSecretStore("docker", app, "local").stored_secrets(app, ["tls_cert"])["tls_cert"]
    due = x509.load_pem_x509_certificate(cert.encode()).not_valid_after_utc.timestamp() - RENEW_DAYS * 86400
    compared: list[object] = []
    real = quick._plan
    monkeypatch.setattr(quick, "_plan", lambda compiled: compared.append(compiled) or real(compiled))
    assert main(plan) == 0 and len(compared) == 1  # answered from the compiled target
    assert compared[0].valid_until == pytest.approx(due, abs=1)  # type: ignore[attr-defined]
    monkeypatch.setattr(quick.time, "time", lambda: due + 1)  # the certificate is due: the full path decides
    assert main(plan) == 0 and len(compared) == 1
