"""Emulators the azure tests share (a module of its own: pytest imports every conftest as `conftest`)."""

from __future__ import annotations

import pytest
from multicloud_azure.emulator import AzureEmulator, EmulatorHandle


def data_plane_emulator() -> EmulatorHandle:
    """An ARM emulator whose data plane runs on the local engine; skips the test without one."""
    handle = AzureEmulator(op_seconds=0.02, run=True).serve()
    if handle.backend.runner is None:
        handle.stop()
        pytest.skip(handle.running.notes[0])
    return handle
