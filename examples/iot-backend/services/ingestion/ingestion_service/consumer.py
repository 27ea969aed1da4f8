"""The MQTT side: a persistent v5 session on a shared subscription, acks sent only after commit."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingestion_service import metrics
from ingestion_service.db import BatchWriter
from ingestion_service.mqtt_url import BrokerUrl
from ingestion_service.payload import Rejected, copy_line, device_of
from ingestion_service.settings import Settings

log = logging.getLogger("ingestion")


def no_delay(client: mqtt.Client) -> None:
    """Disable Nagle's algorithm: acks and publishes are small and latency matters (paho leaves it on)."""
    sock = client.socket()
    raw = getattr(sock, "_socket", sock)  # the TCP socket under paho's WebSocket wrapper
    with contextlib.suppress(AttributeError, OSError):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class Batch:
    """Messages waiting to be committed: COPY lines, and (connection, packet id) pairs to ack."""

    lines: list[str] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    first_at: float = 0.0


class Consumer:
    """Receives telemetry, batches it, writes each batch in one transaction, then acknowledges it."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.broker = BrokerUrl.parse(settings.mqtt_url)
        self.writer = BatchWriter(settings.database_url)
        self.batch = Batch()
        self.cond = threading.Condition()
        self.generation = 0  # bumped on every (re)connect: acks of older connections are void
        self.connected = False
        self.disconnected_since: float | None = time.monotonic()
        self.db_failing_since: float | None = None
        self.last_message = 0.0
        self.stopping = False
        self.writer_busy = False
        self.client = self._client()
        self._rejected_logged = 0

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.s.client_id,
            protocol=mqtt.MQTTv5,
            transport=self.broker.transport,
            manual_ack=True,
        )
        if self.broker.transport == "websockets":
            client.ws_set_options(path=self.broker.path)
        if self.broker.tls:
            client.tls_set(ca_certs=self.s.ca_file)
        client.username_pw_set(self.s.mqtt_username, self.s.mqtt_password)
        client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def connect_properties(self) -> Properties:
        """CONNECT properties: a session that outlives the connection, and a wide receive window."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.s.session_expiry
        props.ReceiveMaximum = self.s.receive_maximum
        return props

    def start(self) -> None:
        """Connect (retrying in the background) and start the network and writer threads."""
        threading.Thread(target=self._write_loop, name="writer", daemon=True).start()
        self.client.connect_async(
            self.broker.host, self.broker.port, keepalive=30, clean_start=False, properties=self.connect_properties()
        )
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the connection: %s", reason)
            return
        with self.cond:
            self.generation += 1
            self.connected, self.disconnected_since = True, None
        no_delay(client)
        metrics.CONNECTS.inc()
        metrics.CONNECTED.set(1)
        present = getattr(flags, "session_present", False)
        log.info("connected to %s:%s as %s (session present: %s)", self.broker.host, self.broker.port,
                 self.s.client_id, present)
        if not self.stopping:
            client.subscribe(self.s.subscription, qos=1)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        with self.cond:
            self.connected = False
            self.disconnected_since = self.disconnected_since or time.monotonic()
        metrics.CONNECTED.set(0)
        if not self.stopping:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        metrics.RECEIVED.inc()
        line, ts = None, 0.0
        try:
            line, ts = copy_line(device_of(msg.topic), msg.payload, now)
        except Rejected as exc:
            metrics.REJECTED.labels(exc.reason).inc()
            self._rejected_logged += 1
            if self._rejected_logged <= 5 or self._rejected_logged % 1000 == 0:
                log.info("rejected a message on %s: %s (%d so far)", msg.topic[:80], exc, self._rejected_logged)
        with self.cond:
            batch = self.batch
            if not batch.acks:
                batch.first_at = time.monotonic()
            batch.acks.append((self.generation, msg.mid))
            if line is not None:
                batch.lines.append(line)
                batch.ts.append(ts)
            self.last_message = time.monotonic()
            if len(batch.acks) == 1 or len(batch.acks) >= self.s.batch_max_rows:
                self.cond.notify()

    def _take_batch(self) -> Batch:
        """Wait until a batch is due (full or old enough) and take it."""
        with self.cond:
            while not self.batch.acks:
                self.cond.wait(0.5)
            due = self.batch.first_at + self.s.batch_max_seconds
            while len(self.batch.acks) < self.s.batch_max_rows and (left := due - time.monotonic()) > 0:
                self.cond.wait(left)
            batch, self.batch = self.batch, Batch()
            self.writer_busy = True
            metrics.PENDING.set(len(batch.acks))
            return batch

    def _write_loop(self) -> None:
        backoff = 0.1
        while True:
            batch = self._take_batch()
            while True:
                started = time.monotonic()
                try:
                    inserted = self.writer.write(batch.lines) if batch.lines else 0
                    break
                except Exception as exc:  # any database failure: keep the batch, retry, ack nothing
                    metrics.DB_ERRORS.inc()
                    self.db_failing_since = self.db_failing_since or time.monotonic()
                    log.warning("batch of %d failed (%s); retrying in %.1f s", len(batch.lines),
                                type(exc).__name__, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            committed = time.time()
            backoff, self.db_failing_since = 0.1, None
            metrics.BATCH_SECONDS.observe(time.monotonic() - started)
            metrics.BATCH_ROWS.observe(len(batch.acks))
            metrics.STORED.inc(inserted)
            metrics.DUPLICATES.inc(len(batch.lines) - inserted)
            for ts in batch.ts:
                metrics.LATENCY.observe(committed - ts)
            self._ack(batch)

    def _ack(self, batch: Batch) -> None:
        """Acknowledge a committed batch; acks of an earlier connection are dropped (the broker redelivers)."""
        with self.cond:
            generation, connected = self.generation, self.connected
        for gen, mid in batch.acks:
            if gen == generation and connected:
                self.client.ack(mid, 1)
        with self.cond:
            self.writer_busy = False
            metrics.PENDING.set(len(self.batch.acks))
            self.cond.notify_all()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Unhealthy only after 30 s without the broker or with the database failing."""
        now = time.monotonic()
        down = now - self.disconnected_since if self.disconnected_since else 0.0
        failing = now - self.db_failing_since if self.db_failing_since else 0.0
        ok = down < 30 and failing < 30
        return ok, {"status": "ok" if ok else "unhealthy", "mqtt_connected": self.connected,
                    "db_ok": self.db_failing_since is None, "client_id": self.s.client_id}

    def stop(self) -> None:
        """Leave the share group, drain what was delivered, then end the session if nothing is left."""
        self.stopping = True
        log.info("stopping: unsubscribing and draining")
        if self.connected:
            self.client.unsubscribe(self.s.subscription)
        deadline = time.monotonic() + self.s.drain_seconds
        drained = False
        while time.monotonic() < deadline:
            with self.cond:
                idle = not self.batch.acks and not self.writer_busy
                quiet = time.monotonic() - self.last_message > 0.5
            if idle and quiet:
                drained = True
                break
            time.sleep(0.05)
        if drained and self.connected:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0  # nothing is left in flight: the session may go
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()  # keep the session: the broker redelivers to our next start
        self.client.loop_stop()
        log.info("stopped (%s)", "drained, session ended" if drained else "session kept for redelivery")
