"""Connection pool and the registry's own table, created or migrated at start."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

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




def make_pool(url: str, size: int = 10) -> AsyncConnectionPool:
    """Return an unopened async pool (open it inside the running event loop)."""
    return AsyncConnectionPool(url, min_size=2, max_size=size, open=False)
