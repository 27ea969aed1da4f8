"""Ingestion's tables (readings, device_last_seen, dead_letters), migrated at start, and the batch writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg

MIGRATIONS: list[str] = [
    """
    CREATE TABLE readings (
        device_id   text NOT NULL,
        seq         bigint NOT NULL,            -- device-side sequence number: the message id
        ts          timestamptz NOT NULL,       -- when the device took the reading
        temperature real NOT NULL,
        humidity    real,
        battery     real,
        received_at timestamptz NOT NULL,       -- when ingestion received the message
        stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (device_id, seq)
    );
    CREATE INDEX readings_device_ts ON readings (device_id, ts DESC);
    -- BRIN: rows arrive roughly in ts order; a tiny index that costs almost nothing per insert
    CREATE INDEX readings_ts ON readings USING brin (ts);
    CREATE TABLE device_last_seen (
        device_id text PRIMARY KEY,
        last_seen timestamptz NOT NULL
    );
    """,
    """
    CREATE TABLE dead_letters (
        id          bigserial PRIMARY KEY,
        device_id   text,                       -- NULL when the topic names no device
        topic       text NOT NULL,
        payload     bytea NOT NULL,             -- the first 1 KiB of the message
        reason      text NOT NULL,              -- why it was not stored: a validation or database error
        received_at timestamptz NOT NULL,
        stored_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX dead_letters_device ON dead_letters (device_id, id);
    """,
    # The last-seen rows follow the readings in the database: after each statement that inserts readings
    # (a COPY, an INSERT; rows it skipped on conflict are not among them), one upsert of its devices' rows.
    # Rows are taken with SKIP LOCKED: a row that another writer (the other connection, another replica) has
    # locked is left to it, as its batch is from the same few milliseconds, so batches never queue behind
    # each other's commits (rows of devices seen for the first time are inserted in device id order).
    # stored_at becomes the statement's start (one value per batch, stable): a volatile default made COPY
    # insert row by row instead of in multi-row groups (WAL 412 -> 365 bytes per row).
    """
    CREATE FUNCTION readings_last_seen() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        WITH latest AS (
            SELECT device_id, max(received_at) AS seen FROM new_readings GROUP BY device_id
        ), locked AS (
            SELECT s.device_id FROM device_last_seen s JOIN latest l USING (device_id)
            ORDER BY s.device_id FOR UPDATE OF s SKIP LOCKED
        ), updated AS (
            UPDATE device_last_seen s SET last_seen = greatest(s.last_seen, l.seen)
            FROM latest l JOIN locked k USING (device_id) WHERE s.device_id = l.device_id
        )
        INSERT INTO device_last_seen (device_id, last_seen)
        SELECT device_id, seen FROM latest l
        WHERE NOT EXISTS (SELECT 1 FROM device_last_seen s WHERE s.device_id = l.device_id)
        ORDER BY device_id
        ON CONFLICT (device_id) DO NOTHING;
        RETURN NULL;
    END $$;
    CREATE TRIGGER readings_last_seen AFTER INSERT ON readings REFERENCING NEW TABLE AS new_readings
        FOR EACH STATEMENT EXECUTE FUNCTION readings_last_seen();
    ALTER TABLE readings ALTER COLUMN stored_at SET DEFAULT statement_timestamp();
    """,
]
COMPONENT = "ingestion"

# One statement, one round trip, one implicit transaction (the connection is in autocommit; the
# trigger moves the last-seen rows): the batch travels as a single text parameter of COPY text lines
# and is split by the server. Redeliveries of stored (device_id, seq) are skipped.
WRITE = """
INSERT INTO readings (device_id, seq, ts, temperature, humidity, battery, received_at)
SELECT f[1], f[2]::bigint, f[3]::timestamptz, f[4]::float8, nullif(f[5], '')::float8, nullif(f[6], '')::float8,
       f[7]::timestamptz
FROM (SELECT string_to_array(line, E'\\t') AS f FROM unnest(string_to_array(%s::text, E'\\n')) AS line
      WHERE line <> '') AS lines
ON CONFLICT (device_id, seq) DO NOTHING
"""
# A larger batch is cheaper to store with COPY (one statement too, so one transaction with the trigger),
# which takes the batch whole or not at all: a reading stored before (a redelivery) or refused makes it
# fail, and the batch then goes through WRITE. After a refusal the next COPY_PAUSE batches skip COPY (a
# device repeating its seq would otherwise make every batch pay for both).
COPY_ROWS = "COPY readings (device_id, seq, ts, temperature, humidity, battery, received_at) FROM STDIN (NULL '')"
COPY_MIN_ROWS, COPY_PAUSE = 100, 50


# Dead letters of one batch in one statement, then the oldest beyond DEAD_LETTER_MAX_ROWS dropped.
WRITE_DEAD = """
WITH added AS (
    INSERT INTO dead_letters (device_id, topic, payload, reason, received_at)
    SELECT d, t, p, r, to_timestamp(a) FROM unnest(%s::text[], %s::text[], %s::bytea[], %s::text[], %s::float8[])
        AS x(d, t, p, r, a)
    RETURNING id
)
DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM added) - %s
"""
# SQLSTATE classes of errors that a row's content causes (22 data exception, 23 integrity constraint
# violation): the same rows fail again on retry, so the batch is split to find them. Anything else
# (connection lost, server shutting down, serialization) is retried whole.
ROW_ERROR_CLASSES = ("22", "23")


@dataclass(frozen=True)
class DeadLetter:
    """A message acknowledged but not stored as a reading, and why."""

    device_id: str | None
    topic: str
    payload: bytes
    reason: str
    received_at: float


def refused_rows(exc: BaseException) -> bool:
    """Whether a failed write was refused because of the rows it carried (not the link or the server)."""
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in ROW_ERROR_CLASSES


def error_text(exc: BaseException, limit: int = 200) -> str:
    """A short, storable description of a database error (first line, no NUL)."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    state = getattr(exc, "sqlstate", None)
    return f"database: {state or ''} {text}".replace("\x00", "")[:limit]


