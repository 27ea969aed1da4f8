"""`multicloud exec` on Cloud Run: refused plainly (no API reaches a running instance), nothing called."""

from __future__ import annotations

import io

import pytest
from multicloud_gcp.provider import CloudRunProvider

from multicloud.errors import UserError
from multicloud.terminal import Terminal


def test_exec_is_refused() -> None:
    provider = CloudRunProvider({"project": "exec-test-1", "region": "europe-west1"})
    terminal = Terminal(None, io.BytesIO(), io.BytesIO())
    with pytest.raises(UserError, match="Cloud Run cannot run a command in service 'web'") as refused:
        provider.exec("app", "web", ["sh"], replica=1, terminal=terminal)
    assert refused.value.exit_code == 2
