"""The in-memory provider passes the shared provider contract suite."""

import pytest

from multicloud.testing import MemoryCloud, MemoryProvider
from multicloud.testing.contract import ProviderContract


class TestMemoryProviderContract(ProviderContract):
    @pytest.fixture
    def provider(self) -> MemoryProvider:
        return MemoryProvider(cloud=MemoryCloud())
