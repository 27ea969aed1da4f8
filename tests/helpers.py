"""Helpers shared by the core tests (plain functions, imported explicitly)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from multicloud.errors import Problem, SpecError
from multicloud.spec import Spec, loads

SKETCH = textwrap.dedent(
    """\
    name: iot-backend
    services:
      broker:
        build: ./services/broker          # or image: registry/name:tag
        ports:
          - {name: mqtt, port: 1883, protocol: mqtt, expose: public}
          - {name: mqtt-ws, port: 8080, protocol: mqtt-ws, expose: public}
        resources: {cpu: 0.5, memory: 512Mi}
        healthcheck: {tcp: 1883}
      ingestion:
        build: ./services/ingestion
        replicas: 2
        env: {MQTT_HOST: "${services.broker.host}", DATABASE_URL: "${secrets.database_url}"}
        depends_on: [broker, db]
      db:
        image: postgres:16
        ports: [{name: pg, port: 5432}]
        volumes: ["pgdata:/var/lib/postgresql/data"]
    secrets:
      database_url: {from_env: DATABASE_URL}
    volumes:
      pgdata:
    targets:
      local: {provider: docker}
      aws:   {provider: aws-ecs, region: eu-west-1}
      azure: {provider: azure-aci, subscription_id: "00000000-0000-0000-0000-000000000000", resource_group: iot,
              location: westeurope}
      gcp:   {provider: gcp-cloudrun, project: my-proj, region: europe-west1}
    """
)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the CLI in-process: its exit code and everything it printed (stdout then stderr)."""
    from multicloud.cli.main import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def write_spec(tmp_path: Path, text: str) -> Path:
    """Write a spec (its `%(state)s` the path of a memory target's state file) to tmp_path/multicloud.yaml."""
    path = tmp_path / "multicloud.yaml"
    path.write_text(text % {"state": tmp_path / "state.json"})
    return path


def spec(text: str) -> Spec:
    """Load dedented spec text."""
    return loads(textwrap.dedent(text), file="multicloud.yaml")


def problems(text: str) -> list[Problem]:
    """The problems a dedented spec text has; fail if it loads."""
    with pytest.raises(SpecError) as caught:
        loads(textwrap.dedent(text), file="multicloud.yaml")
    return caught.value.problems


def problem(text: str) -> Problem:
    """The one problem a dedented spec text has."""
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def where(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of needle in the dedented text."""
    text = textwrap.dedent(text)
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def at(found: Problem) -> tuple[int, int]:
    """A problem's (line, column)."""
    return found.line, found.column


CLOUD_SDKS = ("boto3", "botocore", "docker", "azure", "google", "grpc")


def sdks_loaded_by(*commands: list[str]) -> list[str]:
    """The cloud SDK modules one fresh interpreter has loaded after running these CLI commands (each
    must exit 0), e.g. sdks_loaded_by(["graph", "-f", path]) == [] for a command that needs none."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\nfrom multicloud.cli.main import main\n"
        f"for argv in {commands!r}:\n    assert main(argv) == 0, argv\n"
        f"print('SDKS', json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {CLOUD_SDKS!r})))\n"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root,
                         check=False)
    assert run.returncode == 0, run.stderr
    return list(json.loads(run.stdout.rsplit("SDKS ", 1)[1]))
