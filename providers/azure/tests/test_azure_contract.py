"""The provider contract suite, run by azure-aci against the ARM emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_azure.provider import AzureAciProvider

from multicloud.testing.postgres_contract import PostgresContract


class TestAzureAciContract(PostgresContract):
    """Every contract behaviour (databases' too: flexible servers), through the real SDK clients,
    over HTTPS with a bearer token."""

    replace_edits = {
        "container.cpu": lambda data: worker(data).update(resources={"cpu": 0.5}),
        "container.memory_gb": lambda data: worker(data).update(resources={"memory": "1536Mi"}),
        "group.containers": lambda data: data["services"].update(extra={"image": worker(data)["image"]}),
    }
    replace_unreachable = {
        "group.location": "a target setting (location): test_azure_replace",
        "group.os_type": "always Linux",
        "group.restart_policy": "a target setting (restart_policy): test_azure_replace",
        "group.sku": "a target setting, not the spec",
    }

    @pytest.fixture
    def provider_factory(self, make_provider: Callable[..., AzureAciProvider]) -> Callable[[], AzureAciProvider]:
        return make_provider

    @pytest.fixture
    def provider(self, make_provider: Callable[..., AzureAciProvider]) -> AzureAciProvider:
        return make_provider()


def worker(data: dict[str, Any]) -> dict[str, Any]:
    """The contract's worker service in the spec data."""
    service: dict[str, Any] = data["services"]["worker"]
    return service
