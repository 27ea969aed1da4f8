"""pytest fixtures for the emulators, built once here for every provider's pytest plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multicloud.contract import RunningEmulator
from multicloud.emulators import emulator


def emulator_fixture(name: str) -> Callable[..., Any]:
    """A session fixture `<name>_emulator`: the emulator running for the test session, its
    workload's containers too when a Docker engine is reachable (stopped and removed after).
    Parametrize it indirectly with `{"run": False}` for the API only."""

    @pytest.fixture(scope="session", name=f"{name}_emulator")
    def running(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
        with emulator(name, **getattr(request, "param", {})) as started:
            yield started

    running.__doc__ = f"A running {name} emulator: `.endpoint`, `.environment` (to export), `.notes` (what runs)."
    return running
