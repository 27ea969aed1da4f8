"""Change notification (LISTEN/NOTIFY) and the broker's credential feed queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("auth.feed")
CHANNEL = "credentials"
# Writers take this lock before drawing a version, so versions commit in increasing order and a
# reader that has seen version N can never later find a row with a smaller version appear.
WRITE_LOCK = 7_100_002


class Notifier:
    """Wakes long-polls when any auth replica commits a credential change or the broker reports."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening in the background (reconnects on its own)."""
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        """Stop listening."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.wake()  # changes may have happened while we were not listening
                    async for _ in conn.notifies():
                        self.wake()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1.0)

    def wake(self) -> None:
        """Wake every waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Wait for the next change, or the timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


async def epoch(pool: AsyncConnectionPool) -> str:
    """Return this database's credential epoch (changes only if the auth tables are recreated)."""
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT value FROM auth_meta WHERE key = 'epoch'")).fetchone()
        return str(row[0]) if row else ""


async def changes(pool: AsyncConnectionPool, after: int, snapshot: bool) -> dict[str, Any]:
    """Return a snapshot of active credentials, or the changes after a version."""
    async with pool.connection() as conn:
        if snapshot:
            cur = await conn.execute(
                "SELECT device_id, password_hash, version FROM device_credentials WHERE password_hash IS NOT NULL"
            )
            rows = await cur.fetchall()
            top = await (await conn.execute("SELECT coalesce(max(version), 0) FROM device_credentials")).fetchone()
            version = int(top[0]) if top else 0
            return {"reset": True, "version": version, "upsert": {r[0]: r[1] for r in rows}, "delete": []}
        cur = await conn.execute(
            "SELECT device_id, password_hash, version FROM device_credentials WHERE version > %s ORDER BY version",
            (after,),
        )
        rows = await cur.fetchall()
    upsert = {r[0]: r[1] for r in rows if r[1] is not None}
    delete = [r[0] for r in rows if r[1] is None]
    version = max([after, *(int(r[2]) for r in rows)])
    return {"reset": False, "version": version, "upsert": upsert, "delete": delete}


async def broker_applied(pool: AsyncConnectionPool) -> tuple[int, int]:
    """Return (latest credential version, version the broker last reported as applied)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(max(version), 0) FROM device_credentials),"
            " (SELECT value::bigint FROM auth_meta WHERE key = 'broker_applied')"
        )
        row = await cur.fetchone()
    return (int(row[0]), int(row[1] or 0)) if row else (0, 0)
