"""The IoT example's database write alone: N rows per batch through ingestion's own BatchWriter, W writers at once.

A PostgreSQL container from the example's db image and a client container from the ingestion image (its code,
its psycopg C build) on a network of their own; for each case the client stores --rows readings of --devices
devices (increasing seq and ts, as the simulator sends them) in batches of N rows on W connections, and the
bench prints per stored row: the server's CPU (the db container's cgroup), the client's CPU (the writing
process), the WAL written (and its full-page images per 1,000 rows), and rows per second. Nothing else is
measured, so the PostgreSQL side of a change (a statement, an index, a server setting) is reproducible on a
busy machine: CPU per row is the figure to compare; the rate moves with other work.

    .venv/bin/python bench/db_write.py [--batch 100,250,1000] [--writers 1,2] [--mode store,write,copy]
        [--rows 40000] [--devices 4] [--pg-setting wal_compression=on ...] [--repeat 1]

Modes: store (what ingestion does: BatchWriter.store), write (the one-statement path for every size),
copy (COPY for every size).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from container_cpu import cgroup_cpu_ns  # noqa: E402
from stack import build_images, docker  # noqa: E402

MIGRATE = """
import os
from iot_common.schema import migrate
from ingestion_service.db import COMPONENT, MIGRATIONS
migrate(os.environ["DATABASE_URL"], COMPONENT, MIGRATIONS)
"""
# Runs in the client container: one case, rows stored as the given writers' batches; prints its figures as JSON.
CLIENT = r"""
import asyncio, json, os, sys, time
from ingestion_service.__main__ import loop_factory
from ingestion_service.db import BatchWriter
from ingestion_service.payload import row_line, timestamp_text

url = os.environ["DATABASE_URL"]
tag, mode, batch, writers, total, devices = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
t0 = 1732800000.0

