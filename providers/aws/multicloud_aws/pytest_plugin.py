"""pytest plugin (entry point `pytest11`): the `aws_emulator` fixture, a moto server with
multicloud's gaps filled, shared by a test session. Importing this module imports no SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multicloud.contract import RunningEmulator


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[RunningEmulator]:
    """A running AWS emulator; `.endpoint` and `.environment` say how to reach it."""
    from multicloud_aws.emulator import AwsEmulator

    running = AwsEmulator().start()
    try:
        yield running
    finally:
        running.stop()
