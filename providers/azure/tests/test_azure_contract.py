"""The provider contract suite, run by azure-aci against the ARM emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multicloud_azure.provider import AzureAciProvider

from multicloud.testing.contract import ProviderContract


class TestAzureAciContract(ProviderContract):
    """Every contract behaviour, through the real SDK client, over HTTPS with a bearer token."""

    @pytest.fixture
    def provider(self, make_provider: Callable[..., AzureAciProvider]) -> AzureAciProvider:
        return make_provider()
