"""Connection pool and the auth service's own tables, created or migrated at start."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

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




def make_pool(url: str, size: int = 8) -> AsyncConnectionPool:
    """Return an unopened async pool (open it inside the running event loop)."""
    return AsyncConnectionPool(url, min_size=2, max_size=size, open=False, kwargs={"autocommit": False})
