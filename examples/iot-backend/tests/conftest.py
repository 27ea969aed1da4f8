"""Session fixtures: build the images once, run one stack for every test, tear it down after."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1]
for path in (EXAMPLE, EXAMPLE / "tests", EXAMPLE / "services" / "common"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from iotsim.api import RegistryClient  # noqa: E402
from stack import DockerStack, build_images  # noqa: E402


def engine_up() -> bool:
    """Whether a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0


@pytest.fixture(scope="session")
def stack() -> Iterator[DockerStack]:
    """The whole stack (db, auth, broker, 2 x ingestion, registry) on its own network."""
    pytest.importorskip("paho.mqtt", reason="the device simulator needs paho-mqtt>=2.1 (pip install paho-mqtt)")
    if not engine_up():
        pytest.skip("no Docker engine (scripts/setup-engine.sh starts one)")
    running = DockerStack(build_images(), ingestion_replicas=2)
    try:
        running.start()
        yield running
    except BaseException:
        print(running.logs(60))
        raise
    finally:
        running.stop()


@pytest.fixture(scope="session")
def api(stack: DockerStack) -> RegistryClient:
    """A registry client with the bootstrap admin token."""
    return RegistryClient(stack.api_url, stack.admin_token)
