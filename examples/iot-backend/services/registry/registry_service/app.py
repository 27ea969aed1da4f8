"""HTTP API of the device registry (public, OpenAPI at /docs): every route needs an operator token."""

# ruff: noqa: B008  (FastAPI declares parameters with Depends()/Query() defaults)

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from iot_common.web import database_health, open_database
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, constr, validator

from registry_service.auth_client import AuthClient
from registry_service.commands import CommandPublisher
from registry_service.dashboard import dashboard_routes
from registry_service.db import COMPONENT, MIGRATIONS, make_pool
from registry_service.dead_letters import dead_letter_routes
from registry_service.inputs import (
    DEVICE_ID,
    DEVICE_ID_RULE,
    MAX_ARGS_BYTES,
    MAX_COMMAND_CHARS,
    MAX_METADATA_BYTES,
    MAX_NAME_CHARS,
    MAX_OFFSET,
    check_device_id,
    excerpt,
    instant,
    json_rule,
    text_rule,
    validation_failed,
)
from registry_service.limits import BodyLimit
from registry_service.registrar import Registrar
from registry_service.settings import Settings, max_body_bytes

log = logging.getLogger("registry")
TIME_HELP = "ISO 8601 (UTC when no offset is given) or Unix seconds (not milliseconds)"
READING_COLUMNS = ("device_id", "seq", "ts", "temperature", "humidity", "battery", "received_at")


class State:
    """Process-wide objects, created at start-up."""

    settings: Settings
    pool: AsyncConnectionPool
    auth: AuthClient
    registrar: Registrar
    commands: CommandPublisher | None = None


state = State()


async def startup() -> None:
    """Migrate the schema and open the pool and the auth client."""
    state.settings = Settings.from_env()
    state.pool = make_pool(state.settings.database_url)
    await open_database(state.settings.database_url, COMPONENT, MIGRATIONS, state.pool)
    state.auth = AuthClient(state.settings.auth_url, state.settings.token_cache_seconds)
    state.registrar = Registrar(state.pool, state.auth)
    state.registrar.start()
    if state.settings.mqtt_url and state.settings.mqtt_password:
        state.commands = CommandPublisher(state.settings.mqtt_url, state.settings.mqtt_password)
    log.info("registry ready (commands %s)", "enabled" if state.commands else "disabled: no MQTT_URL/password")


async def shutdown() -> None:
    """Close the MQTT client, the auth client and the pool."""
    if state.commands:
        state.commands.close()
    await state.registrar.stop()
    await state.auth.close()
    await state.pool.close()


app = FastAPI(
    title="iot-backend device registry",
    version="1.0",
    description="Register devices (MQTT credentials are returned once), inspect them and their readings, "
    "decommission them. Every route needs `Authorization: Bearer <operator token>`.",
    on_startup=[startup],  # not lifespan: Debian's FastAPI 0.92 has no lifespan parameter
    on_shutdown=[shutdown],
    exception_handlers={RequestValidationError: validation_failed},
)
app.add_middleware(BodyLimit, max_bytes=max_body_bytes())


# strict: pydantic 1 would otherwise store `false` as the name "False". The values are plain str: that is what
# the checker is told, as constr() makes a class that mypy cannot take for a type.
if TYPE_CHECKING:
    DeviceIdText = str
    NameText = str
    CommandText = str
else:
    DeviceIdText = constr(strict=True, regex=DEVICE_ID_RULE)  # the route checks it again with \A…\Z
    NameText = constr(strict=True, max_length=MAX_NAME_CHARS)
    CommandText = constr(strict=True, max_length=MAX_COMMAND_CHARS)


class JsonObject(BaseModel):
    """A request body that must be a JSON object (pydantic 1 would otherwise turn `[]` into `{}`)."""

    @classmethod
    def validate(cls, value: Any) -> Any:
        """Refuse anything but an object, then validate as usual."""
        if not isinstance(value, dict | cls):
            raise TypeError("must be a JSON object")
        return super().validate(value)


