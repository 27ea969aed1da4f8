"""Fixtures for the docker provider tests: a real engine, shared test images, unique apps.

Engine tests skip (with the reason) only when no engine answers. Images are built from
the local stand-in `debian:bookworm-slim` once and cached by tag; nothing is ever pulled.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for docker_helpers under --import-mode=importlib

from docker_helpers import API_VERSION, APP_IMAGE, CallLog, purge

HERE = Path(__file__).parent
IMAGES = HERE / "images"
BASE_IMAGE = "debian:bookworm-slim"
PYTHON_IMAGE = "multicloud-test/python3:1"


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks and the compiled-form cache in tmp directories, never in ~."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return state


@pytest.fixture(scope="session")
def engine() -> Any:
    """A low-level client of a running engine, or a skip saying why there is none."""
    try:
        import docker

        api = docker.APIClient(version=API_VERSION, timeout=30)
        api.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine reachable ({type(exc).__name__}: {exc}); start one with scripts/setup-engine.sh")
    return api


@pytest.fixture(scope="session")
def test_images(engine: Any) -> str:
    """Build the python3 base and the test app image once (cached by tag); return the app image."""
    if not _has_image(engine, BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} is missing; scripts/setup-engine.sh builds the local stand-in")
    for tag, context in ((PYTHON_IMAGE, IMAGES / "base"), (APP_IMAGE, IMAGES / "app")):
        if tag == PYTHON_IMAGE and _has_image(engine, tag):
            continue
        for chunk in engine.build(path=str(context), tag=tag, rm=True, forcerm=True, decode=True):
            if "error" in chunk:
                raise RuntimeError(f"building {tag} failed: {chunk['error']}")
    return APP_IMAGE


@pytest.fixture(scope="session")
def postgres_image(engine: Any) -> str:
    """postgres:15, the image a postgres resource runs: the stand-in scripts/postgres-image.sh builds
    offline (from examples/iot-backend/services/db) when the engine lacks it."""
    import subprocess

    if not _has_image(engine, BASE_IMAGE):
        pytest.skip(f"{BASE_IMAGE} is missing; scripts/setup-engine.sh builds the local stand-in")
    script = HERE.parents[2] / "scripts" / "postgres-image.sh"
    subprocess.run([str(script)], check=True, capture_output=True, timeout=1800)
    return "postgres:15"


def _has_image(api: Any, ref: str) -> bool:
    import docker.errors

    try:
        api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture
def calls() -> CallLog:
    """The call log of the `provider` fixture."""
    return CallLog()


@pytest.fixture
def app(engine: Any) -> Iterator[str]:
    """A unique app name; everything labelled with it is removed afterwards."""
    name = f"mct-{uuid.uuid4().hex[:8]}"
    yield name
    purge(engine, name)
