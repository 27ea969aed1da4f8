"""The broker enforces identities and topics; decommissioned devices are shut out."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from iotsim.device import ConnectRefused, Device, parse_broker
from paho.mqtt.enums import CallbackAPIVersion
from stack import DockerStack

pytestmark = pytest.mark.docker


def received_total(stack: DockerStack) -> float:
    """Messages received by all ingestion replicas."""
    return sum(stack.metric("ingestion_messages_received_total", r) for r in (1, 2))


def test_publishing_to_another_devices_topic_is_refused_and_nothing_stored(
    stack: DockerStack, api: RegistryClient
) -> None:
    intruder = new_device(api, stack.mqtt_url, "intruder")
    victim = api.register(name="victim", wait_active=5)
    before = received_total(stack)
    intruder.publish(topic=f"devices/{victim['id']}/telemetry")
    intruder.publish(topic=f"devices/{victim['id']}/status")
    assert intruder.wait_acked(5)
    assert intruder.stats.failed == 2  # PUBACK with reason "not authorized"
    assert intruder.stats.acked == 0
    time.sleep(1.0)
    assert stored_seqs(api, victim["id"]) == []
    assert received_total(stack) == before
    intruder.close()


def test_a_device_receives_only_its_own_commands(stack: DockerStack, api: RegistryClient) -> None:
    """A device that subscribes to another device's command topic, or to `#`, is refused in the SUBACK
    (iot_guard) and, were it granted, the ACL file would still filter on delivery: it is sent nothing."""
    mine = api.register(name="snoop", wait_active=5)
    other = new_device(api, stack.mqtt_url, "other")
    host, port, transport, _tls, _path = parse_broker(stack.mqtt_url)
    seen: list[str] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=mine["id"], protocol=mqtt.MQTTv5, transport=transport)
    client.username_pw_set(mine["id"], mine["mqtt"]["password"])
    client.on_connect = lambda c, *_: c.subscribe(
        [(f"devices/{mine['id']}/commands", 1), (f"devices/{other.device_id}/commands", 1), ("#", 1)]
    )
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: seen.append(msg.topic)
    client.connect(host, port)
    client.loop_start()
    assert subscribed.wait(5)
    api.call("POST", f"/devices/{other.device_id}/commands", {"command": "reboot"})
    other.publish()
    api.call("POST", f"/devices/{mine['id']}/commands", {"command": "ping"})
    assert eventually(lambda: other.commands, timeout=5.0) == [{"command": "reboot", "args": {}}]
    assert eventually(lambda: seen, timeout=5.0)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    other.close()
    assert set(seen) == {f"devices/{mine['id']}/commands"}


def test_anonymous_and_wrong_password_connections_are_refused(stack: DockerStack, api: RegistryClient) -> None:
    answer = api.register(name="pw", wait_active=5)
    with pytest.raises(ConnectRefused):
        Device(answer["id"], answer["mqtt"]["password"] + "x", stack.mqtt_url).connect()
    with pytest.raises(ConnectRefused):
        Device(answer["id"], answer["mqtt"]["password"] + "x", stack.ws_url).connect()
    anonymous = Device("anonymous", "", stack.mqtt_url)
    anonymous.client.username_pw_set(None, None)
    with pytest.raises(ConnectRefused):
        anonymous.connect()
    # a service account's name with a device's password is refused too
    with pytest.raises(ConnectRefused):
        Device("_ingestion", answer["mqtt"]["password"], stack.mqtt_url).connect()


def test_decommissioned_device_is_disconnected_and_cannot_connect(stack: DockerStack, api: RegistryClient) -> None:
    device = new_device(api, stack.mqtt_url, "retiring")
    device.client.reconnect_delay_set(5, 5)
    password = device.password
    started = time.monotonic()
    answer = api.decommission(device.device_id)
    assert answer["status"] == "decommissioned"
    assert answer["enforced_by_broker"] is True
    assert eventually(lambda: not device.client.is_connected(), timeout=2.0), "live connection not dropped"
    assert time.monotonic() - started < 3.0
    device.close()
    with pytest.raises(ConnectRefused):
        Device(device.device_id, password, stack.mqtt_url).connect()
    assert api.device(device.device_id)["status"] == "decommissioned"


def test_secrets_never_appear_in_logs(stack: DockerStack) -> None:
    logs = stack.logs(tail=100000)
    assert "--- " in logs
    for name, value in stack.secrets.items():
        assert value not in logs, f"secret {name} found in a container log"
