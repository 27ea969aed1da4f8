"""A minimal MQTT 3.1.1 QoS 1 publisher for load tests: packets encoded in bulk, PUBACKs read in bulk.

paho spends ~0.5 ms of CPU per publish here, which would make the load generator the bottleneck
of an ingestion benchmark; this one spends 1-2 µs (it shares the machine with what it measures).
It speaks only what it needs: CONNECT (username/password), PUBLISH QoS 1 and PUBACK. Each message's
`ts` is taken when its chunk is encoded, right before it is written.
"""

from __future__ import annotations

import random
import selectors
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field

READING = b'{"seq": %d, "ts": %s, "temperature": %s, "humidity": 50.0}'
TEMPERATURES = [repr(round(random.uniform(15, 30), 2)).encode() for _ in range(4096)]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 60) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, with username and password."""
    variable = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
    payload = _string(client_id) + _string(username) + _string(password)
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


@dataclass
class Connection:
    """One device's socket with its window of unacknowledged packet ids."""

    device_id: str
    sock: socket.socket
    topic: bytes
    seq: int
    next_id: int = 1
    inflight: set[int] = field(default_factory=set)
    buffer: bytearray = field(default_factory=bytearray)
    acked: int = 0

    def publish_chunk(self, n: int) -> bytes:
        """Encode n QoS 1 PUBLISH packets with fresh readings (the JSON json.dumps would write, built from a
        template: the generator shares the machine with what it measures, so it must cost little)."""
        now = repr(time.time()).encode()  # json.dumps writes a float as its repr
        topic, inflight, pid, seq = self.topic, self.inflight, self.next_id, self.seq
        out = []
        for _ in range(n):
            seq += 1
            payload = READING % (seq, now, TEMPERATURES[seq & 4095])
            size = len(topic) + 2 + len(payload)  # < 16384: the remaining length takes one or two bytes
            length = bytes((size,)) if size < 128 else bytes((size & 0x7F | 0x80, size >> 7))
            out.append(b"\x32" + length + topic + pid.to_bytes(2, "big") + payload)
            inflight.add(pid)
            pid = pid % 65535 + 1
        self.next_id, self.seq = pid, seq
        return b"".join(out)

    def read_acks(self) -> int:
        """Read whatever arrived; count PUBACKs of packets in flight (raise on anything unexpected)."""
        try:
            data = self.sock.recv(65536)
            while isinstance(self.sock, ssl.SSLSocket) and data and self.sock.pending():
                data += self.sock.recv(65536)  # decrypted bytes the selector cannot see
        except (BlockingIOError, ssl.SSLWantReadError):
            return 0
        if not data:
            raise ConnectionError(f"{self.device_id}: broker closed the connection")
        self.buffer += data
        n = len(self.buffer) // 4
        if not n:
            return 0
        words = struct.unpack(f"!{2 * n}H", self.buffer[:4 * n])  # (0x4002, packet id) per PUBACK
        if words[0::2].count(0x4002) != n:
            bad = next(i for i, word in enumerate(words[0::2]) if word != 0x4002)
            kind = self.buffer[4 * bad] >> 4
            raise ConnectionError(f"{self.device_id}: unexpected packet type {kind} (not authorised?)")
        del self.buffer[:4 * n]
        before = len(self.inflight)
        self.inflight.difference_update(words[1::2])
        acked = before - len(self.inflight)
        self.acked += acked
        return acked


def open_connection(
    host: str, port: int, device_id: str, password: str, tls: ssl.SSLContext | None = None
) -> Connection:
    """Connect one device (over TLS with `tls`, which verifies the broker) and wait for a successful CONNACK."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=host)
    sock.sendall(connect_packet(device_id, device_id, password))  # the broker binds client ids to usernames
    ack = b""
    while len(ack) < 4:
        chunk = sock.recv(4 - len(ack))
        if not chunk:
            raise ConnectionError(f"{device_id}: connection closed before CONNACK")
        ack += chunk
    if ack[0] != 0x20 or ack[3] != 0:
        raise ConnectionError(f"{device_id}: CONNACK refused (code {ack[3]})")
    sock.setblocking(False)
    return Connection(device_id, sock, _string(f"devices/{device_id}/telemetry"), seq=time.time_ns() // 1000)


def run(connections: list[Connection], count: int, rate: float, window: int, timeout: float) -> dict[str, float]:
    """Publish `count` messages round-robin (paced at `rate` per second, or flat out) and wait for acks."""
    selector = selectors.DefaultSelector()
    for c in connections:
        selector.register(c.sock, selectors.EVENT_READ, c)
    chunk = 50 if rate <= 0 else max(1, int(rate / 200 / len(connections)))  # paced: 200 ticks a second
    first = time.time()
    started = time.monotonic()
    deadline = started + timeout
    sent = 0
    while sent < count and time.monotonic() < deadline:
        if rate > 0:
            pause = started + sent / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        for c in connections:
            n = min(chunk, count - sent, window - len(c.inflight))
            if n > 0:
                c.sock.setblocking(True)
                c.sock.sendall(c.publish_chunk(n))
                c.sock.setblocking(False)
                sent += n
        waiting = all(len(c.inflight) >= window for c in connections)
        for key, _ in selector.select(timeout=0.05 if waiting else 0):
            key.data.read_acks()
    while any(c.inflight for c in connections) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            key.data.read_acks()
    last = time.time()
    acked = sum(c.acked for c in connections)
    for c in connections:
        selector.unregister(c.sock)
        c.sock.sendall(b"\xe0\x00")  # DISCONNECT
        c.sock.close()
    return {"sent": sent, "acked": acked, "failed": sent - acked, "first_publish": first, "last_ack": last}
