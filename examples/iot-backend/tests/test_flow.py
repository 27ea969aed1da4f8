"""Register devices, publish over TCP and WebSockets, read everything back through the API."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from helpers import eventually, new_device, stored_seqs
from iotsim.api import ApiError, RegistryClient
from stack import DockerStack

pytestmark = pytest.mark.docker


def test_readings_over_tcp_and_websockets_are_visible_within_5_s(stack: DockerStack, api: RegistryClient) -> None:
    started = time.time()
    tcp = [new_device(api, stack.mqtt_url, f"tcp-{i}") for i in range(3)]
    ws = new_device(api, stack.ws_url, "websocket")
    for device in tcp:
        for _ in range(100):
            device.publish()
    for _ in range(25):
        ws.publish()
    devices = [*tcp, ws]
    assert all(d.wait_acked(10) for d in devices)
    acked = time.monotonic()

    def all_stored() -> bool:
        return all(sorted(stored_seqs(api, d.device_id)) == sorted(d.stats.acked_seqs) for d in devices)

    assert eventually(all_stored, timeout=5.0), "readings not all visible through the API within 5 s"
    visible_after = time.monotonic() - acked
    assert visible_after <= 5.0
    for device in devices:
        info = api.device(device.device_id)
        assert info["status"] == "active"
        assert info["last_seen"] is not None
        assert datetime.fromisoformat(info["last_seen"]).timestamp() >= started
        assert len(device.stats.acked_seqs) == (25 if device is ws else 100)
        device.close()


def test_readings_filter_by_time_window(stack: DockerStack, api: RegistryClient) -> None:
    device = new_device(api, stack.mqtt_url)
    device.publish()
    time.sleep(1.1)
    middle = time.time()
    device.publish()
    assert device.wait_acked(5)
    assert eventually(lambda: len(stored_seqs(api, device.device_id)) == 2, timeout=5.0)
    newer = api.readings(device.device_id, since=middle)
    older = api.readings(device.device_id, until=middle)
    assert [r["seq"] for r in newer] == [max(device.stats.acked_seqs)]
    assert [r["seq"] for r in older] == [min(device.stats.acked_seqs)]
    device.close()


def test_api_requires_an_operator_token(stack: DockerStack) -> None:
    for token in ("", "not-a-token"):
        with pytest.raises(ApiError) as raised:
            RegistryClient(stack.api_url, token).devices()
        assert raised.value.status == 401


def test_openapi_is_served(stack: DockerStack) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{stack.api_url}/openapi.json", timeout=5) as response:
        schema = json.load(response)
    assert {"/devices", "/devices/{device_id}", "/devices/{device_id}/readings"} <= set(schema["paths"])


def test_device_ids_are_never_reused(stack: DockerStack, api: RegistryClient) -> None:
    first = api.register(name="unique")
    with pytest.raises(ApiError) as raised:
        api.register(first["id"])
    assert raised.value.status == 409
