"""A replica killed outright: the survivors resume its session at once, no restart and no apply needed."""

from __future__ import annotations

import secrets
import time

import paho.mqtt.client as mqtt
import pytest
from helpers import eventually, new_device
from iotsim.api import RegistryClient
from iotsim.device import parse_broker
from paho.mqtt.enums import CallbackAPIVersion
from stack import DockerStack, docker, free_port

pytestmark = pytest.mark.docker


def stored(stack: DockerStack, ids: list[str]) -> int:
    """Rows stored for these devices."""
    return int(stack.psql("SELECT count(*) FROM readings WHERE device_id IN ("
                          + ",".join(f"'{i}'" for i in ids) + ")") or 0)


def test_kill_9_of_a_replica_at_2000_per_second_loses_nothing_without_a_restart(
    stack: DockerStack, api: RegistryClient
) -> None:
    answers = api.register_many([f"failover-{i}" for i in range(4)], wait_active=10)
    devices = [{"id": a["id"], "password": a["mqtt"]["password"]} for a in answers]
    ids = [d["id"] for d in devices]
    adopted = stack.metric("ingestion_sessions_adopted_total", 2)
    load = stack.start_load(devices, count=20_000, rate=2000)  # 10 s
    try:
        time.sleep(4)
        docker("kill", "-s", "KILL", stack.name("ingestion", 1))
        killed = time.monotonic()
        result = stack.load_result(load, timeout=180)
        assert result["failed"] == 0 and result["acked"] == 20_000, result
        while stored(stack, ids) < result["acked"] and time.monotonic() - killed < 60:
            time.sleep(0.5)
        count, elapsed = stored(stack, ids), time.monotonic() - killed
        assert not stack.running(stack.name("ingestion", 1)), "nothing may restart the killed replica"
        assert count == result["acked"], f"{result['acked'] - count} acknowledged readings not stored after 60 s"
        print(f"all {count} acknowledged readings stored {elapsed:.1f} s after the kill")
        assert stack.metric("ingestion_sessions_adopted_total", 2) >= adopted + 1
    finally:
        if load.poll() is None:
            load.kill()
        docker("start", stack.name("ingestion", 1))
        assert stack.ingestion_connected(timeout=60)


def test_a_will_naming_no_session_is_answered_once_and_leaves_nothing(stack: DockerStack) -> None:
    """A will for a client id without a session: each replica connects once, finds nothing, ends it."""
    host, port, transport, _tls, _path = parse_broker(stack.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="_ingestion-test-announcer", protocol=mqtt.MQTTv5,
                         transport=transport)
    client.username_pw_set("_ingestion", stack.secrets["ingestion_mqtt_password"])
    client.connect(host, port)
    client.loop_start()
    adopted = [stack.metric("ingestion_sessions_adopted_total", r) for r in (1, 2)]
    ghost = f"_ingestion-ghost-{secrets.token_hex(3)}"
    client.publish(f"services/ingestion/ingestion/gone/{ghost}", ghost.encode(), qos=1).wait_for_publish(5)
    client.publish("services/ingestion/ingestion/gone/not-ours", b"not-ours", qos=1).wait_for_publish(5)
    def ended(log: str) -> int:
        """Connections as the ghost that ended: by their DISCONNECT, or taken over by the other replica's
        (both replicas answer the will at once; mosquitto then closes the older connection itself)."""
        return log.count(f"Client {ghost} disconnected.") + log.count(f"Client {ghost} already connected")

    def answered() -> str:
        log = docker("logs", stack.name("broker"), check=False)
        return log if ended(log) >= 2 else ""

    eventually(answered, timeout=30, interval=0.5)  # a loaded machine can take seconds per replica
    time.sleep(1)  # room for a wrong third connection to show up
    client.disconnect()
    client.loop_stop()
    log = docker("logs", stack.name("broker"), check=False)
    assert log.count(f"as {ghost} ") == 2, "each replica connects once, then ends the empty session"
    assert ended(log) == 2, [line for line in log.splitlines() if ghost in line]
    assert log.count(f"Client {ghost} disconnected.") >= 1, "the last connection ends the session with a DISCONNECT"
    assert "as not-ours " not in log
    took_over = log.count(f"Client {ghost} already connected")  # the later one found the other's empty session
    now = [stack.metric("ingestion_sessions_adopted_total", r) for r in (1, 2)]
    assert sum(now) - sum(adopted) == took_over, (adopted, now, took_over)
    assert stack.ingestion_connected(timeout=5)


def test_a_replica_dead_while_none_listened_is_adopted_by_the_next_to_subscribe(
    stack: DockerStack, api: RegistryClient
) -> None:
    """Wills are retained until a connection with that id empties them: the session of a replica killed while no
    other of its share group was subscribed to the wills (a lone replica; one between CONNACK and SUBACK) is
    adopted by the next replica that subscribes, with what was queued to it meanwhile."""
    env = {**stack.env("ingestion"), "MQTT_SHARE_GROUP": f"late-{secrets.token_hex(3)}"}
    lone, late = 6, 7
    for replica in (lone, late):
        stack.ports[f"ingestion-{replica}"] = free_port()
    http = stack.services["ingestion"].ports[0].port
    stack._run("ingestion", env, {stack.ports[f"ingestion-{lone}"]: http}, replica=lone)
    try:
        assert eventually(lambda: stack.subscribed(lone), timeout=60), stack.logs()
        device = new_device(api, stack.mqtt_url, "late-adoption")
        docker("kill", "-s", "KILL", stack.name("ingestion", lone))
        seqs = [device.publish() for _ in range(20)]  # queued to the dead replica's session, the group's only one
        assert device.wait_acked(10)
        device.close()
        stack._run("ingestion", env, {stack.ports[f"ingestion-{late}"]: http}, replica=late)

        def adopted() -> bool:
            try:
                return (stack.metric("ingestion_sessions_adopted_total", late) == 1
                        and stack.metric("ingestion_messages_received_total", late) == len(seqs))
            except OSError:  # not serving yet
                return False

        assert eventually(adopted, timeout=30, interval=0.3), stack.logs()
    finally:
        docker("rm", "-f", stack.name("ingestion", lone), check=False)
        docker("stop", "-t", "10", stack.name("ingestion", late), check=False)  # drains and ends its session
