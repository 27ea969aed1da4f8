"""Connection pool and the registry's own table, created or migrated at start."""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("registry.db")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE devices (
        id                text PRIMARY KEY,
        name              text NOT NULL DEFAULT '',
        metadata          jsonb NOT NULL DEFAULT '{}',
        status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
        created_at        timestamptz NOT NULL DEFAULT now(),
        decommissioned_at timestamptz
    );
    """,
]
COMPONENT = "registry"
MIGRATION_LOCK = 7_100_001


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


def make_pool(url: str, size: int = 10) -> AsyncConnectionPool:
    """Return an unopened async pool (open it inside the running event loop)."""
    return AsyncConnectionPool(url, min_size=2, max_size=size, open=False)
