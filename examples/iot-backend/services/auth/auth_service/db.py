"""Connection pool and the auth service's own tables, created or migrated at start."""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("auth.db")

# Each entry runs once, in order, under an advisory lock (replicas may start together).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE auth_meta (key text PRIMARY KEY, value text NOT NULL);
    INSERT INTO auth_meta VALUES ('epoch', md5(random()::text || clock_timestamp()::text)),
                                 ('broker_applied', '0');
    CREATE SEQUENCE credential_version;
    CREATE TABLE device_credentials (
        device_id     text PRIMARY KEY,
        password_hash text,               -- mosquitto $7$ hash; NULL once revoked
        version       bigint NOT NULL,    -- from credential_version, bumped by every change
        created_at    timestamptz NOT NULL DEFAULT now(),
        revoked_at    timestamptz
    );
    CREATE INDEX device_credentials_version ON device_credentials (version);
    CREATE TABLE operator_tokens (
        id         text PRIMARY KEY,
        name       text NOT NULL,
        digest     text NOT NULL UNIQUE,  -- sha256 of the token; the token itself is never stored
        admin      boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    );
    """,
]
COMPONENT = "auth"
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


def migrate(url: str, component: str, migrations: list[str]) -> int:
    """Apply the migrations a component has not applied yet; return its schema version."""
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


def make_pool(url: str, size: int = 8) -> AsyncConnectionPool:
    """Return an unopened async pool (open it inside the running event loop)."""
    return AsyncConnectionPool(url, min_size=2, max_size=size, open=False, kwargs={"autocommit": False})
