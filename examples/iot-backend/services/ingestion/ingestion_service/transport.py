"""Byte streams to the broker: TCP or TLS, raw or inside WebSocket frames (RFC 6455, subprotocol mqtt)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
from typing import cast

from iot_common.mqtt_url import BrokerUrl

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
READ_SIZE = 256 * 1024
COALESCE_BELOW = 64 * 1024  # a read that found less than this rests the socket (see Stream.read)


class Stream:
    """A connected byte stream: read() returns what arrived (b"" at the end), write() queues bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, coalesce: float = 0.0) -> None:
        self.reader, self.writer, self.coalesce = reader, writer, coalesce

    async def read(self) -> bytes:
        """Whatever bytes have arrived (waiting for at least one); b"" when the connection ended. With
        `coalesce` seconds, a read that found less than COALESCE_BELOW bytes leaves the socket unread that
        long, so that the next read takes what arrived meanwhile at once: one wake-up of the reader, one
        recv and one parse for many messages instead of one for every few (at most `coalesce` later)."""
        data = await self.reader.read(READ_SIZE)
        if self.coalesce and 0 < len(data) < COALESCE_BELOW:
            transport = cast(asyncio.Transport, self.writer.transport)
            transport.pause_reading()
            asyncio.get_running_loop().call_later(self.coalesce, _resume_reading, transport)
        return data

    def write(self, data: bytes) -> None:
        """Queue bytes for sending (asyncio flushes them as the socket allows)."""
        self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark."""
        await self.writer.drain()

    def close(self) -> None:
        """Close the connection without waiting."""
        self.writer.close()


class WebSocketStream(Stream):
    """MQTT's byte stream carried in binary WebSocket frames; pings answered, close ends the stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.pending = bytearray()

    async def read(self) -> bytes:
        """The payload of the next data frames (control frames handled here)."""
        while True:
            head = await self._exactly(2)
            if not head:
                return b""
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if head[1] & 0x80:
                raise ConnectionError("the server masked a WebSocket frame")
            if length == 126:
                length = struct.unpack("!H", await self._exactly(2, strict=True))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self._exactly(8, strict=True))[0]
            payload = await self._exactly(length, strict=True) if length else b""
            if opcode in (0x0, 0x2):  # continuation, binary: MQTT bytes, frame boundaries do not matter
                if payload:
                    return payload
            elif opcode == 0x8:
                return b""
            elif opcode == 0x9:
                self._frame(0xA, payload)
            elif opcode != 0xA:
                raise ConnectionError(f"unexpected WebSocket opcode {opcode}")

    async def _exactly(self, n: int, strict: bool = False) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            if strict or exc.partial:
                raise ConnectionError("WebSocket frame cut short") from exc
            return b""

    def write(self, data: bytes) -> None:
        """Send bytes as one masked binary frame."""
        self._frame(0x2, data)

    def _frame(self, opcode: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        self.writer.write(head + masked(data, os.urandom(4)))


def _resume_reading(transport: asyncio.Transport) -> None:
    if not transport.is_closing():
        transport.resume_reading()


def masked(data: bytes, key: bytes) -> bytes:
    """The 4-byte key, then data XORed with it repeated (WebSocket client frames are masked)."""
    n = len(data)
    if not n:
        return key
    repeated = (key * (n // 4 + 1))[:n]
    return key + (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client TLS context: the system CAs, or the given bundle."""
    return ssl.create_default_context(cafile=ca_file)


async def open_stream(url: BrokerUrl, ca_file: str | None, timeout: float = 10.0, coalesce: float = 0.0) -> Stream:
    """Connect to the broker; for ws:// and wss:// perform the WebSocket upgrade first (`coalesce`: see
    Stream.read; TCP and TLS streams only)."""
    context = tls_context(ca_file) if url.tls else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(url.host, url.port, ssl=context, limit=READ_SIZE), timeout)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if url.transport != "websockets":
        return Stream(reader, writer, coalesce)
    try:
        await asyncio.wait_for(upgrade(reader, writer, url), timeout)
    except BaseException:
        writer.close()
        raise
    return WebSocketStream(reader, writer)


async def upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: BrokerUrl) -> None:
    """The HTTP/1.1 upgrade to a WebSocket with subprotocol mqtt; raise ConnectionError if refused."""
    key = base64.b64encode(os.urandom(16)).decode()
    host = url.host if url.port in (80, 443) else f"{url.host}:{url.port}"
    writer.write(
        f"GET {url.path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n".encode()
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()  # noqa: S324 (RFC 6455)
    if " 101 " not in f"{status} " or headers.get("sec-websocket-accept") != expected:
        raise ConnectionError(f"WebSocket upgrade refused: {status[:80]}")
