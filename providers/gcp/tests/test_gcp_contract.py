"""The provider contract suite, against the Cloud Run emulator over REST and over gRPC."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.testing.contract import ProviderContract


class TestCloudRunContract(ProviderContract):
    @pytest.fixture
    def provider_factory(self, cloudrun: RunningCloudRun, transport: str) -> Callable[[], CloudRunProvider]:
        return lambda: CloudRunProvider(cloudrun.settings(transport))

    @pytest.fixture
    def provider(self, cloudrun: RunningCloudRun, transport: str) -> CloudRunProvider:
        return CloudRunProvider(cloudrun.settings(transport))
