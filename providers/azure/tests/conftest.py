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


@pytest.fixture
def arm(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """The emulator with its token in the environment, fresh faults and normal speed."""
    monkeypatch.setenv("MULTICLOUD_AZURE_TOKEN", emulator.token)
    emulator.backend.faults.clear()
    emulator.backend.op_seconds = 0.02
    yield emulator
    emulator.backend.faults.clear()


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
