"""What the HTTP services (auth, registry) share: start-up against the database, /healthz, uvicorn."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool

from iot_common.schema import migrate


async def open_database(url: str, component: str, migrations: list[str], pool: AsyncConnectionPool) -> None:
    """Set up logging, migrate the component's tables and open its (unopened) pool; a failure leaves
    the migrations before the failing one applied and the pool closed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    await asyncio.to_thread(migrate, url, component, migrations)
    await pool.open()


async def database_health(pool: AsyncConnectionPool) -> dict[str, str]:
    """{"status": "ok"} when the database answers within 2 s; otherwise HTTPException 503 naming the error's type."""
    try:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:
        raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from exc
    return {"status": "ok"}


def serve(app: str, host: str, port: int, access_log: bool, **tls: str) -> None:
    """Run the ASGI app `module:attribute` under uvicorn (uvloop) until SIGTERM; `tls`: ssl_certfile/ssl_keyfile."""
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info", loop="uvloop", **tls)
