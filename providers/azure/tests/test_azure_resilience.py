"""Faults and crashes: throttling and server errors are retried (Retry-After honoured) and
an apply killed with SIGKILL mid-operation is finished by the next one."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from multicloud_azure.emulator import EmulatorHandle, Fault
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.contract import Event
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict

CLI = Path(sys.executable).parent / "multicloud"


def make_deployment(
    data: dict[str, Any],
    provider: AzureAciProvider,
    secrets: dict[str, str],
    events: list[Event] | None = None,
    attempts: int = 5,
) -> Deployment:
    return Deployment(
        spec_from_dict(data),
        "azure",
        provider=provider,
        environ=secrets,
        retry=RetryPolicy(attempts=attempts, base_delay=0.2, max_delay=2.0),
        health_timeout=30,
        on_event=events.append if events is not None else None,
    )


def test_throttling_is_retried_after_the_time_arm_asks(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    arm.backend.inject(Fault(status=429, times=2, method="PUT", path_contains="containerGroups", retry_after=1))
    started = len(arm.backend.requests)
    deployment = make_deployment(iot, make_provider(), iot_secrets)
    result = deployment.apply()
    assert result.ok
    puts = [r for r in arm.backend.requests[started:] if r.method == "PUT" and "containerGroups" in r.path]
    assert [r.status for r in puts] == [429, 429, 201]
    gaps = [b.at - a.at for a, b in itertools.pairwise(puts)]
    assert all(gap >= 0.95 for gap in gaps), f"Retry-After: 1 not honoured: {gaps}"
    assert not deployment.plan().has_changes


def test_server_errors_beyond_the_sdk_retries_are_retried_by_the_engine(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    arm.backend.inject(Fault(status=500, times=3, method="PUT"))
    arm.backend.inject(Fault(status=503, times=2, method="GET", path_contains="/containerGroups/iot-backend"))
    events: list[Event] = []
    deployment = make_deployment(iot, make_provider(http_retries=1), iot_secrets, events)
    result = deployment.apply()
    assert result.ok
    assert any(e.kind == "retry" and "500 InternalServerError" in e.message for e in events), [
        e.message for e in events if e.kind == "retry"
    ]
    assert max(s.attempts for s in result.steps) >= 2
    assert not deployment.plan().has_changes


def test_unreachable_arm_says_how_to_fix_it(make_provider: Callable[..., AzureAciProvider]) -> None:
    from multicloud.errors import BackendUnavailableError

    provider = make_provider(arm_endpoint="https://127.0.0.1:9", http_retries=0)
    with pytest.raises(BackendUnavailableError) as caught:
        provider.observe("iot-backend")
    assert "arm_endpoint" in str(caught.value)


def run_cli_until(arm: EmulatorHandle, spec: Path, secrets: dict[str, str], method: str) -> int:
    """Start `multicloud apply` on the spec, SIGKILL it once the emulator saw a `method`
    request on a container group (the database's come first), and return how many it had seen."""
    before = arm.backend.count(method, "containerGroups")
    env = {**os.environ, **arm.running.environment, **secrets}
    process = subprocess.Popen(
        [str(CLI), "apply", "-f", str(spec), "--target", "azure", "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while arm.backend.count(method, "containerGroups") == before:
            if process.poll() is not None:
                pytest.fail(
                    f"apply ended before its {method}: {process.stderr.read().decode() if process.stderr else ''}"
                )
            assert time.monotonic() < deadline, f"no {method} within 120 s"
            time.sleep(0.02)
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
    return arm.backend.count(method, "containerGroups") - before


def wait_healthy(deployment: Deployment, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = deployment.status()
        if status and all(s.healthy == 1 for s in status):
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def kill_mid_apply_then_converge(
    arm: EmulatorHandle,
    provider: AzureAciProvider,
    iot: dict[str, Any],
    secrets: dict[str, str],
    tmp_path: Path,
    method: str,
) -> Deployment:
    """SIGKILL a CLI apply of the spec (operations slowed to 2 s) right after its first `method`
    request, then apply in process at normal speed; assert it converges and return it."""
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(yaml.safe_dump(iot), encoding="utf-8")
    arm.backend.op_seconds = 2.0
    assert run_cli_until(arm, spec, secrets, method) == 1
    arm.backend.op_seconds = 0.02
    deployment = make_deployment(iot, provider, secrets, attempts=12)
    deployment.apply()
    wait_healthy(deployment)
    assert not deployment.plan().has_changes
    return deployment


@pytest.mark.slow
def test_kill_during_create_then_apply_converges(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
    tmp_path: Path,
) -> None:
    provider = make_provider()
    kill_mid_apply_then_converge(arm, provider, iot, iot_secrets, tmp_path, "PUT")
    assert [g["name"] for g in provider.client.list_groups()] == ["iot-backend"]


@pytest.mark.slow
def test_kill_during_replace_then_apply_converges(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
    tmp_path: Path,
) -> None:
    provider = make_provider()
    make_deployment(iot, provider, iot_secrets).apply()
    iot["targets"]["azure"]["overrides"]["broker"]["resources"] = {"cpu": 1.0, "memory": "1Gi"}
    kill_mid_apply_then_converge(arm, provider, iot, iot_secrets, tmp_path, "DELETE")
    group = provider.client.get_group("iot-backend")
    assert group is not None
    broker = next(c for c in group["properties"]["containers"] if c["name"] == "broker")
    assert broker["properties"]["resources"]["requests"]["cpu"] == 1.0


def test_failed_provisioning_is_reported_then_redeployed(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    from multicloud.errors import ApplyFailedError
    from multicloud.planner import Action

    arm.backend.fail_next_operations("InaccessibleImage: the image cannot be pulled", times=20)
    deployment = make_deployment(iot, make_provider(), iot_secrets, attempts=2)
    with pytest.raises(ApplyFailedError) as caught:
        deployment.apply()
    assert "InaccessibleImage" in str(caught.value)
    arm.backend.failures.clear()
    planned = deployment.plan()
    acted = [(c.key, c.action, c.reason) for c in planned.changes if c.action is not Action.NOOP]
    reason = "group iot-backend failed to provision: InaccessibleImage: the image cannot be pulled"
    assert acted == [("group/iot-backend", Action.REPLACE, reason)]
    assert deployment.apply(planned).ok
    wait_healthy(deployment)
    assert not deployment.plan().has_changes


def test_health_timeout_is_honoured_against_a_slow_emulator(
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    from multicloud.errors import ApplyFailedError

    deployment = make_deployment(iot, make_provider(), iot_secrets)
    deployment.health_timeout = 2
    arm.backend.op_seconds = 60  # the group stays Creating for a minute
    started = time.monotonic()
    with pytest.raises(ApplyFailedError, match="not healthy after 2s"):
        deployment.apply()
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 5, f"--health-timeout 2 took {elapsed:.1f}s"
