"""Change notification (LISTEN/NOTIFY) and the broker's credential feed queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg
from iot_common.tasks import BackgroundTask
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("auth.feed")
CHANNEL = "credentials"  # a credential changed
APPLIED_CHANNEL = "broker_applied"  # the broker reported the version it has loaded
# Writers take this lock before drawing a version, so versions commit in increasing order and a
# reader that has seen version N can never later find a row with a smaller version appear.
WRITE_LOCK = 7_100_002


class Notifier(BackgroundTask):
    """Wakes long-polls when any auth replica commits a credential change or the broker reports."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._events = {CHANNEL: asyncio.Event(), APPLIED_CHANNEL: asyncio.Event()}

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {APPLIED_CHANNEL}")
                    self.wake(CHANNEL)  # changes may have happened while we were not listening
                    self.wake(APPLIED_CHANNEL)
                    async for note in conn.notifies():
                        self.wake(note.channel)
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1.0)

    def wake(self, channel: str) -> None:
        """Wake every waiter of a channel."""
        event = self._events.get(channel)
        if event is not None:
            event.set()
            self._events[channel] = asyncio.Event()

    async def wait(self, timeout: float, channel: str = CHANNEL) -> None:
        """Wait for the next notification on a channel, or the timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events[channel].wait(), timeout)


_epoch: dict[str, tuple[float, str]] = {}


async def epoch(pool: AsyncConnectionPool) -> str:
    """Return this database's credential epoch (changes only if the auth tables are recreated)."""
    cached = _epoch.get("value")
    if cached and time.monotonic() - cached[0] < 10.0:
        return cached[1]
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT value FROM auth_meta WHERE key = 'epoch'")).fetchone()
    _epoch["value"] = (time.monotonic(), str(row[0]) if row else "")
    return _epoch["value"][1]


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


class CredentialWriter(BackgroundTask):
    """Group commit: concurrent credential changes share one transaction, one NOTIFY and one fsync.

    Writers take WRITE_LOCK before drawing versions, so versions become visible in increasing
    order even with several auth replicas; batching keeps that lock cheap under load.
    """

    def __init__(self, pool: AsyncConnectionPool, max_batch: int = 1000) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[list[tuple[str, str]], asyncio.Future[dict[str, int]]]] = asyncio.Queue()

    async def issue(self, items: list[tuple[str, str]]) -> dict[str, int]:
        """Store (device id, hash) pairs all-or-nothing; return id -> version, or raise KeyError(existing ids)."""
        future: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        await self.queue.put((items, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            while not self.queue.empty() and sum(len(j[0]) for j in jobs) < self.max_batch:
                jobs.append(self.queue.get_nowait())
            try:
                await self._write(jobs)
            except Exception as exc:  # the database failed: every waiter gets the error
                for _items, future in jobs:
                    if not future.done():
                        future.set_exception(exc)

    async def _write(self, jobs: list[tuple[list[tuple[str, str]], asyncio.Future[dict[str, int]]]]) -> None:
        ids = [device_id for items, _f in jobs for device_id, _h in items]
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT device_id FROM device_credentials WHERE device_id = ANY(%s)", (ids,))
            taken = {row[0] for row in await cur.fetchall()}
            seen: set[str] = set()
            accepted: list[tuple[list[tuple[str, str]], asyncio.Future[dict[str, int]]]] = []
            for items, future in jobs:
                mine = {device_id for device_id, _h in items}
                clash = (mine & taken) | (mine & seen)
                if len(mine) != len(items):
                    future.set_exception(ValueError("a device id is repeated"))
                elif clash:
                    future.set_exception(KeyError(sorted(clash)))
                else:
                    seen |= mine
                    accepted.append((items, future))
            if not accepted:
                return
            rows = [pair for items, _f in accepted for pair in items]
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            cur = await conn.execute(
                "INSERT INTO device_credentials (device_id, password_hash, version)"
                " SELECT d, h, nextval('credential_version') FROM unnest(%s::text[], %s::text[]) AS t(d, h)"
                " RETURNING device_id, version",
                ([d for d, _h in rows], [h for _d, h in rows]),
            )
            versions = {row[0]: int(row[1]) for row in await cur.fetchall()}
            await conn.execute(f"NOTIFY {CHANNEL}")
        for items, future in accepted:
            future.set_result({d: versions[d] for d, _h in items})
