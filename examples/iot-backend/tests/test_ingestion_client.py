"""Ingestion's own MQTT v5 client, without Docker: packet encoding and parsing, and WebSocket framing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from iotsim.devca import ensure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "ingestion"))

from ingestion_service import mqtt_codec as mq
from ingestion_service.payload import Rejected, device_of, row_line, timestamp_text
from ingestion_service.transport import WS_GUID, masked, open_stream
from iot_common.mqtt_url import BrokerUrl


def publish_packet(topic: str, payload: bytes, packet_id: int, props: bytes = b"", dup: bool = False) -> bytes:
    """A PUBLISH as a broker sends it (QoS 1)."""
    body = mq.utf8(topic) + struct.pack("!H", packet_id) + mq.varint(len(props)) + props + payload
    return mq.packet(mq.PUBLISH, 0x0A if dup else 0x02, body)


def test_varint_round_trips_at_every_length_boundary() -> None:
    for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        assert mq.read_varint(mq.varint(n), 0) == (n, len(mq.varint(n)))
    assert mq.read_varint(b"\x80\x80", 0) is None  # incomplete
    with pytest.raises(mq.ProtocolError):
        mq.read_varint(b"\x80\x80\x80\x80\x01", 0)


def test_connect_asks_to_resume_the_session_with_expiry_and_window() -> None:
    raw = mq.connect("ingestion-1", "_ingestion", "pw", keepalive=30, session_expiry=3600, receive_maximum=10000)
    packets, used = mq.split(bytearray(raw))
    assert used == len(raw) and packets[0].kind == mq.CONNECT
    body = packets[0].body
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # username + password, clean start off
    assert struct.unpack("!H", body[8:10])[0] == 30
    props = mq.properties(body, 10)
    assert props[mq.SESSION_EXPIRY] == 3600 and props[mq.RECEIVE_MAXIMUM] == 10000
    assert body.endswith(mq.utf8("ingestion-1") + mq.utf8("_ingestion") + mq.utf8("pw"))


def test_connect_carries_a_retained_qos_1_will_naming_the_client() -> None:
    packet = mq.connect("ingestion-a", "_ingestion", "pw", keepalive=30, session_expiry=60, receive_maximum=10,
                        will=("services/ingestion/ingestion/gone/ingestion-a", b"ingestion-a"))
    flags = packet[2 + 6 + 1]  # after the fixed header, "MQTT" and the version
    assert flags == 0xC0 | 0x04 | 0x08 | 0x20  # username, password, will, will QoS 1, will retain; clean start off
    expected = (mq.utf8("ingestion-a") + b"\x00" + mq.utf8("services/ingestion/ingestion/gone/ingestion-a")
                + struct.pack("!H", 11) + b"ingestion-a" + mq.utf8("_ingestion") + mq.utf8("pw"))
    assert packet.endswith(expected)


def test_an_empty_retained_publish_clears_a_will() -> None:
    raw = mq.publish("services/ingestion/ingestion/gone/ingestion-a", b"", retain=True)
    assert raw[0] == mq.PUBLISH << 4 | 0x01  # QoS 0, retain
    packets, used = mq.split(bytearray(raw))
    assert used == len(raw) and packets == [("services/ingestion/ingestion/gone/ingestion-a", b"", 0, 0)]


def test_disconnect_with_will_and_with_session_expiry() -> None:
    assert mq.disconnect() == b"\xe0\x00"
    assert mq.disconnect(with_will=True) == b"\xe0\x01\x04"
    assert mq.disconnect(0) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"seq": 1, "ts": 1732800000, "temperature": 1e-50}', "range"),  # rounds to 0 in real: PostgreSQL refuses
    (b'{"seq": 1, "ts": 1732800000, "temperature": 20, "humidity": 7e-46}', "range"),
    (b'{"seq": 1, "ts": 1732800000, "temperature": NaN}', "schema"),
    (b'{"seq": 1, "ts": 1732800000, "temperature": Infinity}', "schema"),
    (b'{"seq": 9223372036854775808, "ts": 1732800000, "temperature": 20}', "schema"),  # beyond bigint
    (b'{"seq": 1, "ts": 1e400, "temperature": 20}', "schema"),
])
def test_values_the_columns_cannot_hold_are_rejected_at_decode(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        row_line("dev-1", body, 1.0)
    assert caught.value.reason == reason


def test_the_smallest_values_real_can_hold_pass_and_topics_end_at_their_end() -> None:
    line, _ts = row_line("dev-1", b'{"seq": 1, "ts": 1732800000, "temperature": 8e-46, "humidity": 0}', 1.0)
    assert line.split("\t")[3:5] == ["8e-46", "0.0"]
    with pytest.raises(Rejected):
        device_of("devices/dev-1/telemetry\n")


def test_timestamps_are_written_as_datetime_rounds_them_and_sort_as_time() -> None:
    edges = [946_684_800.0, 4_102_444_800.0, 1732800000.25, 1732800000.9999996, 1732800000.0000005, 1732800000.5000015]
    values = edges + [946_684_800.0 + i * 3_155_759.987654321 for i in range(1000)]
    texts = [timestamp_text(v) for v in values]
    assert texts == [datetime.fromtimestamp(v, UTC).isoformat(timespec="microseconds") for v in values]
    assert timestamp_text(1732800000.9999996) == "2024-11-28T13:20:01.000000+00:00"
    assert sorted(texts[len(edges):]) == texts[len(edges):] and len({len(t) for t in texts}) == 1
    line, ts = row_line("dev-1", b'{"seq": 7, "ts": 1732800000.25, "temperature": 20, "battery": 80}', 1732800001.5)
    assert ts == 1732800000.25
    assert line == "dev-1\t7\t2024-11-28T13:20:00.250000+00:00\t20.0\t\t80.0\t2024-11-28T13:20:01.500000+00:00\n"
    assert row_line("dev-1", b'{"seq": 7, "ts": 1732800000.25, "temperature": 20}', "given")[0].endswith("\tgiven\n")


def test_split_cuts_complete_packets_and_keeps_the_rest() -> None:
    first = publish_packet("devices/a/telemetry", b'{"seq": 1}', 7)
    second = publish_packet("devices/b/telemetry", b"x" * 300, 8)  # two-byte remaining length
    stream = bytearray(first + second)
    for cut in range(len(stream) + 1):
        packets, used = mq.split(stream[:cut])
        expected = (cut >= len(first)) + (cut >= len(stream))
        assert len(packets) == expected
        assert used == (len(stream) if expected == 2 else len(first) if expected else 0)


def test_publish_parsing_skips_properties_and_keeps_the_packet_id() -> None:
    props = bytes([0x01, 1]) + bytes([0x26]) + mq.utf8("k") + mq.utf8("v") + bytes([0x0B]) + mq.varint(300)
    long_props = bytes([0x26]) + mq.utf8("k") + mq.utf8("v" * 200)  # a two-byte property length
    stream = bytearray(publish_packet("devices/dev-1/telemetry", b"{}", 513, props, dup=True)
                       + publish_packet("devices/dev-2/telemetry", b"[]", 514, long_props)
                       + mq.packet(mq.PUBLISH, 0, mq.utf8("devices/dev-3/telemetry") + b"\x00" + b"q0")
                       + mq.packet(mq.PINGRESP, 0, b""))
    packets, used = mq.split(stream)
    assert used == len(stream)
    assert packets[:3] == [("devices/dev-1/telemetry", b"{}", 1, 513), ("devices/dev-2/telemetry", b"[]", 1, 514),
                           ("devices/dev-3/telemetry", b"q0", 0, 0)]  # (topic, payload, QoS, packet id)
    assert packets[3] == mq.Packet(mq.PINGRESP, 0, b"")
    assert mq.properties(props_body := mq.varint(len(props)) + props, 0)[0x0B] == 300 and props_body


def test_a_qos_2_publish_is_a_protocol_error() -> None:
    body = mq.utf8("devices/a/telemetry") + b"\x00\x01\x00{}"
    with pytest.raises(mq.ProtocolError):
        mq.split(bytearray(mq.packet(mq.PUBLISH, 0x04, body)))


def test_a_publish_whose_fields_overrun_it_is_a_protocol_error_not_the_next_packets_bytes() -> None:
    good = publish_packet("devices/a/telemetry", b"{}", 1)
    topic = mq.utf8("devices/a/telemetry")
    for body in (b"", b"\x00", b"\x00\x05ab", topic, topic + b"\x00", topic + b"\x00\x01",
                 topic + b"\x00\x01\x05ab", topic + b"\x00\x01\x80", topic + b"\x00\x01\x80\x80\x80\x80\x01"):
        with pytest.raises(mq.ProtocolError):
            mq.split(bytearray(mq.packet(mq.PUBLISH, 0x02, body) + good))


def test_pubacks_for_a_batch_are_one_buffer_of_four_byte_packets() -> None:
    raw = mq.pubacks([1, 258, 65535])
    assert raw == b"\x40\x02\x00\x01" + b"\x40\x02\x01\x02" + b"\x40\x02\xff\xff"


def test_connack_suback_and_disconnect_decoding() -> None:
    connack = mq.packet(mq.CONNACK, 0, b"\x01\x00" + mq.varint(3) + bytes([mq.SERVER_KEEP_ALIVE]) + b"\x00\x3c")
    present, reason, props = mq.connack(mq.split(bytearray(connack))[0][0])
    assert present and reason == 0 and props[mq.SERVER_KEEP_ALIVE] == 60
    suback = mq.packet(mq.SUBACK, 0, b"\x00\x05\x00\x01")
    assert mq.acked_codes(mq.split(bytearray(suback))[0][0]) == (5, [1])
    assert mq.disconnect(0) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"
    assert mq.reason_of(mq.split(bytearray(b"\xe0\x01\x8e"))[0][0]) == 0x8E


def test_masking_is_an_involution() -> None:
    key = b"\x01\x02\x03\x04"
    data = bytes(range(256)) * 3
    frame = masked(data, key)
    assert frame[:4] == key
    assert masked(frame[4:], key)[4:] == data
    assert masked(b"", key) == key


def test_websocket_stream_upgrades_answers_pings_and_carries_bytes() -> None:
    """A tiny WebSocket server on 127.0.0.1: checks the upgrade, pings, then echoes unmasked frames."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                   if line.lower().startswith("sec-websocket-key"))
        assert "Sec-WebSocket-Protocol: mqtt" in request
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n".encode())
        writer.write(b"\x89\x02hi")  # ping: the client answers with a pong when it next reads
        head = await reader.readexactly(2)
        assert head[0] == 0x82 and head[1] & 0x80  # binary, masked
        length = struct.unpack("!H", await reader.readexactly(2))[0] if head[1] & 0x7F == 126 else head[1] & 0x7F
        mask = await reader.readexactly(4)
        data = masked(await reader.readexactly(length), mask)[4:]
        received.append(data)
        writer.write(b"\x82\x7e" + struct.pack("!H", len(data)) + data)  # echo, unmasked, 16-bit length
        head = await reader.readexactly(2)
        assert head[0] == 0x8A and head[1] & 0x80  # pong, masked
        mask = await reader.readexactly(4)
        assert masked(await reader.readexactly(head[1] & 0x7F), mask)[4:] == b"hi"
        writer.write(b"\x88\x00")  # close
        await writer.drain()

    async def scenario() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            stream = await open_stream(BrokerUrl.parse(f"ws://127.0.0.1:{port}/mqtt"), None)
            payload = bytes(range(200))
            stream.write(payload)
            echoed = await asyncio.wait_for(stream.read(), 5)
            end = await asyncio.wait_for(stream.read(), 5)
            stream.close()
            assert end == b""
            return echoed

    assert asyncio.run(scenario()) == bytes(range(200))
    assert received == [bytes(range(200))]


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_coalescing_stream_takes_what_arrived_while_it_rested_in_one_read(tls: bool, tmp_path: Path) -> None:
    """200 small writes, one a millisecond: with 50 ms rests after each small read the client wakes a
    handful of times, not once per write, and every byte arrives once, in order, then the end."""
    chunks = [bytes([i]) * 50 for i in range(200)]
    server_tls, ca_file = None, None
    if tls:
        ca = ensure(tmp_path)
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(ca.server_cert, ca.server_key)
        ca_file = str(ca.ca_cert)

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.close()

    async def scenario() -> list[bytes]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_tls)
        port = server.sockets[0].getsockname()[1]
        async with server:
            url = BrokerUrl.parse(f"{'mqtts' if tls else 'mqtt'}://localhost:{port}")
            stream = await open_stream(url, ca_file, coalesce=0.05)
            reads = []
            while data := await asyncio.wait_for(stream.read(), 5):
                reads.append(data)
            stream.close()
            return reads

    reads = asyncio.run(scenario())
    assert b"".join(reads) == b"".join(chunks)
    assert len(reads) <= 20, len(reads)
