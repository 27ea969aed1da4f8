"""The consumer: a persistent MQTT v5 session on a shared subscription; a batch is acked only after its commit.

One asyncio thread does everything: it reads the broker's bytes in large chunks, validates each
PUBLISH into a row line, closes a batch at BATCH_MAX_ROWS or BATCH_MAX_MS (or as soon as a
database connection is free, when all were busy for longer; while an earlier batch commits, only once
that commit ends or is STORE_SLOW_MS old, so that batches grow with the load), stores it in one
statement on one of DB_WRITERS connections (so one slow commit does not hold up the next batch) and,
once it and every earlier batch have committed, sends its PUBACKs in one write, in the order the
messages came. Acks of an earlier connection are dropped: the broker redelivers those messages on the new
one, and the database skips what it already has. A message that is not a valid reading, or a row the
database refuses (the batch is split until such rows are alone), goes to the dead_letters table in
the same batch and is acknowledged with it: a poison message never holds up the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from iot_common.mqtt_url import BrokerUrl

from ingestion_service import metrics
from ingestion_service import mqtt_codec as mq
from ingestion_service.db import BatchWriter, DeadLetter
from ingestion_service.payload import Rejected, device_of, row_line, timestamp_text
from ingestion_service.session import Refused, Session
from ingestion_service.settings import Settings

log = logging.getLogger("ingestion")
LINK_ERRORS = (OSError, ConnectionError, TimeoutError, mq.ProtocolError, IndexError, UnicodeError)


@dataclass
class Batch:
    """Messages waiting to be committed: row lines (with their ts and payload), dead letters, and the packet
    ids to ack on one connection."""

    generation: int
    lines: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)
    count: int = 0
    first_at: float = 0.0


class Consumer:
    """Receives telemetry, batches it, writes each batch in one transaction, then acknowledges it."""

    def __init__(self, settings: Settings, on_will: Callable[[bytes], None] | None = None,
                 primary: bool = True) -> None:
        self.s = settings
        self.on_will = on_will  # called with the client id of a replica whose connection died
        self.primary = primary  # False for a consumer resuming a dead replica's session (it owns no gauges)
        self._will_subscription = 0
        self._will_prefix = settings.wills.removesuffix("+")  # the topics of this share group's wills start so
        self._telemetry_subscription = 0
        self._awaited: set[int] = set()  # packet ids of this connection's SUBSCRIBEs not yet acknowledged
        self._refused = False  # the broker refused one of this connection's subscriptions
        self.broker = BrokerUrl.parse(settings.mqtt_url)
        self.writers = [BatchWriter(settings.database_url) for _ in range(settings.db_writers)]
        self._free: asyncio.Queue[BatchWriter] = asyncio.Queue()
        for writer in self.writers:
            self._free.put_nowait(writer)
        self.generation = 0  # bumped on every (re)connect: acks of older connections are void
        self.batch = Batch(self.generation)
        self.session: Session | None = None
        self.connected = False
        self.subscribed = False  # every SUBSCRIBE of this connection granted (health's mqtt_subscribed)
        self.unsubscribed_since: float | None = time.monotonic()  # None while the group's subscription is granted
        self.db_failing_since: float | None = None
        self.last_message = 0.0
        self.stopping = False
        self.finished = False
        self.in_flight = 0  # batches taken but not yet acknowledged
        self._rejected_logged = 0
        self._has_messages = asyncio.Event()
        self._full = asyncio.Event()
        self._storing: dict[BatchWriter, float] = {}  # writers storing a batch, and since when
        self._unsubscribed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then leave the share group, drain and disconnect."""
        tasks = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._connect_loop())]
        await stop.wait()
        await self._stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in self.writers:
            await writer.close()

    async def _connect_loop(self) -> None:
        delay = 0.2
        while not self.finished:
            try:
                session = await Session.open(self.broker, self.s)
            except (Refused, *LINK_ERRORS) as exc:
                log.warning("cannot connect to %s:%s (%s); retrying in %.1f s", self.broker.host, self.broker.port,
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            started = time.monotonic()
            await self._serve(session)
            delay = 0.2 if time.monotonic() - started > 5 else min(delay * 2, 5.0)
            if not self.finished:
                await asyncio.sleep(delay)

    async def _serve(self, session: Session) -> None:
        """Use one connection until it ends."""
        self.generation += 1
        self.batch.acks.clear()  # those messages came on the previous connection: the broker redelivers them
        self.batch.generation = self.generation
        self.session, self.connected = session, True
        self.subscribed, self._refused = False, False
        self._awaited.clear()
        if self.primary:
            metrics.CONNECTS.inc()
            metrics.CONNECTED.set(1)
        log.info("connected to %s:%s as %s (session present: %s)", self.broker.host, self.broker.port,
                 self.s.client_id, session.session_present)
        if not self.stopping:
            self._telemetry_subscription = session.packet_id()
            self._awaited.add(self._telemetry_subscription)
            session.send(mq.subscribe(self._telemetry_subscription, self.s.subscription))
        if self.on_will is not None and not self.stopping:
            # wills are retained until the next connection with that id empties them, so this SUBSCRIBE brings
            # those of replicas that died before it (while this one was away, or before its SUBACK); QoS 0:
            # nothing queued while offline, hence no announcement whose session has since been taken back
            self._will_subscription = session.packet_id()
            self._awaited.add(self._will_subscription)
            session.send(mq.subscribe(self._will_subscription, self.s.wills, qos=0))
        pinger = asyncio.create_task(session.pinger())
        try:
            while True:
                self._handle(await session.packets())
        except LINK_ERRORS as exc:
            if not self.finished:
                log.warning("disconnected from the broker (%s); reconnecting", exc)
        finally:
            pinger.cancel()
            self.session, self.connected, self.subscribed = None, False, False
            self.unsubscribed_since = self.unsubscribed_since or time.monotonic()
            if self.primary:
                metrics.CONNECTED.set(0)
            await session.close()

    def _handle(self, packets: list[mq.Packet | mq.Publish]) -> None:
        """Take the packets of one read: PUBLISHes into the batch, the rest checked."""
        now = time.time()
        now_text = timestamp_text(now)
        received = 0
        will_prefix = self._will_prefix
        for p in packets:
            if isinstance(p, tuple):
                if p[0].startswith(will_prefix):
                    self._announced(p)
                    continue
                self._receive(p, now, now_text)
                received += 1
            elif p.kind == mq.SUBACK:
                pid, codes = mq.acked_codes(p)
                refused = any(code >= 0x80 for code in codes)
                if pid == self._will_subscription and refused:
                    log.warning("subscription to %s refused (%s): dead replicas' sessions will wait for their "
                                "restart", self.s.wills, codes)
                elif refused:
                    raise mq.ProtocolError(f"subscription to {self.s.subscription} refused: {codes}")
                self._subacked(pid, refused)
            elif p.kind == mq.DISCONNECT:
                raise ConnectionError(f"the broker disconnected us (reason 0x{mq.reason_of(p):02x})")
            elif p.kind == mq.UNSUBACK:
                self._unsubscribed.set()
            elif p.kind == mq.PINGRESP:
                if self.session is not None:
                    self.session.pongs += 1
            elif p.kind != mq.PUBACK:
                raise mq.ProtocolError(f"unexpected packet type {p.kind}")
        if received:
            metrics.RECEIVED.inc(received)
            self.last_message = time.monotonic()

    def _subacked(self, packet_id: int, refused: bool) -> None:
        """Note a SUBACK: subscribed once every SUBSCRIBE of this connection is granted."""
        self._awaited.discard(packet_id)
        self._refused = self._refused or refused
        if packet_id == self._telemetry_subscription and not refused:
            self.unsubscribed_since = None
        self.subscribed = not self._awaited and not self._refused

    def _announced(self, msg: mq.Publish) -> None:
        """A replica's will: its connection died; hand its client id over for adoption (an empty one: a
        connection with that id emptied it)."""
        _topic, payload, qos, packet_id = msg
        if qos and self.session is not None:
            self.session.send(mq.pubacks([packet_id]))
        if self.on_will is not None and payload and not self.stopping:  # a stopping replica adopts nothing
            self.on_will(payload)

    def _receive(self, msg: mq.Publish, now: float, now_text: str) -> None:
        """Add a telemetry message to the batch: its row, or a dead letter."""
        topic, payload, qos, packet_id = msg
        batch = self.batch
        try:
            line, ts = row_line(device_of(topic), payload, now_text)
        except Rejected as exc:
            line, ts = None, 0.0
            self._rejected(batch, msg, exc, now)
        if not batch.count:
            batch.first_at = time.monotonic()
            self._has_messages.set()
        batch.count += 1
        if qos:
            batch.acks.append(packet_id)
        if line is not None:
            batch.lines.append(line)
            batch.ts.append(ts)
            batch.payloads.append(payload)
        if batch.count >= self.s.batch_max_rows:
            self._full.set()

    def _rejected(self, batch: Batch, msg: mq.Publish, exc: Rejected, now: float) -> None:
        """Count a message that is not a valid reading, and keep it as a dead letter of the batch."""
        topic, payload, _qos, _packet_id = msg
        metrics.REJECTED.labels(exc.reason).inc()
        device = None if exc.reason == "topic" else device_of(topic)
        batch.dead.append(DeadLetter(device, topic.replace("\x00", "")[:256], payload[:1024], f"{exc.reason}: {exc}",
                                     now))
        self._rejected_logged += 1
        if self._rejected_logged <= 5 or self._rejected_logged % 1000 == 0:
            log.info("rejected a message on %s: %s (%d so far)", topic[:80], exc, self._rejected_logged)

    async def _take_batch(self) -> Batch:
        """Wait until a batch is due and take it: full, or its first message BATCH_MAX_MS old and none of this
        replica's stores in flight, or the latest of those STORE_SLOW_MS old (a slow commit does not hold up the
        next batch). Under load a batch so grows while the one before commits: fewer, larger transactions."""
        while not self.batch.count:
            self._has_messages.clear()
            await self._has_messages.wait()
        while self.batch.count < self.s.batch_max_rows:
            due = self.batch.first_at + self.s.batch_max_seconds
            if self._storing:
                due = max(due, max(self._storing.values()) + self.s.store_slow_seconds)
            left = due - time.monotonic()
            if left <= 0:
                break
            self._full.clear()  # set when the batch fills up or a store ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), left)
        batch, self.batch = self.batch, Batch(self.generation)
        self.in_flight += 1
        metrics.PENDING.set(batch.count)
        return batch

    async def _write_loop(self) -> None:
        """Hand each due batch to a free connection; acknowledge batches in the order they were taken."""
        order: asyncio.Queue[tuple[Batch, asyncio.Task[None]]] = asyncio.Queue()
        acker = asyncio.create_task(self._ack_loop(order))
        stores: set[asyncio.Task[None]] = set()
        try:
            while True:
                writer = await self._free.get()  # none free: the batch keeps growing meanwhile
                batch = await self._take_batch()
                task = asyncio.create_task(self._store(batch, writer))
                stores.add(task)
                task.add_done_callback(stores.discard)
                order.put_nowait((batch, task))
        finally:
            acker.cancel()
            for task in list(stores):
                task.cancel()

    async def _ack_loop(self, order: asyncio.Queue[tuple[Batch, asyncio.Task[None]]]) -> None:
        while True:
            batch, task = await order.get()
            await task
            self._ack(batch)
            self.in_flight -= 1
            metrics.PENDING.set(self.batch.count)

    async def _store(self, batch: Batch, writer: BatchWriter) -> None:
        """Write a batch and its dead letters, retrying with backoff while the database fails (nothing is acked
        meanwhile); rows the database refuses for their content become dead letters."""
        started, backoff, inserted, refused = time.monotonic(), 0.1, 0, 0
        self._storing[writer] = started
        try:
            while batch.lines or batch.dead:
                try:
                    inserted, rows = await writer.store(batch.lines) if batch.lines else (0, [])
                    dead = batch.dead + [self._refused_row(batch, index, reason) for index, reason in rows]
                    if dead:
                        await writer.write_dead(dead, self.s.dead_letter_max_rows)
                        for letter in dead:
                            metrics.DEAD_LETTERS.labels(letter.reason.partition(":")[0]).inc()
                    refused = len(rows)
                    break
                except Exception as exc:  # any database failure: keep the batch, retry, ack nothing
                    metrics.DB_ERRORS.inc()
                    self.db_failing_since = self.db_failing_since or time.monotonic()
                    log.warning("batch of %d failed (%s); retrying in %.1f s", len(batch.lines),
                                type(exc).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            del self._storing[writer]
            self._full.set()  # the next batch may be due now
            self._free.put_nowait(writer)
        committed = time.time()
        self.db_failing_since = None
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        metrics.BATCH_ROWS.observe(batch.count)
        metrics.STORED.inc(inserted)
        metrics.DUPLICATES.inc(len(batch.lines) - inserted - refused)
        metrics.observe_all(metrics.LATENCY, [committed - ts for ts in batch.ts])

    @staticmethod
    def _refused_row(batch: Batch, index: int, reason: str) -> DeadLetter:
        """The dead letter of a row the database refused."""
        fields = batch.lines[index].split("\t")
        log.warning("the database refused a reading of %s (%s); kept as a dead letter", fields[0], reason)
        return DeadLetter(fields[0], f"devices/{fields[0]}/telemetry", batch.payloads[index][:1024], reason,
                          datetime.fromisoformat(fields[6].rstrip("\n")).timestamp())

    def _ack(self, batch: Batch) -> None:
        """PUBACK a committed batch in one write, if it came on the current connection."""
        session = self.session
        if session is not None and batch.acks and batch.generation == self.generation:
            session.send(mq.pubacks(batch.acks))

    def health(self) -> tuple[bool, dict[str, object]]:
        """Unhealthy only after 30 s without the group's subscription granted (the broker down, or refusing it)
        or with the database failing; `mqtt_subscribed` says every subscription of this connection is granted."""
        now = time.monotonic()
        down = now - self.unsubscribed_since if self.unsubscribed_since else 0.0
        failing = now - self.db_failing_since if self.db_failing_since else 0.0
        ok = down < 30 and failing < 30
        return ok, {"status": "ok" if ok else "unhealthy", "mqtt_connected": self.connected,
                    "mqtt_subscribed": self.subscribed, "db_ok": self.db_failing_since is None,
                    "client_id": self.s.client_id}

    async def _drain(self, seconds: float) -> bool:
        """Wait until nothing is batched or in flight, nothing arrived for 0.5 s, and a PINGREQ sent after
        our last PUBACKs is answered with nothing before its PINGRESP (the broker sends what our acks let
        it send before it answers a later ping); False at the deadline or when the connection ends."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (session := self.session) is not None:
            idle = not self.batch.count and not self.in_flight
            if idle and time.monotonic() - self.last_message > 0.5:
                seen = self.last_message
                session.ping()
                while session.pongs < session.pings and self.session is session and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                if session.pongs >= session.pings and self.last_message == seen and not self.batch.count:
                    return True
            await asyncio.sleep(0.05)
        return False

    async def _finish(self, drained: bool, session: Session | None) -> None:
        """Disconnect: ending the session if everything was drained, else keeping it for redelivery and
        (with adoption on) publishing our will, so that a survivor resumes it."""
        self.finished = True
        if session is not None:
            await session.close(mq.disconnect(0) if drained else mq.disconnect(with_will=self.s.adopt_sessions))
        log.info("%s %s", self.s.client_id, "drained, session ended" if drained and session
                 else "stopped; session kept for redelivery")

    async def _stop(self) -> None:
        """Leave the share group, drain what was delivered, then end the session if nothing is left."""
        self.stopping, self.subscribed = True, False
        log.info("stopping: unsubscribing and draining")
        if self.session is not None:
            self.session.send(mq.unsubscribe(self.session.packet_id(), self.s.subscription))
        await self._finish(await self._drain(self.s.drain_seconds), self.session)

    async def adopt(self) -> None:
        """Resume the session of a replica whose connection died (this consumer's client id): leave its share
        group, store and acknowledge what the broker queued for it, then end the session."""
        self.stopping = True
        try:
            session = await Session.open(self.broker, self.s)
        except (Refused, *LINK_ERRORS) as exc:
            log.warning("cannot resume the session of %s (%s)", self.s.client_id, exc)
            return
        tasks = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._serve(session))]
        try:
            drained = True
            if session.session_present:
                metrics.ADOPTED.inc()
                log.info("resuming the session of %s, whose connection died", self.s.client_id)
                # the broker sends what it had queued right after CONNACK, so before this UNSUBACK
                self.last_message = time.monotonic()
                session.send(mq.unsubscribe(session.packet_id(), self.s.subscription))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._unsubscribed.wait(), 10)
                drained = self._unsubscribed.is_set() and await self._drain(self.s.adopt_seconds)
            await self._finish(drained, session)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in self.writers:
                await writer.close()
