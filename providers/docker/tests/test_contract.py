"""The docker provider passes the shared provider contract suite against the real engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from docker_helpers import APP_IMAGE
from multicloud_docker.provider import DockerProvider

from multicloud.testing.contract import ProviderContract

pytestmark = pytest.mark.docker
SECOND_TAG = ("multicloud-test/app", "contract-2")
SETTINGS = {"publish": {"api.http": 0}, "stop_timeout": 1}  # two apps side by side: engine-picked host port


def worker(**fields: Any) -> Callable[[dict[str, Any]], None]:
    """A spec edit that sets fields of the contract's worker service."""
    return lambda data: data["services"]["worker"].update(fields)


def add_volume(data: dict[str, Any]) -> None:
    data["volumes"] = {"cache": None}
    data["services"]["worker"]["volumes"] = ["cache:/cache"]


class TestDockerProviderContract(ProviderContract):
    replace_edits = {
        "service.image": worker(image=":".join(SECOND_TAG)),
        "service.command": worker(command=["python3", "/app/app.py", "--contract"]),
        "service.entrypoint": worker(entrypoint=["python3", "/app/app.py"]),
        "service.env": lambda data: data["services"]["worker"]["env"].update(LEVEL="3"),
        "service.ports": worker(ports=[{"name": "admin", "port": 9000}]),
        "service.healthcheck": worker(healthcheck={"tcp": 8080, "interval": "0.6s", "retries": 40}),
        "service.user": worker(user="1000"),
        "service.read_only": worker(read_only=True),
        "service.volumes": add_volume,
        "service.secrets": worker(secrets=["token"]),
        "service.cpu": worker(resources={"cpu": 0.5}),
        "service.memory": worker(resources={"cpu": 1, "memory": "256Mi"}),
    }
    replace_unreachable = {
        "service.network": "named after the app; a spec edit cannot change it",
        "service.security": "from the target's capabilities/init settings, not the spec",
        "network.name": "named after the app; a spec edit cannot change it",
        "network.driver": "always bridge",
    }

    @pytest.fixture
    def provider_factory(self, engine: Any, test_images: str) -> Callable[[], DockerProvider]:
        engine.tag(APP_IMAGE, *SECOND_TAG)
        return lambda: DockerProvider(SETTINGS)

    @pytest.fixture
    def provider(self, provider_factory: Callable[[], DockerProvider]) -> DockerProvider:
        return provider_factory()

    @pytest.fixture
    def contract_service(self) -> dict[str, Any]:
        return {
            "image": APP_IMAGE,
            "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
            "resources": {"cpu": 1},
        }
