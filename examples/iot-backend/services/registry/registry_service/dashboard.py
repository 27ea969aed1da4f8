"""The operator dashboard (`/ui`, static files from this package) and the live readings stream it draws.

The page itself holds no data and needs no token; everything it shows comes from the API with the
operator token in the `Authorization` header (kept in the tab's sessionStorage, never in a URL).
Live readings are server-sent events read with fetch(), since EventSource cannot send a header.
"""

# ruff: noqa: B008  (FastAPI declares parameters with Depends()/Query() defaults)

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("registry.dashboard")
UI = Path(__file__).with_name("ui")
ASSETS = {  # the only files served: name -> content type
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
                               " img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
STREAM_COLUMNS = ("seq", "ts", "temperature", "humidity", "battery")
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
MAX_STREAMS = 100
MAX_ROWS_PER_POLL = 500


def asset(name: str) -> Response:
    """One of the dashboard's files, with headers that keep it from loading anything from elsewhere."""
    return Response((UI / name).read_bytes(), media_type=ASSETS[name], headers=PAGE_HEADERS)


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def reading(row: tuple[Any, ...]) -> dict[str, Any]:
    """A readings row as the stream sends it (ts as Unix seconds, which the chart plots)."""
    item = dict(zip(STREAM_COLUMNS, row, strict=True))
    ts: datetime = item["ts"]
    item["ts"] = ts.timestamp()
    return item


class ReadingStreams:
    """Polls the readings table for each open stream; at most MAX_STREAMS at once (503 beyond)."""

    def __init__(self, pool: Callable[[], AsyncConnectionPool]) -> None:
        self.pool = pool
        self.open = 0

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self.pool().connection() as conn:
            try:
                return list(await (await conn.execute(sql, params)).fetchall())
            except psycopg.errors.UndefinedTable:  # ingestion has not created it yet
                return []

    async def latest_seq(self, device_id: str) -> int:
        """The device's highest stored seq (0 when it has none)."""
        rows = await self._query("SELECT coalesce(max(seq), 0) FROM readings WHERE device_id = %s", (device_id,))
        return int(rows[0][0]) if rows else 0

    async def events(self, device_id: str, after: int) -> AsyncIterator[bytes]:
        """Readings stored after seq `after`, oldest first, as they arrive; a comment line keeps idle links open."""
        self.open += 1
        try:
            yield sse("ready", {"device_id": device_id, "after": after})
            idle = 0.0
            while True:
                rows = await self._query(
                    f"SELECT {', '.join(STREAM_COLUMNS)} FROM readings"  # noqa: S608 (constant column names)
                    " WHERE device_id = %s AND seq > %s ORDER BY seq LIMIT %s",
                    (device_id, after, MAX_ROWS_PER_POLL),
                )
                for row in rows:
                    item = reading(row)
                    after = item["seq"]
                    yield sse("reading", item, after)
                if rows:
                    idle = 0.0
                    continue  # a full page may have more behind it
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.open -= 1


def dashboard_routes(pool: Callable[[], AsyncConnectionPool], operator: Callable[..., Any],
                     device_path: Callable[..., str]) -> APIRouter:
    """The dashboard's pages and the readings stream (guarded by `operator`, the id checked by `device_path`)."""
    router = APIRouter()
    streams = ReadingStreams(pool)

    @router.get("/ui", include_in_schema=False)
    async def page() -> Response:
        """The dashboard page."""
        return asset("index.html")

    @router.get("/ui/", include_in_schema=False)
    async def page_slash() -> RedirectResponse:
        """`/ui/` is `/ui`."""
        return RedirectResponse("/ui", status_code=308)

    @router.get("/ui/{name}", include_in_schema=False)
    async def page_asset(name: str) -> Response:
        """The page's script and style sheet (nothing else is served from the folder)."""
        if name not in ASSETS:
            raise HTTPException(404, "no such file")
        return asset(name)

    @router.get("/devices/{device_id}/readings/stream", tags=["readings"])
    async def stream_readings(
        _: Any = Depends(operator),
        device_id: str = Depends(device_path),
        after: int | None = Query(None, ge=0, le=2**63 - 1,
                                  description="send readings with a greater seq (default: from now on)"),
    ) -> StreamingResponse:
        """A device's new readings as server-sent events (`event: reading`, `id:` its seq), as they are stored."""
        if streams.open >= MAX_STREAMS:
            raise HTTPException(503, f"too many open streams (at most {MAX_STREAMS})")
        start = after if after is not None else await streams.latest_seq(device_id)
        return StreamingResponse(
            streams.events(device_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
