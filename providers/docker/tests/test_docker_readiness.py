"""Readiness as soon as the service is ready: engine 20.10 runs a container's first health check
one interval after the start, so the provider runs the check itself (exec) while it waits. A check
that passes ends the wait before the engine's first check is even due; one that fails never does."""

from __future__ import annotations

from typing import Any

import pytest
from docker_helpers import APP_IMAGE, containers_by_service, deployment

from multicloud.errors import ApplyFailedError, HealthTimeoutError

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def spec(app: str, probe_port: int) -> dict[str, Any]:
    """One web service whose tcp check runs every 10 minutes (the engine's first at 10 minutes)."""
    check = {"tcp": probe_port, "interval": "10m", "timeout": "3s"}
    return {
        "name": app,
        "services": {"web": {"image": APP_IMAGE, "env": {"SERVICE_NAME": "web"}, "healthcheck": check}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }


def test_a_passing_check_ends_the_wait_before_the_engine_runs_it(engine: Any, app: str) -> None:
    ready = deployment(spec(app, 8080))
    ready.health_timeout = 60  # far less than the interval: only the provider's own run can pass it
    assert ready.apply().ok
    (web,) = containers_by_service(engine, app)["web"]
    assert engine.inspect_container(web["Id"])["State"]["Health"]["Status"] == "starting"  # not the engine's verdict


def test_a_failing_check_never_ends_it(engine: Any, app: str) -> None:
    silent = deployment(spec(app, 9))  # nothing listens on port 9
    silent.health_timeout = 4
    with pytest.raises(ApplyFailedError) as caught:
        silent.apply()
    assert isinstance(caught.value.result.failed[0].error, HealthTimeoutError)  # type: ignore[union-attr]
