"""Shared fixtures for the core tests: no test writes outside its tmp directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from multicloud.testing import MemoryCloud


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks (the only machine-local state) and the compiled-form cache in tmp directories, never in ~."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return state


@pytest.fixture
def cloud() -> MemoryCloud:
    """A fresh in-memory cloud."""
    return MemoryCloud()
