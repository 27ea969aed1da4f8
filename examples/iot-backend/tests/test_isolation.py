"""Devices can neither join the service subscriptions nor take over another client's id (iot_guard)."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from iotsim.device import ConnectRefused, Device, parse_broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from stack import DockerStack

pytestmark = pytest.mark.docker

NOT_AUTHORIZED = 0x87


class Raw:
    """A paho MQTT v5 client with a persistent session that records SUBACK codes and messages."""

    def __init__(self, stack: DockerStack, username: str, password: str, client_id: str) -> None:
        host, port, transport, _tls, _path = parse_broker(stack.mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                  transport=transport)
        self.client.username_pw_set(username, password)
        self.granted: list[int] = []
        self.messages: list[bytes] = []
        self.disconnects = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, msg: self.messages.append(msg.payload)
        self.client.on_disconnect = self._on_disconnect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        self.client.connect(host, port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.connected.wait(10), f"{client_id} did not connect"

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        self.granted = [code.value for code in codes]
        self.subscribed.set()

    def _on_disconnect(self, *_: Any) -> None:
        self.disconnects += 1

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe at QoS 1 and return the SUBACK's reason codes."""
        self.subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        assert self.subscribed.wait(10)
        return self.granted

    def close(self) -> None:
        """Disconnect (the session stays for its expiry) and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def test_a_hostile_share_subscriber_is_refused_and_steals_nothing(stack: DockerStack, api: RegistryClient) -> None:
    hostile = api.register(name="hostile", wait_active=5)
    thief = Raw(stack, hostile["id"], hostile["mqtt"]["password"], hostile["id"])
    codes = thief.subscribe("$share/ingestion/devices/+/telemetry", "$share/ingestion/#",
                            f"$share/ingestion/devices/{hostile['id']}/commands", "devices/+/telemetry", "#",
                            "devices/other/commands", f"devices/{hostile['id']}/commands")
    assert codes == [NOT_AUTHORIZED] * 6 + [1]
    devices = [new_device(api, stack.mqtt_url, f"honest-{i}") for i in range(4)]
    for _ in range(250):
        for d in devices:
            d.publish()
    assert all(d.wait_acked(20) for d in devices)
    assert sum(d.stats.acked for d in devices) == 1000
    assert eventually(lambda: sum(len(stored_seqs(api, d.device_id)) for d in devices) == 1000, timeout=20)
    assert thief.messages == []
    thief.close()
    for d in devices:
        d.close()


def test_a_device_cannot_take_over_another_client_id(stack: DockerStack, api: RegistryClient) -> None:
    victim = api.register(name="victim", wait_active=5)
    attacker = api.register(name="attacker", wait_active=5)
    owner = Raw(stack, victim["id"], victim["mqtt"]["password"], victim["id"])
    assert owner.subscribe(f"devices/{victim['id']}/commands") == [1]
    owner.close()  # offline with a persistent session: commands queue for it
    for n in range(3):
        api.call("POST", f"/devices/{victim['id']}/commands", {"command": "set", "args": {"n": n}})
    time.sleep(0.5)
    with pytest.raises(ConnectRefused):
        Device(attacker["id"], attacker["mqtt"]["password"], stack.mqtt_url, client_id=victim["id"]).connect()
    owner = Raw(stack, victim["id"], victim["mqtt"]["password"], victim["id"])
    assert eventually(lambda: len(owner.messages) == 3, timeout=5), owner.messages  # the queue survived
    # while the owner is connected, the attempt neither succeeds nor disconnects it
    with pytest.raises(ConnectRefused):
        Device(attacker["id"], attacker["mqtt"]["password"], stack.mqtt_url, client_id=victim["id"]).connect()
    time.sleep(0.5)
    assert owner.client.is_connected() and owner.disconnects == 0
    owner.close()


def test_a_device_cannot_use_a_service_client_id(stack: DockerStack, api: RegistryClient) -> None:
    attacker = api.register(name="impostor", wait_active=5)
    connects = stack.metric("ingestion_mqtt_connects_total", 1)
    replica = f"_ingestion-{stack.name('ingestion', 1)}"
    with pytest.raises(ConnectRefused):
        Device(attacker["id"], attacker["mqtt"]["password"], stack.mqtt_url, client_id=replica).connect()
    time.sleep(1.0)
    assert stack.metric("ingestion_mqtt_connects_total", 1) == connects
    assert stack.health(1)["mqtt_connected"] is True
