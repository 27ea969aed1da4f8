"""ACI's data plane in the emulator: a container group runs as real containers sharing one
namespace. Through the real SDK and provider: the group's containers talk over localhost, the
public port answers on the group's own address, secureValue env and secret volumes arrive,
instanceView and the logs API report the real containers, a port clash is refused at plan,
and delete leaves nothing on the engine."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.errors import CapabilityError
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.testing.http import get_json

pytestmark = pytest.mark.docker

APP_IMAGE = "multicloud-test/app:1"
IMAGES = Path(__file__).resolve().parents[2] / "docker" / "tests" / "images"
SECRET = "tok-9f2Kq-unguessable"
SUBSCRIPTION = "00000000-0000-0000-0000-00000000da7a"


@pytest.fixture(scope="module")
def running_arm(data_plane_arm: EmulatorHandle) -> EmulatorHandle:
    """An ACI emulator with its data plane on the local engine (skips without an engine)."""
    _build_app_image()
    return data_plane_arm


def _build_app_image() -> None:
    """The docker tests' app image (a tiny HTTP server on $PORT), built once if missing."""
    import docker

    api = docker.APIClient(version="1.41", timeout=300)
    for tag, context in (("multicloud-test/python3:1", "base"), (APP_IMAGE, "app")):
        if not api.images(name=tag):
            log = list(api.build(path=str(IMAGES / context), tag=tag, rm=True, decode=True))
            assert not [c for c in log if "error" in c], log[-3:]


def spec(handle: EmulatorHandle, group: str, *, clash: bool = False) -> dict[str, Any]:
    """Two services in one group: front (public 8081) calls back (8080) at ${services.back.host}."""
    settings = {
        "provider": "azure-aci",
        "subscription_id": SUBSCRIPTION,
        "resource_group": group,
        "location": "West Europe",
        "arm_endpoint": handle.endpoint,
        "ca_bundle": handle.ca_bundle,
        "poll_interval": 0.05,
    }
    back_port = 8081 if clash else 8080
    return {
        "name": f"dp{group[-6:]}",
        "secrets": {"token": {"from_env": "TOKEN_VALUE"}},
        "services": {
            "back": {
                "image": APP_IMAGE,
                "env": {"SERVICE_NAME": "back", "PORT": str(back_port)},
                "ports": [{"name": "http", "port": back_port, "protocol": "http"}],
                "healthcheck": {"http": "/health", "interval": 1, "retries": 30},
            },
            "front": {
                "image": APP_IMAGE,
                "env": {
                    "SERVICE_NAME": "front",
                    "PORT": "8081",
                    "UPSTREAM": "http://${services.back.host}:8080/",
                    "TOKEN": "${secrets.token}",
                },
                "secrets": ["token"],
                "ports": [{"name": "http", "port": 8081, "protocol": "http", "expose": "public"}],
            },
        },
        "targets": {"azure": settings},
    }


def deployment(data: dict[str, Any], handle: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """A Deployment of the spec's azure target on the emulator."""
    monkeypatch.setenv("MULTICLOUD_AZURE_TOKEN", handle.token)
    settings = {k: v for k, v in data["targets"]["azure"].items() if k != "provider"}
    return Deployment(
        spec_from_dict(data),
        "azure",
        provider=AzureAciProvider(settings),
        environ={"TOKEN_VALUE": SECRET},
        retry=RetryPolicy(attempts=3, base_delay=0.1),
        health_timeout=90,
    )


def arm_get(handle: EmulatorHandle, path: str) -> Any:
    """GET an ARM path as any HTTPS client would."""
    import ssl

    context = ssl.create_default_context(cafile=handle.ca_bundle)
    request = urllib.request.Request(
        f"{handle.endpoint}{path}?api-version=2023-05-01", headers={"Authorization": f"Bearer {handle.token}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())


def engine_containers(handle: EmulatorHandle) -> list[dict[str, Any]]:
    """The containers of the emulator's data-plane session."""
    import docker

    assert handle.backend.runner is not None
    session = handle.backend.runner.plane.session
    api = docker.APIClient(version="1.41")
    return list(api.containers(all=True, filters={"label": [f"multicloud.dataplane={session}"]}))


def test_a_group_runs_as_containers_on_localhost(running_arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    group = f"rg-dp{int(time.time() * 1000) % 10**6:06d}"
    data = spec(running_arm, group)
    deploy = deployment(data, running_arm, monkeypatch)
    deploy.apply()
    path = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.ContainerInstance/"
        f"containerGroups/{deploy.provider.settings.group_name(data['name'])}"  # type: ignore[attr-defined]
    )
    view = arm_get(running_arm, path)
    ip = view["properties"]["ipAddress"]["ip"]
    assert ip.startswith("127.") and ip != "127.0.0.1"
    answer = get_json(f"http://{ip}:8081/upstream", timeout=60)
    assert answer == {"service": "front", "upstream": answer["upstream"]} and answer["upstream"]["service"] == "back"
    front = get_json(f"http://{ip}:8081/", timeout=60)
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert front["token_sha"] == digest and front["secret_files"] == {"token": digest}
    containers = {c["name"]: c["properties"]["instanceView"] for c in view["properties"]["containers"]}
    assert {n: v["currentState"]["state"] for n, v in containers.items()} == {"back": "Running", "front": "Running"}
    assert view["properties"]["instanceView"]["state"] == "Running"
    assert SECRET not in json.dumps(view)
    logs = arm_get(running_arm, f"{path}/containers/front/logs")["content"]
    assert "front listening on 8081" in logs
    assert not deploy.plan().has_changes
    deploy.destroy()
    deadline = time.monotonic() + 30
    while engine_containers(running_arm) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine_containers(running_arm) == []


def test_a_port_clash_is_refused_at_plan_and_nothing_runs(
    running_arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = spec(running_arm, "rg-clash", clash=True)
    before = len(engine_containers(running_arm))
    with pytest.raises(CapabilityError) as caught:
        deployment(data, running_arm, monkeypatch).plan()
    assert "port 8081/TCP is also used by services.back.ports.http" in str(caught.value)
    assert len(engine_containers(running_arm)) == before


def test_emulate_runs_containers_by_default_and_no_run_serves_the_api_only() -> None:
    from multicloud.testing.emulate import emulate

    with emulate("azure") as default:
        assert any("data plane: container groups run as real containers" in c for c in default.comments)
    with emulate("azure", "--no-run") as api_only:
        assert not any("data plane" in c for c in api_only.comments)


def test_the_fixture_runs_the_data_plane(azure_emulator: Any) -> None:
    assert any(note.startswith("data plane: container groups run") for note in azure_emulator.notes)
    assert azure_emulator.environment["MULTICLOUD_AZURE_ARM_ENDPOINT"] == azure_emulator.endpoint
