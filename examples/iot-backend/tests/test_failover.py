"""A replica killed outright: the survivors resume its session at once, no restart and no apply needed."""

from __future__ import annotations

import time

import pytest
from iotsim.api import RegistryClient
from stack import DockerStack, docker

pytestmark = pytest.mark.docker


def stored(stack: DockerStack, ids: list[str]) -> int:
    """Rows stored for these devices."""
    return int(stack.psql("SELECT count(*) FROM readings WHERE device_id IN ("
                          + ",".join(f"'{i}'" for i in ids) + ")") or 0)


def test_kill_9_of_a_replica_at_2000_per_second_loses_nothing_without_a_restart(
    stack: DockerStack, api: RegistryClient
) -> None:
    answers = api.register_many([f"failover-{i}" for i in range(4)], wait_active=10)
    devices = [{"id": a["id"], "password": a["mqtt"]["password"]} for a in answers]
    ids = [d["id"] for d in devices]
    adopted = stack.metric("ingestion_sessions_adopted_total", 2)
    load = stack.start_load(devices, count=20_000, rate=2000)  # 10 s
    try:
        time.sleep(4)
        docker("kill", "-s", "KILL", stack.name("ingestion", 1))
        killed = time.monotonic()
        result = stack.load_result(load, timeout=180)
        assert result["failed"] == 0 and result["acked"] == 20_000, result
        while stored(stack, ids) < result["acked"] and time.monotonic() - killed < 60:
            time.sleep(0.5)
        count, elapsed = stored(stack, ids), time.monotonic() - killed
        assert not stack.running(stack.name("ingestion", 1)), "nothing may restart the killed replica"
        assert count == result["acked"], f"{result['acked'] - count} acknowledged readings not stored after 60 s"
        print(f"all {count} acknowledged readings stored {elapsed:.1f} s after the kill")
        assert stack.metric("ingestion_sessions_adopted_total", 2) >= adopted + 1
    finally:
        if load.poll() is None:
            load.kill()
        docker("start", stack.name("ingestion", 1))
        assert stack.ingestion_connected(timeout=60)
