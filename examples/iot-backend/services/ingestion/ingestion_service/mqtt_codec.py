"""MQTT v5 packets a QoS 1 subscriber needs: encoders for what it sends, a parser for what it receives."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15
# property identifiers used here
SESSION_EXPIRY, RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE, REASON_STRING, TOPIC_ALIAS = 0x11, 0x21, 0x13, 0x1F, 0x23
PINGREQ_PACKET = b"\xc0\x00"
MAX_PACKET = 1 << 20  # CONNECT advertises it: the broker never sends a bigger packet


class ProtocolError(ValueError):
    """The broker sent something this client cannot accept."""


def varint(n: int) -> bytes:
    """Encode MQTT's variable byte integer."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str) -> bytes:
    """A length-prefixed UTF-8 string."""
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def packet(kind: int, flags: int, body: bytes) -> bytes:
    """Fixed header + body."""
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def connect(client_id: str, username: str, password: str, *, keepalive: int, session_expiry: int,
            receive_maximum: int, will: tuple[str, bytes] | None = None) -> bytes:
    """CONNECT v5, clean start off, with a session expiry, a receive window, a maximum packet size and
    optionally a will (topic, payload; QoS 1, retained, no delay)."""
    flags = 0xC0  # username, password; clean start (0x02) off: resume the session
    props = (bytes([SESSION_EXPIRY]) + struct.pack("!I", session_expiry)
             + bytes([RECEIVE_MAXIMUM]) + struct.pack("!H", receive_maximum)
             + b"\x27" + struct.pack("!I", MAX_PACKET))  # 0x27: maximum packet size
    payload = utf8(client_id)
    if will is not None:
        flags |= 0x04 | 0x08 | 0x20  # will flag, will QoS 1, will retain
        topic, message = will
        payload += b"\x00" + utf8(topic) + struct.pack("!H", len(message)) + message  # no will properties
    variable = utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive) + varint(len(props)) + props
    return packet(CONNECT, 0, variable + payload + utf8(username) + utf8(password))


def publish(topic: str, payload: bytes, *, retain: bool = False) -> bytes:
    """PUBLISH at QoS 0 (no properties)."""
    return packet(PUBLISH, 0x01 if retain else 0x00, utf8(topic) + b"\x00" + payload)


def subscribe(packet_id: int, topic_filter: str, qos: int = 1) -> bytes:
    """SUBSCRIBE to one filter (no properties)."""
    return packet(SUBSCRIBE, 2, struct.pack("!H", packet_id) + b"\x00" + utf8(topic_filter) + bytes([qos]))


def unsubscribe(packet_id: int, topic_filter: str) -> bytes:
    """UNSUBSCRIBE from one filter."""
    return packet(UNSUBSCRIBE, 2, struct.pack("!H", packet_id) + b"\x00" + utf8(topic_filter))


def pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs (success, no properties) for many packet ids, in one buffer."""
    return struct.pack(f"!{len(packet_ids)}I", *[0x4002_0000 | pid for pid in packet_ids])  # 0x40, 2, the id


def disconnect(session_expiry: int | None = None, *, with_will: bool = False) -> bytes:
    """DISCONNECT, normal or "with will message" (0x04: the broker publishes the will as if the link had
    died); optionally changing the session expiry (0: the session ends now)."""
    reason = 0x04 if with_will else 0x00
    if session_expiry is None:
        return packet(DISCONNECT, 0, bytes([reason]) if reason else b"")
    props = bytes([SESSION_EXPIRY]) + struct.pack("!I", session_expiry)
    return packet(DISCONNECT, 0, bytes([reason]) + varint(len(props)) + props)


@dataclass(slots=True)
class Packet:
    """One received control packet other than PUBLISH: type, the fixed header's flags and the rest."""

    kind: int
    flags: int
    body: bytes


Publish = tuple[str, bytes, int, int]
"""A received PUBLISH: topic, payload, QoS, packet id (0 for QoS 0); a plain tuple, the cheapest to make."""