class NewDevice(JsonObject):
    """Request body to register a device; the id is generated when omitted."""

    id: DeviceIdText | None = Field(None, nullable=True, description="generated when omitted or null")
    name: NameText = ""
    metadata: dict[str, Any] = Field({}, description=f"a JSON object of at most {MAX_METADATA_BYTES} bytes")
    _name = validator("name", allow_reuse=True)(text_rule("name", MAX_NAME_CHARS))
    _metadata = validator("metadata", allow_reuse=True)(json_rule("metadata", MAX_METADATA_BYTES))


class NewDevices(JsonObject):
    """Request body to register up to 1,000 devices in one call."""

    devices: list[NewDevice]


class Command(JsonObject):
    """A command for a device, published as JSON to `devices/<id>/commands`."""

    command: CommandText
    args: dict[str, Any] = Field({}, description=f"a JSON object of at most {MAX_ARGS_BYTES} bytes")
    _command = validator("command", allow_reuse=True)(text_rule("command", MAX_COMMAND_CHARS))
    _args = validator("args", allow_reuse=True)(json_rule("args", MAX_ARGS_BYTES))


class Operator(BaseModel):
    """The caller, as auth knows them."""

    name: str
    admin: bool
    token: str


async def operator(request: Request) -> Operator:
    """Dependency: the bearer token must be a valid operator token (checked by auth)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if len(token) > 512 or not (token.isascii() and token.isprintable()) or " " in token:
        raise HTTPException(401, "malformed bearer token", headers={"WWW-Authenticate": "Bearer"})
    principal = await state.auth.verify(token)
    return Operator(name=principal["name"], admin=principal["admin"], token=token)


def device_path(device_id: str = Path(..., regex=DEVICE_ID_RULE, description="a device id")) -> str:
    """Dependency: the path's device id, which must be a valid id (422 otherwise, before any query)."""
    return check_device_id(device_id)


def device_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """Shape a devices row (with last_seen) for the API."""
    keys = ("id", "name", "metadata", "status", "created_at", "decommissioned_at", "last_seen")
    return dict(zip(keys, row, strict=True))


DEVICE_SELECT = (
    "SELECT d.id, d.name, d.metadata, d.status, d.created_at, d.decommissioned_at, s.last_seen"
    " FROM devices d LEFT JOIN device_last_seen s ON s.device_id = d.id"
)
DEVICE_SELECT_NO_SEEN = (
    "SELECT id, name, metadata, status, created_at, decommissioned_at, NULL::timestamptz FROM devices d"
)


