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

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS incoming (
    device_id text, seq bigint, ts float8, temperature float8, humidity float8, battery float8, received_at float8
) ON COMMIT DELETE ROWS
"""
COPY = "COPY incoming (device_id, seq, ts, temperature, humidity, battery, received_at) FROM STDIN"
INSERT = """
INSERT INTO readings (device_id, seq, ts, temperature, humidity, battery, received_at)
SELECT device_id, seq, to_timestamp(ts), temperature, humidity, battery, to_timestamp(received_at) FROM incoming
ON CONFLICT (device_id, seq) DO NOTHING
"""
# Sorted by device id so two replicas lock last-seen rows in the same order (no deadlocks).
LAST_SEEN = """
INSERT INTO device_last_seen (device_id, last_seen)
SELECT device_id, to_timestamp(max(received_at)) FROM incoming GROUP BY device_id ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET last_seen = greatest(device_last_seen.last_seen, EXCLUDED.last_seen)
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
    """One connection that stores batches of COPY lines in one transaction each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=False, connect_timeout=5)
            self.conn.execute(STAGING)
            self.conn.commit()
        return self.conn

    def write(self, lines: list[str]) -> int:
        """Store the rows (duplicates of stored (device_id, seq) are skipped); return rows inserted."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                with cur.copy(COPY) as copy:
                    copy.write("".join(lines))
                cur.execute(INSERT)
                inserted = cur.rowcount
                cur.execute(LAST_SEEN)
            conn.commit()
        except BaseException:
            self.close()
            raise
        return inserted

    def close(self) -> None:
        """Drop the connection (the next write reconnects)."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
