"""A generated secret on the real engine: the container reads the value kept (0600) beside the
engine's labels, a later plan from a fresh process changes nothing, and no output carries it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import APP_IMAGE, deployment, owned

from multicloud.render import plan_json, plan_text

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def _spec(app: str) -> dict[str, Any]:
    return {
        "name": app,
        "services": {
            "store": {
                "image": APP_IMAGE,
                "ports": [{"name": "http", "port": 8080, "protocol": "http"}],
                "env": {"SERVICE_NAME": "store", "TOKEN_FILE": "${secrets.token.file}"},
                "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
            },
        },
        "secrets": {"token": {"generate": True}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 2}},
    }


def _cat(api: Any, container: str, path: str) -> str:
    run = api.exec_create(container, ["cat", path])
    return bytes(api.exec_start(run["Id"])).decode()


def test_generated_secret_reaches_the_container_and_stays(engine: Any, app: str, _state_dir: Path) -> None:
    deploy = deployment(_spec(app))
    planned = deploy.plan()
    result = deploy.apply(planned)
    assert result.ok
    kept = _state_dir / "secrets" / "docker" / app / "local" / "token"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    value = kept.read_text()
    (box,) = owned(engine, app)["containers"]
    assert _cat(engine, box["Id"], "/run/secrets/token") == value
    inspected = engine.inspect_container(box["Id"])
    assert value not in json.dumps(inspected["Config"])
    again = deployment(_spec(app))  # a later run: the kept value, so nothing to change
    replanned = again.plan()
    assert not replanned.has_changes
    shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), repr(again.provider.observe(app))]
    assert not any(value in text for text in shown)
    assert again.apply(replanned).changed == 0
    assert kept.read_text() == value
