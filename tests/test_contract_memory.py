"""The in-memory provider passes the shared provider contract suite."""

from collections.abc import Callable
from typing import Any

import pytest

from multicloud.testing import MemoryCloud, MemoryProvider
from multicloud.testing.postgres_contract import PostgresContract


def worker(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A spec edit that changes the contract's worker service."""
    return lambda data: change(data["services"]["worker"])


def add_volume(data: dict[str, Any]) -> None:
    data["volumes"] = {"cache": None}
    data["services"]["worker"]["volumes"] = ["cache:/cache"]


def build_instead(service: dict[str, Any]) -> None:
    del service["image"]
    service["build"] = {"context": "."}


class TestMemoryProviderContract(PostgresContract):
    replace_edits = {
        "service.image": worker(lambda s: s.update(image="registry.example.com/contract/app:2")),
        "service.build": worker(build_instead),
        "service.command": worker(lambda s: s.update(command=["serve", "--fast"])),
        "service.ports": worker(lambda s: s.update(ports=[{"name": "admin", "port": 9000}])),
        "service.volumes": add_volume,
        "service.user": worker(lambda s: s.update(user="1001")),
    }

    @pytest.fixture
    def cloud(self) -> MemoryCloud:
        return MemoryCloud()

    @pytest.fixture
    def provider(self, cloud: MemoryCloud) -> MemoryProvider:
        return MemoryProvider(cloud=cloud)

    @pytest.fixture
    def provider_factory(self, cloud: MemoryCloud) -> Callable[[], MemoryProvider]:
        return lambda: MemoryProvider(cloud=cloud)