def read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode a variable byte integer at pos; None if incomplete. Returns (value, next position)."""
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ProtocolError("malformed remaining length")


def split(buffer: bytes | bytearray) -> tuple[list[Packet | Publish], int]:
    """Cut every complete packet off the front of buffer, PUBLISHes decoded; return them and the bytes consumed."""
    out: list[Packet | Publish] = []
    data = bytes(buffer)  # one copy; slices of it are then copied once each
    pos, end = 0, len(data)
    while end - pos >= 2:
        length, start = data[pos + 1], pos + 2
        if length & 0x80:
            header = read_varint(data, pos + 1)
            if header is None:
                break
            length, start = header
            if length > MAX_PACKET:
                raise ProtocolError(f"packet of {length} bytes")
        stop = start + length
        if stop > end:
            break
        first = data[pos]
        if first >> 4 == PUBLISH:
            out.append(_publish(data, first, start, stop))
        else:
            out.append(Packet(first >> 4, first & 0x0F, data[start:stop]))
        pos = stop
    return out, pos


def _publish(data: bytes, first: int, start: int, stop: int) -> Publish:
    """Decode the PUBLISH in data[start:stop] (topic aliases are never granted, so the topic is always present);
    raise ProtocolError if its fields overrun it."""
    qos = (first >> 1) & 3
    if qos > 1:  # the subscription grants QoS 1: a QoS 2 PUBLISH would need PUBREC, not PUBACK
        raise ProtocolError(f"PUBLISH with QoS {qos}")
    if stop - start < 3:
        raise ProtocolError("truncated PUBLISH")
    topic_end = start + 2 + (data[start] << 8 | data[start + 1])
    pos = topic_end + 2 if qos else topic_end
    if pos >= stop:
        raise ProtocolError("truncated PUBLISH")
    plen = data[pos]
    if plen & 0x80:
        header = read_varint(data[pos:stop], 0)
        if header is None:
            raise ProtocolError("truncated PUBLISH properties")
        plen, used = header
        pos += used + plen
    else:
        pos += 1 + plen
    if pos > stop:
        raise ProtocolError("truncated PUBLISH properties")
    return (data[start + 2:topic_end].decode("utf-8", "replace"), data[pos:stop], qos,
            data[topic_end] << 8 | data[topic_end + 1] if qos else 0)


def properties(body: bytes, pos: int) -> dict[int, int | bytes]:
    """Decode the properties at pos into {identifier: value} (the few kinds a broker sends to this client)."""
    header = read_varint(body, pos)
    if header is None:
        return {}
    length, pos = header
    end, out = pos + length, dict[int, int | bytes]()
    while pos < end:
        ident = body[pos]
        pos += 1
        if ident in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):  # one byte
            out[ident], pos = body[pos], pos + 1
        elif ident in (0x13, 0x21, 0x22, 0x23):  # two bytes
            out[ident], pos = body[pos] << 8 | body[pos + 1], pos + 2
        elif ident in (0x02, 0x11, 0x18, 0x27):  # four bytes
            out[ident], pos = struct.unpack_from("!I", body, pos)[0], pos + 4
        elif ident == 0x0B:  # subscription identifier
            value = read_varint(body, pos)
            if value is None:
                raise ProtocolError("truncated property")
            out[ident], pos = value
        elif ident == 0x26:  # user property: two strings
            for _ in range(2):
                n = body[pos] << 8 | body[pos + 1]
                pos += 2 + n
        else:  # strings and binary data: two-byte length
            n = body[pos] << 8 | body[pos + 1]
            out[ident], pos = body[pos + 2:pos + 2 + n], pos + 2 + n
    return out


def connack(p: Packet) -> tuple[bool, int, dict[int, int | bytes]]:
    """Decode a CONNACK: (session present, reason code, properties)."""
    body = p.body
    if p.kind != CONNACK or len(body) < 2:
        raise ProtocolError(f"expected CONNACK, got packet type {p.kind}")
    return bool(body[0] & 1), body[1], properties(body, 2) if len(body) > 2 else {}


def acked_codes(p: Packet) -> tuple[int, list[int]]:
    """Decode a SUBACK or UNSUBACK: (packet id, reason codes)."""
    body = p.body
    packet_id = body[0] << 8 | body[1]
    header = read_varint(body, 2)
    if header is None:
        raise ProtocolError("truncated acknowledgement")
    plen, pos = header
    return packet_id, list(body[pos + plen:])


def reason_of(p: Packet) -> int:
    """A DISCONNECT's reason code (0 when omitted)."""
    return p.body[0] if len(p.body) else 0
