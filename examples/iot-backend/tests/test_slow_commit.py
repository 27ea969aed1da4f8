"""A commit that hangs holds up neither replica: the replica whose store waits on a lock takes its next batches
on its other connection; the waiting store goes through once the lock is gone."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from stack import DockerStack

pytestmark = pytest.mark.docker


def stored(stack: DockerStack, device_id: str) -> int:
    """Rows stored for a device."""
    return int(stack.psql(f"SELECT count(*) FROM readings WHERE device_id = '{device_id}'"))


def test_a_store_waiting_on_a_lock_stalls_no_replica(stack: DockerStack, api: RegistryClient) -> None:
    held, steady = new_device(api, stack.mqtt_url, "held"), new_device(api, stack.mqtt_url, "steady")
    seq = held.seq + 1  # the seq of held's next reading
    # another transaction inserts that reading first and stays open: ingestion's insert of it waits on the row
    locker = subprocess.Popen(
        ["docker", "exec", "-i", "-e", "PGPASSWORD", stack.name("db"), "psql", "-h", "127.0.0.1", "-U", "iot", "-d",
         "iot", "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PGPASSWORD": stack.secrets["db_password"]},
    )
    assert locker.stdin is not None
    try:
        locker.stdin.write(f"BEGIN; INSERT INTO readings (device_id, seq, ts, temperature, received_at) VALUES "
                           f"('{held.device_id}', {seq}, now(), 20, now());\n")
        locker.stdin.flush()
        assert eventually(lambda: stack.psql("SELECT count(*) FROM pg_stat_activity WHERE state = "
                                             "'idle in transaction' AND datname = 'iot'") != "0", 15)
        before = [stack.metric("ingestion_readings_stored_total", replica) for replica in (1, 2)]
        assert held.publish() == seq
        assert eventually(lambda: stack.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                             " AND datname = 'iot'") != "0", 15)
        for _ in range(200):  # shared between the replicas: the one whose store waits gets its half too
            steady.publish()
        assert eventually(lambda: stored(stack, steady.device_id) == 200, 15)
        after = [stack.metric("ingestion_readings_stored_total", replica) for replica in (1, 2)]
        assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
        assert stored(stack, held.device_id) == 0
        locker.stdin.write("ROLLBACK;\n")
        locker.stdin.close()
        assert locker.wait(15) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
    assert held.wait_acked(15) and steady.wait_acked(15)
    assert stored_seqs(api, held.device_id) == [seq]  # the waiting store went through once the lock was gone
