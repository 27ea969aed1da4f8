"""Each service's own tables, migrated at start under one advisory lock shared by all services."""

from __future__ import annotations

import logging
import time

import psycopg

log = logging.getLogger("iot.db")

# One lock for every component: replicas and services that start together migrate one at a time.
MIGRATION_LOCK = 7_100_001


def connect_with_retry(url: str, timeout: float = 90.0) -> psycopg.Connection:
    """Connect (autocommit), retrying while the database starts; raise its OperationalError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", str(exc).splitlines()[0][:120])
            time.sleep(1.0)


def migrate(url: str, component: str, migrations: list[str]) -> int:
    """Apply the migrations a component has not applied yet, each in its own transaction; return its schema
    version. A failing migration leaves the ones before it applied and recorded."""
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