async def query_devices(where: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Select devices with last seen (ingestion's table may not exist yet on a fresh database)."""
    async with state.pool.connection() as conn:
        try:
            return await (await conn.execute(f"{DEVICE_SELECT} {where}", params)).fetchall()
        except psycopg.errors.UndefinedTable:
            await conn.rollback()
            return await (await conn.execute(f"{DEVICE_SELECT_NO_SEEN} {where}", params)).fetchall()


@app.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """Healthy when the database answers (503 otherwise)."""
    return await database_health(state.pool)


@app.post("/devices", status_code=201, tags=["devices"])
async def register_device(
    body: NewDevice,
    wait_active: float = Query(0.0, ge=0, le=30, description="seconds to wait until the broker accepts the device"),
    who: Operator = Depends(operator),
) -> dict[str, Any]:
    """Register a device and return its MQTT credentials. The password is shown only this once."""
    device_id = check_device_id(body.id or f"dev-{secrets.token_hex(5)}")
    # concurrent registrations share one transaction and one call to auth (registrar.py)
    created_at, credentials = await state.registrar.register(who.token, device_id, body.name, body.metadata)
    active = None
    if wait_active > 0:
        status = await state.auth.broker_status(who.token, credentials["version"], wait_active)
        active = status["applied"] >= credentials["version"]
    log.info("registered device %s by %s", device_id, who.name)
    return {
        "id": device_id,
        "name": body.name,
        "status": "active",
        "created_at": created_at,
        "active_on_broker": active,
        "mqtt": mqtt_block(device_id, credentials["password"]),
    }


def mqtt_block(device_id: str, password: str) -> dict[str, str]:
    """The MQTT part of a registration answer."""
    return {
        "username": device_id,
        "password": password,
        "telemetry_topic": f"devices/{device_id}/telemetry",
        "command_topic": f"devices/{device_id}/commands",
    }


@app.post("/devices/bulk", status_code=201, tags=["devices"])
async def register_devices(
    body: NewDevices,
    wait_active: float = Query(0.0, ge=0, le=30, description="seconds to wait until the broker accepts them"),
    who: Operator = Depends(operator),
) -> list[dict[str, Any]]:
    """Register up to 1,000 devices at once (all or none); each answer holds its password, shown once."""
    if not 1 <= len(body.devices) <= 1000:
        raise HTTPException(422, "give 1 to 1000 devices")
    ids = [d.id or f"dev-{secrets.token_hex(5)}" for d in body.devices]
    bad = [excerpt(i) for i in ids if not DEVICE_ID.match(i)][:5]
    if bad or len(set(ids)) != len(ids):
        raise HTTPException(422, f"device ids must be unique and match {DEVICE_ID_RULE}: {', '.join(bad)}")
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO devices (id, name, metadata)"
            " SELECT i, n, m::jsonb FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(i, n, m)"
            " ON CONFLICT (id) DO NOTHING RETURNING id, created_at",
            (ids, [d.name for d in body.devices], [json.dumps(d.metadata) for d in body.devices]),
        )
        created = {row[0]: row[1] for row in await cur.fetchall()}
        if len(created) != len(ids):
            taken = sorted(set(ids) - set(created))
            raise HTTPException(409, f"devices exist (ids are never reused): {taken[:5]}")
        credentials = await state.auth.issue_many(ids, who.token)  # an error rolls the inserts back
    active = None
    if wait_active > 0:
        top = max(c["version"] for c in credentials)
        active = (await state.auth.broker_status(who.token, top, wait_active))["applied"] >= top
    log.info("registered %d devices by %s", len(ids), who.name)
    return [
        {"id": c["device_id"], "name": d.name, "status": "active", "created_at": created[c["device_id"]],
         "active_on_broker": active, "mqtt": mqtt_block(c["device_id"], c["password"])}
        for c, d in zip(credentials, body.devices, strict=True)
    ]


@app.get("/devices", tags=["devices"])
async def list_devices(
    status: str | None = Query(None, description="active or decommissioned"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    _: Operator = Depends(operator),
) -> list[dict[str, Any]]:
    """List devices with their status and last seen time."""
    if status not in (None, "active", "decommissioned"):
        raise HTTPException(422, "status must be active or decommissioned")
    where, params = ("WHERE d.status = %s", (status,)) if status else ("", ())
    rows = await query_devices(f"{where} ORDER BY d.created_at, d.id LIMIT %s OFFSET %s", (*params, limit, offset))
    return [device_row(r) for r in rows]


app.include_router(dead_letter_routes(lambda: state.pool, operator))
app.include_router(dashboard_routes(lambda: state.pool, operator, device_path))


@app.get("/devices/{device_id}", tags=["devices"])
async def get_device(_: Operator = Depends(operator), device_id: str = Depends(device_path)) -> dict[str, Any]:
    """One device: status, created, decommissioned and last seen."""
    rows = await query_devices("WHERE d.id = %s", (device_id,))
    if not rows:
        raise HTTPException(404, "no such device")
    return device_row(rows[0])


async def select_readings(where: list[str], params: list[Any], limit: int) -> list[dict[str, Any]]:
    """Run a readings query, newest first; an empty list when ingestion has not created the table yet."""
    sql = (  # conditions are constants from time_filters; values go as parameters
        f"SELECT {', '.join(READING_COLUMNS)} FROM readings"  # noqa: S608
        f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY ts DESC, seq DESC LIMIT %s"
    )
    async with state.pool.connection() as conn:
        try:
            rows = await (await conn.execute(sql, (*params, limit))).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows]


def time_filters(since: str | None, until: str | None) -> tuple[list[str], list[Any]]:
    """SQL conditions for a [since, until) window on the device timestamp; 422 for a time it cannot read."""
    where, params = [], []
    start, end = instant("since", since), instant("until", until)
    if start is not None:
        where.append("ts >= %s")
        params.append(start)
    if end is not None:
        where.append("ts < %s")
        params.append(end)
    return where, params


@app.get("/devices/{device_id}/readings", tags=["readings"])
async def device_readings(
    _: Operator = Depends(operator),
    device_id: str = Depends(device_path),
    since: str | None = Query(None, max_length=64, description=f"{TIME_HELP}; inclusive"),
    until: str | None = Query(None, max_length=64, description=f"{TIME_HELP}; exclusive"),
    limit: int = Query(100, ge=1, le=10000),
) -> list[dict[str, Any]]:
    """A device's recent readings, newest first, optionally within a time window."""
    where, params = time_filters(since, until)
    return await select_readings(["device_id = %s", *where], [device_id, *params], limit)


@app.get("/readings", tags=["readings"])
async def recent_readings(
    since: str | None = Query(None, max_length=64, description=f"{TIME_HELP}; inclusive"),
    until: str | None = Query(None, max_length=64, description=f"{TIME_HELP}; exclusive"),
    limit: int = Query(100, ge=1, le=10000),
    _: Operator = Depends(operator),
) -> list[dict[str, Any]]:
    """Recent readings of every device, newest first."""
    where, params = time_filters(since, until)
    return await select_readings(where, params, limit)


@app.delete("/devices/{device_id}", tags=["devices"])
async def decommission_device(
    who: Operator = Depends(operator),
    device_id: str = Depends(device_path),
    wait: float = Query(5.0, ge=0, le=30, description="seconds to wait until the broker refuses the device"),
) -> dict[str, Any]:
    """Decommission a device: revoke its credentials; the broker refuses it and drops its connection."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE devices SET status = 'decommissioned', decommissioned_at = coalesce(decommissioned_at, now())"
            " WHERE id = %s RETURNING decommissioned_at",
            (device_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(404, "no such device")
        revoked = await state.auth.revoke(device_id, who.token)
    enforced = None
    if wait > 0:
        status = await state.auth.broker_status(who.token, revoked["version"], wait)
        enforced = status["applied"] >= revoked["version"]
    log.info("decommissioned device %s by %s", device_id, who.name)
    return {"id": device_id, "status": "decommissioned", "decommissioned_at": row[0], "enforced_by_broker": enforced}


@app.post("/devices/{device_id}/commands", status_code=202, tags=["devices"])
async def send_command(body: Command, _: Operator = Depends(operator),
                       device_id: str = Depends(device_path)) -> dict[str, Any]:
    """Publish a command to the device's command topic (QoS 1)."""
    if state.commands is None:
        raise HTTPException(503, "commands are disabled (MQTT_URL or REGISTRY_MQTT_PASSWORD not set)")
    rows = await query_devices("WHERE d.id = %s AND d.status = 'active'", (device_id,))
    if not rows:
        raise HTTPException(404, "no such active device")
    try:
        await asyncio.to_thread(state.commands.publish, device_id, {"command": body.command, "args": body.args})
    except (OSError, TimeoutError) as exc:
        raise HTTPException(503, f"broker unavailable ({type(exc).__name__})") from exc
    return {"id": device_id, "topic": f"devices/{device_id}/commands", "published": True}


@app.get("/broker/status", tags=["ops"])
async def broker_status(who: Operator = Depends(operator)) -> dict[str, Any]:
    """The latest credential version and the one the broker has loaded."""
    return await state.auth.broker_status(who.token)
