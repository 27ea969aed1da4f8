"""The docker provider passes the shared provider contract suite against the real engine."""

from __future__ import annotations

from typing import Any

import pytest
from docker_helpers import APP_IMAGE
from multicloud_docker.provider import DockerProvider

from multicloud.testing.contract import ProviderContract

pytestmark = pytest.mark.docker


class TestDockerProviderContract(ProviderContract):
    @pytest.fixture
    def provider(self, engine: Any, test_images: str) -> DockerProvider:
        # the contract runs two apps side by side: let the engine pick api's host port
        return DockerProvider({"publish": {"api.http": 0}, "stop_timeout": 1})

    @pytest.fixture
    def contract_service(self) -> dict[str, Any]:
        return {
            "image": APP_IMAGE,
            "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
            "resources": {"cpu": 1},
        }
