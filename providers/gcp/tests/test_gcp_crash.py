"""`multicloud apply` killed with SIGKILL mid-apply against the emulator; the next apply converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.spec import Spec, load

CLI = [sys.executable, "-m", "multicloud.cli.main"]


def test_kill_9_mid_apply_then_apply_converges(
    cloudrun: RunningCloudRun,
    iot_spec: Spec,
    iot_env: dict[str, str],
    tmp_path: Path,
    deploy: Callable[..., Deployment],
    write_spec: Callable[[Spec, dict[str, str], Path], Path],
    provider_for: Callable[..., CloudRunProvider],
) -> None:
    cloudrun.model.faults.slow_operations(1.0)
    spec_file = write_spec(iot_spec, cloudrun.settings("rest"), tmp_path / "multicloud.yaml")
    env = {**os.environ, **iot_env, "MULTICLOUD_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [*CLI, "apply", "-f", str(spec_file), "-t", "gcp", "-y"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not cloudrun.model.services and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cloudrun.model.services, "the apply never reached Cloud Run"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    created = {m[1] for m in cloudrun.model.mutations()}
    assert 0 < len(cloudrun.model.services) < 4, f"killed mid-apply: {created}"
    assert any(s["reconciling"] for s in cloudrun.model.services.values()), "an operation was in flight"

    cloudrun.model.faults.slow_operations(0.05)
    provider = provider_for("grpc")
    deployment = deploy(load(spec_file), provider)
    result = deployment.apply()
    assert result.ok
    assert len(cloudrun.model.services) == 4
    assert not deployment.plan().has_changes
    deadline = time.monotonic() + 10  # what the killed apply started finishes on Cloud Run's side
    while {s.state for s in deployment.status()} != {"ready"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {s.service: s.state for s in deployment.status()} == dict.fromkeys(
        ("auth", "broker", "ingestion", "registry"), "ready"
    )


def test_health_timeout_is_honoured_against_a_slow_emulator(
    cloudrun: RunningCloudRun,
    iot_spec: Spec,
    deploy: Callable[..., Deployment],
    provider_for: Callable[..., CloudRunProvider],
) -> None:
    from multicloud.errors import ApplyFailedError

    cloudrun.model.faults.slow_operations(60.0)  # services stay reconciling for a minute
    deployment = deploy(iot_spec, provider_for("rest"))
    deployment.health_timeout = 2
    started = time.monotonic()
    with pytest.raises(ApplyFailedError, match="not healthy after 2s"):
        deployment.apply()
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 5, f"--health-timeout 2 took {elapsed:.1f}s"
