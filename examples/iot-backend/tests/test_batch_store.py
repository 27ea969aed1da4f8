"""Large batches are stored with COPY, and a COPY the rows refuse leaves the batch to the statement path whole:
redeliveries are stored once, a refused row becomes the only dead letter, last-seen rows follow."""

from __future__ import annotations

import json
import secrets

import pytest
from stack import DockerStack, docker

pytestmark = pytest.mark.docker

# Runs inside an ingestion replica (its code, its psycopg, its DATABASE_URL file), on a writer of its own.
SCRIPT = """
import asyncio, json, sys
import psycopg
from ingestion_service.db import COPY_MIN_ROWS, COPY_PAUSE, BatchWriter
from ingestion_service.payload import row_line
from ingestion_service.settings import Settings

device, url = sys.argv[1], Settings.from_env().database_url

def lines(seqs, received, refused=None):
    return [row_line(device, json.dumps({"seq": s, "ts": 1732800000.25 + s / 1000, "humidity": 40.0,
                                          "temperature": 66.25 if s == refused else 20.5}).encode(), received)[0]
            for s in seqs]

async def last_seen():
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT extract(epoch FROM last_seen)::float8 FROM device_last_seen"
                                 " WHERE device_id = %s", (device,))
        return (await cur.fetchone())[0]

async def main():
    writer, n = BatchWriter(url), COPY_MIN_ROWS
    out = {"n": n, "pause": COPY_PAUSE, "first": await writer.store(lines(range(n), 1732800001.5))}
    out["paused"], out["seen"] = [writer.copy_paused], [await last_seen()]
    out["redelivered"] = await writer.store(lines(range(n // 2, n + n // 2), 1732800002.5))  # half stored before
    out["paused"].append(writer.copy_paused)
    writer.copy_paused = 0
    out["refused"] = await writer.store(lines(range(n + n // 2, 3 * n), 1732800003.5, refused=2 * n))
    writer.copy_paused = 0
    out["last"] = await writer.store(lines(range(3 * n, 4 * n), 1732800004.5))
    out["paused"].append(writer.copy_paused)
    out["seen"].append(await last_seen())
    await writer.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def test_large_batches_are_copied_and_refused_copies_fall_back_to_the_statement(stack: DockerStack) -> None:
    device = f"copy-{secrets.token_hex(4)}"
    stack.psql("ALTER TABLE readings ADD CONSTRAINT copy_probe CHECK (temperature <> 66.25) NOT VALID")
    try:
        out = json.loads(docker("exec", stack.name("ingestion", 1), "python3", "-c", SCRIPT, device).splitlines()[-1])
    finally:
        stack.psql("ALTER TABLE readings DROP CONSTRAINT IF EXISTS copy_probe")
    n = out["n"]
    assert out["first"] == [n, []]  # one COPY took it whole
    assert out["redelivered"] == [n // 2, []]  # COPY refused the stored half; the statement skipped it
    inserted, refused = out["refused"]
    assert inserted == 3 * n - (n + n // 2) - 1 and len(refused) == 1
    index, reason = refused[0]
    assert index == 2 * n - (n + n // 2) and "copy_probe" in reason  # the refused row alone, found by bisection
    assert out["last"] == [n, []]
    assert out["paused"] == [0, out["pause"] - 1, 0]  # COPY was refused once, and used for the first and last
    assert out["seen"] == [1732800001.5, 1732800004.5]  # last seen added, then moved, by COPY's transaction
    rows = stack.psql(f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(DISTINCT received_at), "
                      f"bool_and(ts = to_timestamp(1732800000.25 + seq / 1000.0) AND humidity = 40 AND battery IS NULL)"
                      f" FROM readings WHERE device_id = '{device}'")
    assert rows == f"{4 * n - 1}|{4 * n - 1}|0|{4 * n - 1}|4|t"
