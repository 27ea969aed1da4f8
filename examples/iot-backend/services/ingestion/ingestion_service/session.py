"""One MQTT v5 connection of the ingestion subscriber: handshake, packets in, PUBACKs and control packets out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from iot_common.mqtt_url import BrokerUrl

from ingestion_service import mqtt_codec as mq
from ingestion_service.settings import Settings
from ingestion_service.transport import Stream, open_stream

log = logging.getLogger("ingestion.mqtt")


class Refused(ConnectionError):
    """The broker answered CONNECT with a failure reason code."""


class Session:
    """A connected, subscribed MQTT v5 connection; `packets()` yields what the broker sends."""

    def __init__(self, stream: Stream, keepalive: int, session_present: bool) -> None:
        self.stream = stream
        self.keepalive = keepalive
        self.session_present = session_present
        self.buffer = bytearray()
        self.closed = False
        self.silent = False
        self.last_read = time.monotonic()
        self._next_id = 0
        self.pings = 0  # PINGREQs sent and PINGRESPs received on this connection: the broker answers in order,
        self.pongs = 0  # so pongs == pings proves it has handled everything sent before the last PINGREQ

    @staticmethod
    async def open(url: BrokerUrl, s: Settings, keepalive: int = 30) -> Session:
        """Connect and complete CONNECT/CONNACK, then (with adoption on) empty this client id's retained will:
        its session is in hand again; raise Refused or ConnectionError."""
        stream = await open_stream(url, s.ca_file, coalesce=s.read_coalesce_seconds)
        try:
            will = (s.will_topic, s.client_id.encode()) if s.adopt_sessions else None
            stream.write(mq.connect(s.client_id, s.mqtt_username, s.mqtt_password, keepalive=keepalive,
                                    session_expiry=s.session_expiry, receive_maximum=s.receive_maximum, will=will))
            session = Session(stream, keepalive, False)
            first = await asyncio.wait_for(session._next_packet(), 15)
            present, reason, props = mq.connack(first)
            if reason >= 0x80:
                text = props.get(mq.REASON_STRING, b"")
                raise Refused(f"CONNACK reason 0x{reason:02x} {text!r}")
            session.session_present = present
            server_keepalive = props.get(mq.SERVER_KEEP_ALIVE)
            if isinstance(server_keepalive, int) and server_keepalive:
                session.keepalive = server_keepalive
            if will is not None:
                session.send(mq.publish(s.will_topic, b"", retain=True))
            return session
        except BaseException:
            stream.close()
            raise

    async def _next_packet(self) -> mq.Packet:
        """Read until one packet is complete and cut only it off (a resumed session's PUBLISHes may follow)."""
        while True:
            header = mq.read_varint(self.buffer, 1) if len(self.buffer) >= 2 else None
            if header is not None and header[1] + header[0] <= len(self.buffer):
                length, start = header
                first = self.buffer[0]
                packet = mq.Packet(first >> 4, first & 0x0F, bytes(self.buffer[start:start + length]))
                del self.buffer[:start + length]
                return packet
            data = await self.stream.read()
            if not data:
                raise ConnectionError("broker closed the connection during CONNECT")
            self.buffer += data

    def packet_id(self) -> int:
        """The next packet id for SUBSCRIBE/UNSUBSCRIBE."""
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def send(self, data: bytes) -> None:
        """Queue bytes on the connection (silently dropped once it is closed)."""
        if not self.closed:
            self.stream.write(data)

    async def packets(self) -> list[mq.Packet | mq.Publish]:
        """The next complete packets (never empty); raise when the link ends or the watchdog closed it."""
        while True:
            packets, used = mq.split(self.buffer)
            if packets:
                del self.buffer[:used]
                return packets
            data = await self.stream.read()
            if not data:
                raise ConnectionError("the broker went silent for 1.5 x keepalive" if self.silent
                                      else "broker closed the connection")
            self.last_read = time.monotonic()
            self.buffer += data

    async def pinger(self) -> None:
        """PINGREQ every half keepalive; close the link when nothing arrived for 1.5 x keepalive."""
        while not self.closed:
            await asyncio.sleep(self.keepalive / 2)
            if time.monotonic() - self.last_read > self.keepalive * 1.5:
                self.silent = True
                self.stream.close()  # the pending read ends, packets() raises
                return
            self.ping()

    def ping(self) -> None:
        """Send a PINGREQ."""
        self.send(mq.PINGREQ_PACKET)
        self.pings += 1

    async def close(self, final: bytes | None = None) -> None:
        """Send a last packet (DISCONNECT) if given, flush briefly, and close."""
        if self.closed:
            return
        if final is not None:
            self.stream.write(final)
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                await asyncio.wait_for(self.stream.drain(), 2)
        self.closed = True
        self.stream.close()
