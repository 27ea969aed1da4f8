"""The CLI against the emulator through AWS_ENDPOINT_URL alone, and the in-process mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SPEC = """
name: {app}
services:
  web:
    image: registry.example.com/hello/web:1.0
    ports:
      - {{name: http, port: 8080, protocol: http, expose: public}}
  worker:
    image: registry.example.com/hello/worker:1.0
    env: {{WEB_URL: "${{services.web.url}}", API_KEY: "${{secrets.api_key}}"}}
    depends_on: [web]
secrets:
  api_key: {{from_env: HELLO_API_KEY}}
targets:
  aws: {{provider: aws-ecs}}
"""


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "multicloud.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_cli_honours_aws_endpoint_url(aws: Any, app_name: str, tmp_path: Path) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(SPEC.format(app=app_name))
    env = {**os.environ, **aws.environment, "HELLO_API_KEY": "cli-s3cret-value"}
    env.pop("AWS_PROFILE", None)
    applied = _cli(["apply", "-f", str(spec), "--target", "aws", "--yes"], env)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert ".elb.us-east-1.amazonaws.com:8080" in applied.stdout
    status = _cli(["status", "-f", str(spec), "--target", "aws"], env)
    assert status.returncode == 0 and "running" in status.stdout, status.stderr
    replan = _cli(["plan", "-f", str(spec), "--target", "aws", "--detailed-exitcode"], env)
    assert replan.returncode == 0, replan.stdout
    destroyed = _cli(["destroy", "-f", str(spec), "--target", "aws", "--yes"], env)
    assert destroyed.returncode == 0, destroyed.stderr
    shown = applied.stdout + applied.stderr + status.stdout + replan.stdout + destroyed.stdout
    assert "cli-s3cret-value" not in shown


IN_PROCESS = """
from multicloud.api import Deployment
from multicloud.testing.contract import SECRET_VALUE, contract_spec
from multicloud_aws.emulator import client_factory, in_process
from multicloud_aws.provider import AwsEcsProvider

with in_process():
    provider = AwsEcsProvider({"region": "us-east-1"}, client_factory=client_factory(None))
    deployment = Deployment(contract_spec("inproc", {"image": "x:1"}), "test", provider=provider,
                            environ={"CONTRACT_TOKEN": SECRET_VALUE})
    assert deployment.apply().ok
    assert not deployment.plan().has_changes
    assert [s.running for s in deployment.status()] == [1, 1]
    deployment.destroy()
    assert provider.observe("inproc") == []
print("in-process ok")
"""


def test_in_process_emulator(tmp_path: Path) -> None:
    env = {**os.environ, "MULTICLOUD_STATE_DIR": str(tmp_path)}
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", IN_PROCESS], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0 and "in-process ok" in done.stdout, done.stderr[-3000:]


def test_aws_region_is_read_as_the_aws_cli_reads_it(monkeypatch: Any) -> None:
    from multicloud_aws.clients import default_factory

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert default_factory(None, None, "http://127.0.0.1:9")("ecs").meta.region_name == "eu-west-3"
    monkeypatch.delenv("AWS_REGION")
    assert default_factory(None, None, "http://127.0.0.1:9")("ecs").meta.region_name == "eu-west-1"
    assert default_factory("us-west-2", None, "http://127.0.0.1:9")("ecs").meta.region_name == "us-west-2"
