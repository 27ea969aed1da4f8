"""Shared fixtures for the core tests: no test writes outside its tmp directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks (the only machine-local state) in a tmp directory, never in ~."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    return state
