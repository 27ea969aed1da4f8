"""The example as users run it: applied by multicloud's Docker provider, then used over MQTT.

The other tests here run the images with plain `docker run` so they can stop and restart
single containers; this one proves the spec itself: apply, devices' readings flow, re-plan
is empty, destroy leaves nothing.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import engine_up
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient

from multicloud import Deployment, spec_from_dict
from multicloud.planner import Action

pytestmark = pytest.mark.docker
EXAMPLE = Path(__file__).resolve().parents[1]
SECRETS = ("DB_PASSWORD", "ADMIN_TOKEN", "BROKER_FEED_TOKEN", "INGESTION_MQTT_PASSWORD", "REGISTRY_MQTT_PASSWORD")


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Deployment, dict[str, str]]]:
    """The example applied to the local engine under a fresh app name, on ports the engine picks."""
    pytest.importorskip("paho.mqtt", reason="the device simulator needs paho-mqtt>=2.1")
    if not engine_up():
        pytest.skip("no Docker engine (scripts/setup-engine.sh starts one)")
    data: dict[str, Any] = yaml.safe_load((EXAMPLE / "multicloud.yaml").read_text())
    data["name"] = f"iot-e2e-{uuid.uuid4().hex[:6]}"
    data["targets"] = {
        "local": {
            "provider": "docker",
            "bind_address": "127.0.0.1",
            "public_host": "127.0.0.1",
            "publish": {"broker.mqtt": 0, "broker.mqtt-ws": 0, "registry.http": 0},
        }
    }
    environ = {f"IOT_{name}": secrets.token_urlsafe(18) for name in SECRETS}
    deployment = Deployment(spec_from_dict(data, base_dir=str(EXAMPLE)), "local", environ=environ, health_timeout=240)
    try:
        deployment.apply()
        yield deployment, environ
    finally:
        deployment.destroy(volumes=True)


def endpoint(deployment: Deployment, service: str, port: str) -> str:
    """The URL a public port is reached at."""
    return next(e.url for e in deployment.endpoints() if (e.service, e.port) == (service, port))


def test_readings_flow_through_the_deployed_stack(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, environ = deployed
    api = RegistryClient(endpoint(deployment, "registry", "http"), environ["IOT_ADMIN_TOKEN"])
    started = time.time()
    tcp = [new_device(api, endpoint(deployment, "broker", "mqtt"), f"e2e-tcp-{i}") for i in range(3)]
    ws = new_device(api, endpoint(deployment, "broker", "mqtt-ws"), "e2e-ws")
    for device in tcp:
        for _ in range(100):
            device.publish()
    for _ in range(20):
        ws.publish()
    devices = [*tcp, ws]
    assert all(d.wait_acked(15) for d in devices)

    def all_stored() -> bool:
        return all(sorted(stored_seqs(api, d.device_id)) == sorted(d.stats.acked_seqs) for d in devices)

    assert eventually(all_stored, timeout=5.0), "readings not all visible through the API within 5 s"
    for device in devices:
        assert api.device(device.device_id)["last_seen"] is not None
        device.close()
    assert time.time() - started < 120


def test_the_deployed_stack_matches_its_spec(deployed: tuple[Deployment, dict[str, str]]) -> None:
    deployment, _ = deployed
    planned = deployment.plan()
    assert [c.key for c in planned.changes if c.action is not Action.NOOP] == []
    statuses = {s.service: s for s in deployment.status()}
    assert statuses["ingestion"].healthy == 2
    assert all(s.running == s.desired for s in statuses.values())
