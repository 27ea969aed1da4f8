"""`multicloud emulate NAME` prints exactly the environment its provider reads: the printed lines,
alone in a clean environment, are enough to apply a spec that names no endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from multicloud.testing.emulate import emulate

TARGETS = {
    "aws": "{provider: aws-ecs}",
    "azure": "{provider: azure-aci, subscription_id: 00000000-0000-0000-0000-000000000000, "
    "resource_group: emulated, location: westeurope}",
    "gcp": "{provider: gcp-cloudrun, project: demo-project, region: europe-west1}",
}
SPEC = """\
name: {app}
services:
  web:
    image: registry.example.com/hello/web:1.0
    ports:
      - {{name: http, port: 8080, protocol: http, expose: public}}
targets:
  cloud: {target}
"""


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The multicloud CLI in a child process with exactly `env`."""
    return subprocess.run(
        [sys.executable, "-m", "multicloud.cli.main", *args], capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )


@pytest.mark.parametrize("cloud", sorted(TARGETS))
def test_printed_environment_alone_reaches_the_emulator(cloud: str, tmp_path: Path) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(SPEC.format(app=f"envtest-{uuid.uuid4().hex[:6]}", target=TARGETS[cloud]))
    assert "endpoint" not in spec.read_text()
    with emulate(cloud, "--no-run") as emulated:  # the API only: its image exists nowhere
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **emulated.exports}
        run = ["-f", str(spec), "--target", "cloud"]
        applied = _cli(["apply", *run, "--yes"], env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        replanned = _cli(["plan", *run, "--detailed-exitcode"], env)
        assert replanned.returncode == 0, replanned.stdout + replanned.stderr
        destroyed = _cli(["destroy", *run, "--yes"], env)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr

