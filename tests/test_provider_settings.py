"""Provider settings are pydantic models the providers declare and the core checks: every
problem at once, at its file:line:col, with a did-you-mean; reading them imports no cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from multicloud.api import Deployment
from multicloud.cli.main import main
from multicloud.errors import SpecError
from multicloud.settings import ProviderSettings, settings_model, settings_models, target_problems
from multicloud.spec import load, loads

SDKS = ("boto3", "botocore", "azure", "google", "docker", "grpc", "moto")

BAD = """\
name: demo
services:
  web:
    image: nginx
targets:
  local:
    provider: docker
    port_ofset: 3
    build: "yes"
  aws:
    provider: aws-ecs
    regoin: eu-west-1
    log_retention_days: 2
  gcp: {provider: gcp-cloudrun, project: X}
  az: {provider: azure-aci, subscription_id: 00000000-0000-0000-0000-000000000001, resource_group: rg, location: x,
       registry: {server: a}}
  typo: {provider: dokcer}
"""


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "multicloud.yaml"
    path.write_text(BAD)
    return path


def test_every_provider_declares_a_settings_model() -> None:
    models = settings_models()
    assert {"docker", "aws-ecs", "azure-aci", "gcp-cloudrun", "memory"} <= set(models)
    assert all(issubclass(m, ProviderSettings) for m in models.values())
    assert settings_model("no-such-provider") is None


def test_validate_reports_every_settings_problem_at_its_line(
    bad_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-f", str(bad_file)]) == 2
    err = capsys.readouterr().err
    f = str(bad_file)
    for expected in (
        f"{f}:8:5: targets.local.port_ofset: unknown setting 'port_ofset' for docker; did you mean 'port_offset'?",
        f"{f}:9:5: targets.local.build: should be true or false (got string 'yes')",
        f"{f}:12:5: targets.aws.regoin: unknown setting 'regoin' for aws-ecs; did you mean 'region'?",
        f"{f}:13:5: targets.aws.log_retention_days: 2 is not a CloudWatch retention",
        f"{f}:14:33: targets.gcp.project: 'X' is not a project ID",
        f"{f}:14:3: targets.gcp.region: missing required field 'region'",
        "targets.az.registry.username: missing required field 'username'",
        f"{f}:17:10: targets.typo.provider: no provider 'dokcer' is installed; did you mean 'docker'?",
    ):
        assert expected in err, err
    assert "Traceback" not in err


def test_plan_reports_all_problems_of_its_target_at_their_lines(bad_file: Path) -> None:
    spec = load(bad_file)
    with pytest.raises(SpecError) as caught:
        Deployment(spec, "aws", environ={}).plan()
    where = [(p.line, p.field) for p in caught.value.problems]
    assert where == [(12, "targets.aws.regoin"), (13, "targets.aws.log_retention_days")]


def test_json_output_of_an_invalid_spec_is_json(bad_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(bad_file), "-o", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["error"]["kind"] == "SpecError"
    first = report["error"]["problems"][0]
    assert first == {"file": str(bad_file), "line": 8, "column": 5, "field": "targets.local.port_ofset",
                     "message": "unknown setting 'port_ofset' for docker; did you mean 'port_offset'?"}


def test_valid_settings_reach_the_provider_as_its_model() -> None:
    spec = loads("name: a\nservices: {web: {image: x}}\ntargets: {t: {provider: memory, max_replicas: 3}}\n")
    assert target_problems(spec) == []
    provider = Deployment(spec, "t").provider
    assert provider.capabilities.max_replicas == 3


def test_reading_settings_and_the_schema_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from multicloud.cli.main import main\n"
        "from multicloud.settings import settings_models\n"
        "settings_models()\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['schema'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SDKS!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
