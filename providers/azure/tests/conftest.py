"""Fixtures for the azure-aci tests: one ARM emulator per session (HTTPS, bearer token),
providers built with the real, unmodified ContainerInstanceManagementClient against it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from multicloud_azure.emulator import AzureEmulator, EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

DATA = Path(__file__).parent / "data"
SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks in a tmp directory, never in ~."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    return state


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    """The ARM emulator, serving HTTPS on a free port for the whole session."""
    handle = AzureEmulator(op_seconds=0.02).serve()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def data_plane_arm() -> Iterator[EmulatorHandle]:
    """An ARM emulator whose data plane runs on the local engine, for one test module (skips
    without an engine)."""
    handle = AzureEmulator(op_seconds=0.02, run=True).serve()
    if handle.backend.runner is None:
        handle.stop()
        pytest.skip(handle.running.notes[0])
    yield handle
    handle.stop()


@pytest.fixture
def arm(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """The emulator with its token in the environment, fresh faults and normal speed."""
    monkeypatch.setenv("MULTICLOUD_AZURE_TOKEN", emulator.token)
    backend = emulator.backend
    backend.faults.clear()
    backend.failures.clear()
    backend.op_seconds, backend.page_size, backend.region_cpu = 0.02, 100, None
    yield emulator
    backend.faults.clear()
    backend.failures.clear()
    backend.region_cpu = None
    backend.op_seconds, backend.page_size = 0.02, 100


@pytest.fixture
def resource_group() -> str:
    """A resource group of this test's own, so tests never see each other's groups."""
    return f"rg-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(arm: EmulatorHandle, resource_group: str) -> dict[str, Any]:
    """Target settings pointing the provider at the emulator."""
    return {
        "subscription_id": SUBSCRIPTION,
        "resource_group": resource_group,
        "location": "West Europe",
        "arm_endpoint": arm.endpoint,
        "ca_bundle": arm.ca_bundle,
        "poll_interval": 0.05,
    }


@pytest.fixture
def make_provider(settings: dict[str, Any]) -> Callable[..., AzureAciProvider]:
    """Build a provider from the emulator settings plus overrides."""

    def make(**overrides: Any) -> AzureAciProvider:
        return AzureAciProvider({**settings, **overrides})

    return make


IOT_SECRETS = {
    "IOT_DB_PASSWORD": "db-pw-Zq81",
    "IOT_ADMIN_TOKEN": "admin-token-Kp02",
    "IOT_BROKER_FEED_TOKEN": "feed-token-Wm33",
    "IOT_INGESTION_MQTT_PASSWORD": "ingest-pw-Yt44",
    "IOT_REGISTRY_MQTT_PASSWORD": "registry-pw-Rb55",
    "IOT_DATABASE_URL": "postgresql://iot:db-pw-Zq81@iot-db.postgres.database.azure.com:5432/iot",
    "IOT_TLS_CERT": "-----BEGIN CERTIFICATE-----\ncert-Tt48\n-----END CERTIFICATE-----",
    "IOT_TLS_KEY": "-----BEGIN PRIVATE KEY-----\nkey-Vv93\n-----END PRIVATE KEY-----",
}
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iot-backend" / "multicloud.yaml"


@pytest.fixture
def iot_secrets() -> dict[str, str]:
    """Values for the IoT example's secrets (markers to search output for)."""
    return dict(IOT_SECRETS)


@pytest.fixture
def iot(settings: dict[str, Any]) -> dict[str, Any]:
    """The IoT example's spec as a dict, its azure target on the emulator (see iot_spec_dict)."""
    return iot_spec_dict(settings)


def iot_spec_dict(settings: dict[str, Any]) -> dict[str, Any]:
    """The IoT example with its azure target pointed at the emulator, running pushed images (the example
    itself fits one ACI group: one replica per service there, a distinct port per HTTP service)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    azure = data["targets"]["azure"]
    azure.update({k: v for k, v in settings.items()})
    overrides = azure.setdefault("overrides", {})
    for name in data["services"]:  # pushed images instead of builds (those are pushed in test_azure_build.py)
        if name not in azure.get("exclude", []):
            overrides.setdefault(name, {}).update({"build": None, "image": f"iotbackend.azurecr.io/iot/{name}:1.0"})
    data["targets"] = {"azure": azure}
    return data
