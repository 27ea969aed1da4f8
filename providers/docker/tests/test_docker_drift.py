"""Broken replicas are drift on the real engine: a killed replica is planned (exit 2) and
healed by apply; the restart policy restarts a crash between applies but a replica that
always crashes ends up reported, not hidden; status agrees with the containers' health."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import APP_IMAGE, SECRET, containers_by_service, deployment, free_port, three_service_spec

from multicloud.cli.main import main
from multicloud.errors import ApplyFailedError

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def spec_file(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "multicloud.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def test_a_killed_replica_is_planned_by_name_and_apply_heals_it(
    engine: Any, app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = three_service_spec(app, free_port())
    deployment(data).apply()
    victim = next(c for c in containers_by_service(engine, app)["api"] if c["Labels"]["multicloud.replica"] == "2")
    engine.kill(victim["Id"])  # docker kill: SIGKILL, exit 137; the restart policy leaves it down
    time.sleep(1)
    assert engine.inspect_container(victim["Id"])["State"]["Status"] == "exited"

    monkeypatch.setenv("TOKEN_VALUE", SECRET)
    path = spec_file(tmp_path, data)
    capsys.readouterr()
    assert main(["plan", "-f", path, "--target", "local", "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "-/+ service/api replica 2 exited (137)" in out, out
    status = {s.service: s for s in deployment(data).status()}["api"]
    assert (status.desired, status.running, status.healthy, status.state) == (2, 1, 1, "unhealthy")
    assert "replica 2 exited (137)" in status.detail

    assert main(["apply", "-f", path, "--target", "local", "--yes"]) == 0
    capsys.readouterr()
    assert main(["plan", "-f", path, "--target", "local", "--detailed-exitcode"]) == 0
    boxes = containers_by_service(engine, app)["api"]
    assert sorted(c["Labels"]["multicloud.replica"] for c in boxes) == ["1", "2"]
    assert all(c["State"] == "running" for c in boxes) and victim["Id"] not in {c["Id"] for c in boxes}
    status = {s.service: s for s in deployment(data).status()}["api"]
    assert (status.running, status.healthy, status.state) == (2, 2, "running")


def one_service(app: str, command: list[str], volume: bool = False) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": APP_IMAGE,
        "command": command,
        "ports": [{"name": "http", "port": 8080}],
        "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
    }
    data: dict[str, Any] = {
        "name": app,
        "services": {"box": service},
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }
    if volume:
        service["volumes"] = ["state:/state"]
        data["volumes"] = {"state": None}
    return data


def test_the_engine_restarts_a_crash_between_applies(engine: Any, app: str) -> None:
    once = "if [ -e /state/ran ]; then exec python3 /app/app.py; else touch /state/ran; exit 3; fi"
    data = one_service(app, ["sh", "-c", once], volume=True)
    assert deployment(data).apply().ok  # the first start crashes; the engine restarts it
    (box,) = containers_by_service(engine, app)["box"]
    assert engine.inspect_container(box["Id"])["RestartCount"] == 1
    assert not deployment(data).plan().has_changes


def test_a_replica_that_always_crashes_is_reported_not_hidden(engine: Any, app: str) -> None:
    data = one_service(app, ["sh", "-c", "sleep 0.3; exit 3"])
    with pytest.raises(ApplyFailedError, match="service/box"):
        deployment(data).apply()
    deadline = time.monotonic() + 60
    while True:  # the restart policy gives up after a few tries and leaves it exited
        (box,) = containers_by_service(engine, app)["box"]
        if box["State"] == "exited" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert box["State"] == "exited"
    assert engine.inspect_container(box["Id"])["RestartCount"] == 3
    planned = deployment(data).plan()
    (change,) = [c for c in planned.changes if c.action.value != "no-op"]
    assert (change.key, change.action.value, change.reason) == ("service/box", "replace", "replica 1 exited (3)")
    (status,) = deployment(data).status()
    assert (status.running, status.healthy, status.state) == (0, 0, "stopped")
    assert "replica 1 exited (3)" in status.detail
