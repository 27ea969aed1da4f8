"""The provider contract suite, run by aws-ecs against the emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multicloud_aws.provider import AwsEcsProvider

from multicloud.testing.contract import ProviderContract


class TestAwsEcsContract(ProviderContract):
    @pytest.fixture
    def provider(self, make_provider: Callable[..., AwsEcsProvider]) -> AwsEcsProvider:
        return make_provider()
