"""Ingestion's tables (readings, device_last_seen), migrated at start, and the batch write."""

from __future__ import annotations

import logging
import time

import psycopg

log = logging.getLogger("ingestion.db")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE readings (
        device_id   text NOT NULL,
        seq         bigint NOT NULL,            -- device-side sequence number: the message id
        ts          timestamptz NOT NULL,       -- when the device took the reading
        temperature real NOT NULL,
        humidity    real,
        battery     real,
        received_at timestamptz NOT NULL,       -- when ingestion received the message
        stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (device_id, seq)
    );
    CREATE INDEX readings_device_ts ON readings (device_id, ts DESC);
    -- BRIN: rows arrive roughly in ts order; a tiny index that costs almost nothing per insert
    CREATE INDEX readings_ts ON readings USING brin (ts);
    CREATE TABLE device_last_seen (
        device_id text PRIMARY KEY,
        last_seen timestamptz NOT NULL
    );
    """,
]
COMPONENT = "ingestion"
MIGRATION_LOCK = 7_100_001

# One statement, one round trip, one implicit transaction (the connection is in autocommit): the
# batch travels as a single text parameter of tab-separated lines and is split by the server.
# Redeliveries of stored (device_id, seq) are skipped. Last-seen rows are taken with SKIP LOCKED:
# a row that another writer (the other connection, another replica) has locked is left to it, as
# its batch is from the same few milliseconds, so batches never queue behind each other's commits
# (rows of devices seen for the first time are inserted in device id order).
WRITE = """
WITH batch AS (
    SELECT f[1] AS device_id, f[2]::bigint AS seq, to_timestamp(f[3]::float8) AS ts, f[4]::float8 AS temperature,
           nullif(f[5], '')::float8 AS humidity, nullif(f[6], '')::float8 AS battery,
           to_timestamp(f[7]::float8) AS received_at
    FROM (SELECT string_to_array(line, E'\\t') AS f FROM unnest(string_to_array(%s::text, E'\\n')) AS line
          WHERE line <> '') AS lines
), inserted AS (
    INSERT INTO readings (device_id, seq, ts, temperature, humidity, battery, received_at)
    SELECT device_id, seq, ts, temperature, humidity, battery, received_at FROM batch
    ON CONFLICT (device_id, seq) DO NOTHING
    RETURNING 1
), latest AS (
    SELECT device_id, max(received_at) AS seen FROM batch GROUP BY device_id
), locked AS (
    SELECT s.device_id FROM device_last_seen s JOIN latest l USING (device_id)
    ORDER BY s.device_id FOR UPDATE OF s SKIP LOCKED
), updated AS (
    UPDATE device_last_seen s SET last_seen = greatest(s.last_seen, l.seen)
    FROM latest l JOIN locked k USING (device_id) WHERE s.device_id = l.device_id
    RETURNING 1
), added AS (
    INSERT INTO device_last_seen (device_id, last_seen)
    SELECT device_id, seen FROM latest l
    WHERE NOT EXISTS (SELECT 1 FROM device_last_seen s WHERE s.device_id = l.device_id)
    ORDER BY device_id
    ON CONFLICT (device_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM inserted
"""


def connect_with_retry(url: str, timeout: float = 90.0) -> psycopg.Connection:
    """Connect, retrying while the database starts (services may start before it is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", str(exc).splitlines()[0][:120])
            time.sleep(1.0)


def migrate(url: str, component: str = COMPONENT, migrations: list[str] = MIGRATIONS) -> int:
    """Apply the migrations this component has not applied yet; return its schema version."""
    with connect_with_retry(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component text PRIMARY KEY, version int NOT NULL)"
            )
            row = conn.execute("SELECT version FROM schema_versions WHERE component = %s", (component,)).fetchone()
            current = row[0] if row else 0
            for number, sql in enumerate(migrations[current:], start=current + 1):
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        "INSERT INTO schema_versions VALUES (%s, %s)"
                        " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                        (component, number),
                    )
                log.info("%s schema migrated to version %d", component, number)
            return len(migrations)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


class BatchWriter:
    """One connection that stores each batch of row lines in one statement (and so one transaction)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.AsyncConnection | None = None

    async def write(self, lines: list[str]) -> int:
        """Store the rows, committed when this returns (stored (device_id, seq) are skipped); return rows inserted."""
        if self.conn is None or self.conn.closed:
            self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
        try:
            cur = await self.conn.execute(WRITE, ("".join(lines),))
            row = await cur.fetchone()
        except BaseException:
            await self.close()
            raise
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Drop the connection (the next write reconnects)."""
        if self.conn is not None:
            try:
                await self.conn.close()
            finally:
                self.conn = None