class BatchWriter:
    """One connection that stores each batch of row lines in one statement (and so one transaction)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.AsyncConnection | None = None
        self.copy_paused = 0  # batches left that skip COPY after it was refused

    async def store(self, lines: list[str]) -> tuple[int, list[tuple[int, str]]]:
        """Store the rows as write_isolating does (same result, same failures), with one COPY when the batch
        is large; a COPY that the rows make fail leaves nothing stored and the batch goes through WRITE."""
        if len(lines) >= COPY_MIN_ROWS and not self.copy_paused:
            try:
                await self.copy(lines)
                return len(lines), []
            except Exception as exc:
                if not refused_rows(exc):
                    raise
                self.copy_paused = COPY_PAUSE
        self.copy_paused = max(0, self.copy_paused - 1)
        return await self.write_isolating(lines)

    async def copy(self, lines: list[str]) -> None:
        """Insert every row with one COPY (its trigger moves the devices' last-seen rows), committed when this
        returns: all or nothing (a row stored before makes it fail with a unique violation)."""
        async with self._connection() as conn, conn.cursor() as cur, cur.copy(COPY_ROWS) as copy:
            await copy.write("".join(lines))

    async def write(self, lines: list[str]) -> int:
        """Store the rows, committed when this returns (stored (device_id, seq) are skipped); return rows inserted.

        A failure leaves nothing of the batch stored; the connection is kept when the rows were refused
        (the statement failed, the link is fine) and dropped otherwise (the next write reconnects).
        """
        return await self._execute(WRITE, ("".join(lines),))

    async def write_dead(self, letters: list[DeadLetter], keep: int) -> None:
        """Store dead letters in one statement and drop the oldest beyond `keep`; nothing is stored on failure."""
        columns = [list(c) for c in zip(*((d.device_id, d.topic, d.payload, d.reason, d.received_at)
                                          for d in letters), strict=True)]
        await self._execute(WRITE_DEAD, (*columns, keep))

    async def write_isolating(self, lines: list[str], offset: int = 0) -> tuple[int, list[tuple[int, str]]]:
        """Store the rows; if the database refuses some for their content, split the batch in halves until
        each refused row is alone. Return rows inserted and (index, reason) of each refused row.

        The rows of halves that were accepted stay committed if a later half fails for another reason
        (the exception propagates; a retry skips what is stored).
        """
        try:
            return await self.write(lines), []
        except Exception as exc:
            if not refused_rows(exc):
                raise
            if len(lines) == 1:
                return 0, [(offset, error_text(exc))]
        middle = len(lines) // 2
        first, refused_first = await self.write_isolating(lines[:middle], offset)
        second, refused_second = await self.write_isolating(lines[middle:], offset + middle)
        return first + second, refused_first + refused_second

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """The connection (made if there is none); dropped when what runs on it fails for another reason than
        its rows."""
        if self.conn is None or self.conn.closed:
            self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
        try:
            yield self.conn
        except BaseException as exc:
            if not refused_rows(exc):
                await self.close()
            raise

    async def _execute(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one statement on the connection, committed when this returns; return the rows it affected (a
        failure drops the connection unless the rows were refused, as _connection does)."""
        async with self._connection() as conn:
            return (await conn.execute(sql, params)).rowcount

    async def close(self) -> None:
        """Drop the connection (the next write reconnects)."""
        if self.conn is not None:
            try:
                await self.conn.close()
            finally:
                self.conn = None
