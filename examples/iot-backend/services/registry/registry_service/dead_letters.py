"""GET /dead-letters: messages ingestion acknowledged but could not store as readings, newest first."""

# ruff: noqa: B008  (FastAPI declares parameters with Depends()/Query() defaults)

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Query
from psycopg_pool import AsyncConnectionPool

from registry_service.inputs import DEVICE_ID_RULE, check_device_id

MAX_ID = 2**63 - 1
COLUMNS = ("id", "device_id", "topic", "payload", "reason", "received_at", "stored_at")


def dead_letter(row: tuple[Any, ...]) -> dict[str, Any]:
    """Shape a dead_letters row for the API: the payload as text (invalid UTF-8 replaced) and as base64."""
    item = dict(zip(COLUMNS, row, strict=True))
    payload = bytes(item.pop("payload"))
    item["payload"] = payload.decode("utf-8", errors="replace")
    item["payload_base64"] = base64.b64encode(payload).decode()
    return item


def dead_letter_routes(pool: Callable[[], AsyncConnectionPool], operator: Callable[..., Any]) -> APIRouter:
    """The dead-letter routes, reading through `pool()` and guarded by the `operator` dependency."""
    router = APIRouter(tags=["ops"])

    @router.get("/dead-letters")
    async def list_dead_letters(
        device_id: str | None = Query(None, description=f"only this device's: {DEVICE_ID_RULE}"),
        before: int | None = Query(None, ge=1, le=MAX_ID, description="only ids below this (the previous "
                                   "page's next_before)"),
        limit: int = Query(100, ge=1, le=1000),
        _: Any = Depends(operator),
    ) -> dict[str, Any]:
        """Dead letters (device, topic, first 1 KiB of the payload, reason, time), newest first, a page at a time."""
        where: list[str] = []
        params: list[object] = []
        if device_id is not None:
            where.append("device_id = %s")
            params.append(check_device_id(device_id))
        if before is not None:
            where.append("id < %s")
            params.append(before)
        sql = (  # conditions are constants; values go as parameters
            f"SELECT {', '.join(COLUMNS)} FROM dead_letters"  # noqa: S608
            f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT %s"
        )
        async with pool().connection() as conn:
            try:
                rows = await (await conn.execute(sql, (*params, limit))).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
        items = [dead_letter(r) for r in rows]
        return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}

    return router

