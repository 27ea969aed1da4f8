"""A simulated device: its own MQTT v5 connection and credentials, QoS 1 telemetry, ack tracking."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}


def parse_broker(url: str) -> tuple[str, int, str, bool, str]:
    """Split mqtt://, mqtts://, ws:// or wss:// URLs into host, port, transport, tls, path."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"broker URL must be mqtt://, mqtts://, ws:// or wss://HOST[:PORT], not {url!r}")
    ws = parts.scheme in ("ws", "wss")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    return parts.hostname, port, "websockets" if ws else "tcp", parts.scheme in ("mqtts", "wss"), parts.path or "/mqtt"


def no_delay(client: mqtt.Client) -> None:
    """Disable Nagle's algorithm on the client's TCP socket (paho leaves it on)."""
    sock = client.socket()
    raw = getattr(sock, "_socket", sock)  # the TCP socket under paho's WebSocket wrapper
    with contextlib.suppress(AttributeError, OSError):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class Stats:
    """What one device sent and what the broker acknowledged."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    acked_seqs: list[int] = field(default_factory=list)


class ConnectRefused(ConnectionError):
    """The broker refused the CONNECT (bad credentials, revoked device)."""


class Device:
    """One device: connects with its own credentials and publishes readings to its telemetry topic."""

    def __init__(
        self, device_id: str, password: str, broker_url: str, client_id: str | None = None, ca_file: str | None = None
    ) -> None:
        """`ca_file`: the CA bundle an mqtts:// or wss:// broker's certificate must chain to (default: the system's)."""
        self.device_id = device_id
        self.password = password
        self.host, self.port, transport, tls, path = parse_broker(broker_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or device_id, protocol=mqtt.MQTTv5, transport=transport
        )
        if transport == "websockets":
            self.client.ws_set_options(path=path)
        if tls:
            self.client.tls_set(ca_certs=ca_file)
        self.client.username_pw_set(device_id, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.stats = Stats()
        self.seq = time.time_ns() // 1000  # never reused across runs: microseconds since the epoch
        self.commands: list[dict[str, Any]] = []
        self._connected = threading.Event()
        self._refused: str | None = None
        self._pending: dict[int, int] = {}
        self._lock = threading.Lock()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:
            no_delay(client)
            client.subscribe(f"devices/{self.device_id}/commands", qos=1)
            self._connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: Any, _p: object) -> None:
        with self._lock:
            seq = self._pending.pop(mid, None)
            if seq is None:
                return
            if reason.is_failure:
                self.stats.failed += 1
            else:
                self.stats.acked += 1
                self.stats.acked_seqs.append(seq)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            self.commands.append(json.loads(msg.payload))
        except ValueError:
            self.commands.append({"raw": msg.payload.decode(errors="replace")})

    def connect(self, timeout: float = 10.0, retry_refused: float = 0.0) -> None:
        """Connect; keep retrying a refused CONNECT for `retry_refused` s (new credentials load within ~0.5 s)."""
        start = time.monotonic()
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        while not self._connected.wait(0.05):
            elapsed = time.monotonic() - start
            if self._refused is not None and elapsed >= retry_refused:
                self.close()
                raise ConnectRefused(f"{self.device_id}: {self._refused}")
            if elapsed > timeout + retry_refused:
                self.close()
                raise TimeoutError(f"{self.device_id}: no CONNACK within {timeout} s")

    def reading(self, seq: int) -> dict[str, Any]:
        """A plausible reading with the given sequence number."""
        return {
            "seq": seq,
            "ts": time.time(),
            "temperature": round(random.uniform(15, 30), 2),
            "humidity": round(random.uniform(20, 80), 1),
            "battery": random.randint(10, 100),
        }

    def publish(self, payload: bytes | None = None, topic: str | None = None, qos: int = 1) -> int:
        """Publish one reading (or a raw payload, or to another topic); return its seq."""
        with self._lock:
            self.seq += 1
            seq = self.seq
        body = payload if payload is not None else json.dumps(self.reading(seq)).encode()
        info = self.client.publish(topic or f"devices/{self.device_id}/telemetry", body, qos=qos)
        with self._lock:
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self.stats.failed += 1
                return seq
            self.stats.sent += 1
            if qos == 0:
                self.stats.acked += 1
                self.stats.acked_seqs.append(seq)
            else:
                self._pending[info.mid] = seq
        return seq

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every QoS 1 publish is acknowledged; True if none is left pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.02)
        return False

    def unacked(self) -> int:
        """QoS 1 publishes still waiting for their PUBACK."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