def lines(start, n):
    received = timestamp_text(time.time())
    out = []
    for i in range(start, start + n):
        payload = ('{"seq":%d,"ts":%.3f,"temperature":%.1f,"humidity":%.1f}'
                   % (i // devices, t0 + i / 1000, 20 + i % 7, 40 + i % 11)).encode()
        out.append(row_line(f"{tag}-{i % devices}", payload, received)[0])
    return out

batches = [lines(start, min(batch, total - start)) for start in range(0, total, batch)]

async def one(writer, queue):
    while queue:
        rows = queue.pop()
        if mode == "copy":
            await writer.copy(rows)
        elif mode == "write":
            await writer.write(rows)
        else:
            await writer.store(rows)

async def main():
    pool = [BatchWriter(url) for _ in range(writers)]
    for writer in pool:
        await writer.write([])  # connected before the clock starts
    queue = batches[::-1]
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(one(writer, queue) for writer in pool))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    for writer in pool:
        await writer.close()
    print(json.dumps({"client_s": cpu, "wall_s": wall}))

with asyncio.Runner(loop_factory=loop_factory()) as runner:  # ingestion's own event loop (uvloop)
    runner.run(main())
"""


def psql(db: str, password: str, sql: str) -> str:
    """Run SQL in the database container and return the unaligned output."""
    return docker("exec", "-e", "PGPASSWORD", db, "psql", "-h", "127.0.0.1", "-U", "iot", "-d", "iot", "-At",
                  "-v", "ON_ERROR_STOP=1", "-c", sql, env={**os.environ, "PGPASSWORD": password})


def wal_lsn(db: str, password: str) -> tuple[int, int]:
    """The server's current WAL position in bytes, and the full-page images it has written so far."""
    lsn, fpi = psql(db, password, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, wal_fpi "
                    "FROM pg_stat_wal").split("|")
    return int(lsn), int(fpi)


def container_ns(name: str) -> int:
    """CPU time (ns) a container used so far."""
    cid = docker("inspect", "-f", "{{.Id}}", name)
    used = cgroup_cpu_ns(f"docker/{cid}", f"system.slice/docker-{cid}.scope")
    if used is None:
        raise RuntimeError(f"cannot read the CPU time of container {name} (cgroup v1 or v2)")
    return used


def wait_ready(db: str, timeout: float = 90) -> None:
    """Wait until PostgreSQL accepts connections on its TCP port (initdb's first start listens on none)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["docker", "exec", db, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "iot", "-d", "iot"],
                         check=False, capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError("the database did not start")
        time.sleep(0.5)


def run_case(prefix: str, client: str, db: str, password: str, case: tuple[str, int, int], args: argparse.Namespace,
             n: int) -> dict[str, float]:
    """Store --rows rows in one case; return its figures per row."""
    mode, batch, writers = case
    tag = f"{prefix}-{mode}-{batch}-{writers}-{n}"
    db0, wal0 = container_ns(db), wal_lsn(db, password)
    out = docker("exec", client, "python3", "-c", CLIENT, tag, mode, str(batch), str(writers), str(args.rows),
                 str(args.devices), timeout=1800)
    db1, wal1 = container_ns(db), wal_lsn(db, password)
    figures = json.loads(out.splitlines()[-1])
    rows = args.rows
    return {"db_us": (db1 - db0) / 1000 / rows, "client_us": figures["client_s"] * 1e6 / rows,
            "wal_b": (wal1[0] - wal0[0]) / rows, "fpi": (wal1[1] - wal0[1]) * 1000 / rows,
            "rate": rows / figures["wall_s"]}


def main() -> int:
    """Start the two containers, run every case, print a table, remove everything."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", default="100,250,1000", help="rows per batch, comma-separated")
    parser.add_argument("--writers", default="1,2", help="connections writing at once, comma-separated")
    parser.add_argument("--mode", default="store", help="store, write and/or copy, comma-separated")
    parser.add_argument("--rows", type=int, default=40000, help="rows per case")
    parser.add_argument("--devices", type=int, default=4, help="devices the rows belong to")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times, interleaved")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting for this run (postgres -c NAME=VALUE); repeatable")
    parser.add_argument("--setup", action="append", default=[], metavar="SQL",
                        help="SQL run once after ingestion's migrations, before the cases (e.g. DROP INDEX "
                             "readings_ts, to price an index); repeatable")
    args = parser.parse_args()
    cases = [(mode, int(batch), int(writers)) for mode in args.mode.split(",") for batch in args.batch.split(",")
             for writers in args.writers.split(",")]
    images = build_images(("db", "ingestion"))
    prefix, password = f"dbw-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    network, db, client = f"{prefix}-net", f"{prefix}-db", f"{prefix}-client"
    settings = [arg for item in args.pg_setting for arg in ("-c", item)]
    env = {**os.environ, "POSTGRES_PASSWORD": password,
           "DATABASE_URL": f"postgresql://iot:{password}@{db}:5432/iot"}
    try:
        docker("network", "create", network)
        docker("run", "-d", "--name", db, "--network", network, "-e", "POSTGRES_PASSWORD", images["db"], *settings,
               env=env)
        docker("run", "-d", "--name", client, "--network", network, "-e", "DATABASE_URL", "--entrypoint", "sleep",
               images["ingestion"], "infinity", env=env)
        wait_ready(db)
        docker("exec", client, "python3", "-c", MIGRATE)
        for sql in args.setup:
            psql(db, password, sql)
        print(f"server settings: {' '.join(args.pg_setting) or 'the image defaults'}; {args.rows} rows per case, "
              f"{args.devices} devices")
        print(f"{'mode':>6} {'rows/batch':>10} {'writers':>7} {'db µs/row':>10} {'client µs/row':>13} "
              f"{'WAL B/row':>9} {'FPI/1k rows':>11} {'rows/s':>8}")
        for n in range(args.repeat):
            for case in cases:
                f = run_case(prefix, client, db, password, case, args, n)
                print(f"{case[0]:>6} {case[1]:>10} {case[2]:>7} {f['db_us']:>10.1f} {f['client_us']:>13.1f} "
                      f"{f['wal_b']:>9.0f} {f['fpi']:>11.1f} {f['rate']:>8.0f}", flush=True)
        return 0
    finally:
        docker("rm", "-f", "-v", db, client, check=False)
        docker("network", "rm", network, check=False)


if __name__ == "__main__":
    sys.exit(main())
