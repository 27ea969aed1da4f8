"""HTTP API of the auth service (internal): device credentials, operator tokens, broker feed."""

# ruff: noqa: B008  (FastAPI declares parameters with Depends()/Query() defaults)

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from iot_common.web import database_health, open_database
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from auth_service import feed
from auth_service.db import COMPONENT, MIGRATIONS, make_pool
from auth_service.hashing import mosquitto_hash, new_api_token, new_device_password, token_digest
from auth_service.settings import Settings

log = logging.getLogger("auth")
DEVICE_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")  # \Z: "$" also matches before a final newline


class State:
    """Process-wide objects, created at start-up."""

    settings: Settings
    pool: AsyncConnectionPool
    notifier: feed.Notifier
    writer: feed.CredentialWriter


state = State()


async def startup() -> None:
    """Migrate the schema, open the pool and start listening for changes."""
    state.settings = Settings.from_env()
    state.pool = make_pool(state.settings.database_url)
    await open_database(state.settings.database_url, COMPONENT, MIGRATIONS, state.pool)
    state.notifier = feed.Notifier(state.settings.database_url)
    state.notifier.start()
    state.writer = feed.CredentialWriter(state.pool)
    state.writer.start()
    log.info("auth ready")


async def shutdown() -> None:
    """Stop listening and writing, and close the pool."""
    await state.writer.stop()
    await state.notifier.stop()
    await state.pool.close()


# on_startup/on_shutdown rather than lifespan: Debian's FastAPI 0.92 has no lifespan parameter.
app = FastAPI(title="iot-backend auth", version="1.0", on_startup=[startup], on_shutdown=[shutdown])


class Principal(BaseModel):
    """Who an operator token belongs to."""

    name: str
    admin: bool


class NewToken(BaseModel):
    """Request body to issue an operator token."""

    name: str
    admin: bool = False


class Applied(BaseModel):
    """The credential version the broker has loaded."""

    version: int


def bearer(request: Request) -> str:
    """Return the bearer token of a request, or raise 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def principal_for(token: str) -> Principal | None:
    """Return the principal of a valid operator token, or None."""
    if hmac.compare_digest(token_digest(token), token_digest(state.settings.admin_token)):
        return Principal(name="admin", admin=True)
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT name, admin FROM operator_tokens WHERE digest = %s AND revoked_at IS NULL", (token_digest(token),)
        )
        row = await cur.fetchone()
    return Principal(name=row[0], admin=row[1]) if row else None


async def operator(request: Request) -> Principal:
    """Dependency: a valid operator token."""
    found = await principal_for(bearer(request))
    if found is None:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return found


async def admin(who: Principal = Depends(operator)) -> Principal:
    """Dependency: an admin operator token."""
    if not who.admin:
        raise HTTPException(403, "admin token required")
    return who


def broker_feed(request: Request) -> None:
    """Dependency: the broker's feed token."""
    if not hmac.compare_digest(bearer(request).encode(), state.settings.feed_token.encode()):
        raise HTTPException(401, "invalid feed token")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Healthy when the database answers (503 otherwise)."""
    return await database_health(state.pool)


@app.post("/v1/tokens/verify", response_model=Principal)
async def verify_token(who: Principal = Depends(operator)) -> Principal:
    """Check the bearer token; 401 when it is not a valid operator token."""
    return who


@app.post("/v1/tokens", status_code=201)
async def issue_token(body: NewToken, _: Principal = Depends(admin)) -> dict[str, Any]:
    """Issue an operator token; its value is returned once and only its digest is stored."""
    token, token_id = new_api_token(), "tok_" + secrets.token_hex(6)
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO operator_tokens (id, name, digest, admin) VALUES (%s, %s, %s, %s)",
            (token_id, body.name, token_digest(token), body.admin),
        )
    return {"id": token_id, "name": body.name, "admin": body.admin, "token": token}


@app.get("/v1/tokens")
async def list_tokens(_: Principal = Depends(admin)) -> list[dict[str, Any]]:
    """List operator tokens (never their values)."""
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, name, admin, created_at, revoked_at FROM operator_tokens ORDER BY created_at"
        )
        rows = await cur.fetchall()
    keys = ("id", "name", "admin", "created_at", "revoked_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


@app.delete("/v1/tokens/{token_id}")
async def revoke_token(token_id: str, _: Principal = Depends(admin)) -> dict[str, Any]:
    """Revoke an operator token."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE operator_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING id",
            (token_id,),
        )
        if await cur.fetchone() is None:
            raise HTTPException(404, "no such token")
    return {"id": token_id, "revoked": True}


