"""Group commit for single registrations: concurrent `POST /devices` calls share one transaction and one auth call.

A fleet registered one device per request from many clients at once would otherwise cost a
transaction and an internal HTTP round trip to auth per device. Requests queue here; one worker
takes everything waiting for the same operator token (up to 1,000), inserts the device rows in one
statement, asks auth for all their credentials in one call and answers each request with its own.
Under no concurrency a group is one request, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from fastapi import HTTPException
from iot_common.tasks import BackgroundTask
from psycopg_pool import AsyncConnectionPool

from registry_service.auth_client import AuthClient

log = logging.getLogger("registry.registrar")
INSERT = (
    "INSERT INTO devices (id, name, metadata)"
    " SELECT i, n, m::jsonb FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(i, n, m)"
    " ON CONFLICT (id) DO NOTHING RETURNING id, created_at"
)


@dataclass
class Pending:
    """One waiting registration."""

    device_id: str
    name: str
    metadata: dict[str, Any]
    future: asyncio.Future[tuple[datetime, dict[str, Any]]]


def settle(pending: Pending, result: tuple[datetime, dict[str, Any]] | None = None,
           error: BaseException | None = None) -> None:
    """Answer a waiting registration (its caller may have gone away meanwhile)."""
    if pending.future.done():
        return
    if error is not None:
        pending.future.set_exception(error)
    elif result is not None:
        pending.future.set_result(result)


class Registrar(BackgroundTask):
    """Queues single registrations and stores them in groups, each with its own answer."""

    def __init__(self, pool: AsyncConnectionPool, auth: AuthClient, max_group: int = 1000) -> None:
        self.pool = pool
        self.auth = auth
        self.max_group = max_group
        self.waiting: dict[str, list[Pending]] = {}  # operator token -> registrations
        self._wake = asyncio.Event()

    async def register(self, token: str, device_id: str, name: str,
                       metadata: dict[str, Any]) -> tuple[datetime, dict[str, Any]]:
        """Register one device; return its created_at and auth's credentials (the password, once)."""
        future: asyncio.Future[tuple[datetime, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(token, []).append(Pending(device_id, name, metadata, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.waiting:
                token = next(iter(self.waiting))
                queue = self.waiting.pop(token)
                group, rest = queue[:self.max_group], queue[self.max_group:]
                if rest:
                    self.waiting[token] = rest
                try:
                    await self._store(token, group)
                except Exception as exc:  # every registration still waiting gets the error
                    error = exc if isinstance(exc, HTTPException) else HTTPException(
                        503, f"registration failed ({type(exc).__name__})")
                    if not isinstance(exc, HTTPException):
                        log.warning("a group of %d registrations failed: %r", len(group), exc)
                    for pending in group:
                        settle(pending, error=error)

    async def _store(self, token: str, group: list[Pending]) -> None:
        """Store a group; if one of its items is refused (bad data, an id auth will not take), split it.

        Halves are stored separately until the refused item is alone and gets its own error, so one
        bad registration never fails the others. Errors that concern every item (the database or auth
        unreachable, an invalid token) fail the whole group at once.
        """
        first: dict[str, Pending] = {}
        for pending in group:
            if pending.future.done():
                continue
            if pending.device_id in first:  # the same id twice in one group: the later one is a reuse
                settle(pending, error=HTTPException(409, f"device {pending.device_id!r} exists"))
            else:
                first[pending.device_id] = pending
        if not first:
            return
        try:
            await self._insert_and_issue(token, first)
        except Exception as exc:
            if not refused_item(exc):
                raise
            items = list(first.values())
            if len(items) == 1:
                settle(items[0], error=as_http_error(exc))
                return
            log.info("a group of %d registrations was refused (%s); storing it in halves", len(items),
                     type(exc).__name__)
            await self._store(token, items[: len(items) // 2])
            await self._store(token, items[len(items) // 2:])

    async def _insert_and_issue(self, token: str, first: dict[str, Pending]) -> None:
        """Insert the devices and issue their credentials in one transaction (an error rolls all back); answer each."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(INSERT, ([p.device_id for p in first.values()],
                                              [p.name for p in first.values()],
                                              [json.dumps(p.metadata) for p in first.values()]))
            created = {row[0]: row[1] for row in await cur.fetchall()}
            if not created:
                for device_id, pending in first.items():
                    settle(pending, error=HTTPException(409, f"device {device_id!r} exists (ids are never reused)"))
                return
            credentials = await self.auth.issue_many(list(created), token)  # an error rolls back
        for device_id, pending in first.items():
            if device_id not in created:
                settle(pending, error=HTTPException(409, f"device {device_id!r} exists (ids are never reused)"))
        for cred in credentials:
            settle(first[cred["device_id"]], (created[cred["device_id"]], cred))


def refused_item(exc: BaseException) -> bool:
    """Whether an error may concern only some items of a group (so splitting the group can isolate them)."""
    if isinstance(exc, HTTPException):
        return 400 <= exc.status_code < 500 and exc.status_code not in (401, 403)
    return isinstance(exc, psycopg.errors.DataError | psycopg.errors.IntegrityError
                      | psycopg.errors.ProgramLimitExceeded)


def as_http_error(exc: BaseException) -> HTTPException:
    """The error one refused registration answers with (the database's reason, shortened)."""
    if isinstance(exc, HTTPException):
        return exc
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return HTTPException(422, f"the device cannot be stored: {reason}")
