"""Publishes operator commands to `devices/<id>/commands` with the registry's own broker account."""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from iot_common.mqtt_url import BrokerUrl
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("registry.commands")
USERNAME = "_registry"


class CommandPublisher:
    """A lazily connected MQTT v5 client that publishes QoS 1 commands."""

    def __init__(self, url: str, password: str) -> None:
        self.broker = BrokerUrl.parse(url)
        self.password = password
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()

    def _connect(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"_registry-{socket.gethostname()}",  # the broker wants "_registry-*"
            protocol=mqtt.MQTTv5,
            transport=self.broker.transport,
        )
        if self.broker.transport == "websockets":
            client.ws_set_options(path=self.broker.path)
        if self.broker.tls:
            client.tls_set()
        client.username_pw_set(USERNAME, self.password)
        client.connect(self.broker.host, self.broker.port, keepalive=30)
        client.loop_start()
        return client

    def publish(self, device_id: str, command: dict[str, Any], timeout: float = 5.0) -> None:
        """Publish one command and wait for the broker's PUBACK; raise TimeoutError or OSError."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            client = self._client
        info = client.publish(f"devices/{device_id}/commands", json.dumps(command), qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError("broker did not acknowledge the command")

    def close(self) -> None:
        """Disconnect."""
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