def check_device_id(device_id: str) -> None:
    """Device ids double as MQTT usernames and topic segments: keep them plain."""
    if not DEVICE_ID.match(device_id):
        raise HTTPException(422, "device id must match ^[a-z0-9][a-z0-9-]{0,62}$")


class DeviceIds(BaseModel):
    """Request body to create credentials for many devices at once."""

    device_ids: list[str]


async def issue_many(device_ids: list[str]) -> list[dict[str, Any]]:
    """Create credentials for new devices, all or none; passwords are returned once, hashes kept."""
    for device_id in device_ids:
        check_device_id(device_id)
    passwords = {device_id: new_device_password() for device_id in device_ids}
    try:
        versions = await state.writer.issue([(d, mosquitto_hash(pw)) for d, pw in passwords.items()])
    except KeyError as exc:
        raise HTTPException(409, f"already have (or had) credentials; ids are never reused: {exc.args[0]}") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return [
        {"device_id": d, "username": d, "password": pw, "version": versions[d]} for d, pw in passwords.items()
    ]


@app.post("/v1/devices/{device_id}/credentials", status_code=201)
async def issue_credentials(device_id: str, _: Principal = Depends(operator)) -> dict[str, Any]:
    """Create a device's MQTT credentials; the password is returned once, only its hash is kept."""
    return (await issue_many([device_id]))[0]


@app.post("/v1/devices/credentials", status_code=201)
async def issue_credentials_bulk(body: DeviceIds, _: Principal = Depends(operator)) -> list[dict[str, Any]]:
    """Create credentials for up to 1,000 devices in one transaction (all or none)."""
    if not 1 <= len(body.device_ids) <= 1000:
        raise HTTPException(422, "give 1 to 1000 device ids")
    return await issue_many(body.device_ids)


@app.delete("/v1/devices/{device_id}/credentials")
async def revoke_credentials(device_id: str, _: Principal = Depends(operator)) -> dict[str, Any]:
    """Revoke a device's credentials; the broker drops them (and the connection) on its next reload."""
    check_device_id(device_id)
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (feed.WRITE_LOCK,))
        cur = await conn.execute(
            "UPDATE device_credentials SET password_hash = NULL, revoked_at = now(),"
            " version = nextval('credential_version') WHERE device_id = %s AND password_hash IS NOT NULL"
            " RETURNING version",
            (device_id,),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute("SELECT version FROM device_credentials WHERE device_id = %s", (device_id,))
            old = await cur.fetchone()
            if old is None:
                raise HTTPException(404, "no credentials for this device")
            return {"device_id": device_id, "revoked": True, "version": old[0]}
        await conn.execute(f"NOTIFY {feed.CHANNEL}")
    return {"device_id": device_id, "revoked": True, "version": row[0]}


@app.get("/v1/broker/credentials", dependencies=[Depends(broker_feed)])
async def credential_feed(after: int = 0, epoch: str = "", wait: float = 25.0) -> dict[str, Any]:
    """Long-poll: the changes after `after`, or a full snapshot when the broker is new or the epoch moved."""
    current = await feed.epoch(state.pool)
    if epoch != current:  # a new broker sends no epoch; `after` 0 with the epoch is an empty table: wait
        return {**await feed.changes(state.pool, 0, snapshot=True), "epoch": current}
    deadline = time.monotonic() + min(max(wait, 0.0), 55.0)
    while True:
        body = await feed.changes(state.pool, after, snapshot=False)
        left = deadline - time.monotonic()
        if body["upsert"] or body["delete"] or left <= 0:
            return {**body, "epoch": current}
        await state.notifier.wait(left)
        await asyncio.sleep(0.05)  # let a burst of registrations land: one answer, not one per device


@app.post("/v1/broker/applied", dependencies=[Depends(broker_feed)])
async def broker_applied(body: Applied) -> dict[str, int]:
    """The broker reports the credential version it has loaded (after its SIGHUP)."""
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE auth_meta SET value = greatest(value::bigint, %s)::text WHERE key = 'broker_applied'",
            (body.version,),
        )
        await conn.execute(f"NOTIFY {feed.APPLIED_CHANNEL}")
    return {"applied": body.version}


@app.get("/v1/broker/status")
async def broker_status(
    min_applied: int = 0, wait: float = 0.0, _: Principal = Depends(operator)
) -> dict[str, Any]:
    """Latest credential version and the one the broker has loaded; optionally wait for `min_applied`."""
    deadline = time.monotonic() + min(max(wait, 0.0), 30.0)
    while True:
        version, applied = await feed.broker_applied(state.pool)
        left = deadline - time.monotonic()
        if applied >= min_applied or left <= 0:
            return {"version": version, "applied": applied, "in_sync": applied >= version}
        await state.notifier.wait(min(left, 0.5), feed.APPLIED_CHANNEL)
