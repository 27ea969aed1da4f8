"""`multicloud exec` on ACI through the real SDK and the emulator's exec API: a WebSocket with a
one-time password, bridged to the data plane's real container (a terminal, one program, no arguments)."""

from __future__ import annotations

import io
import os
import re
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
import yaml
from multicloud_azure.emulator import EmulatorHandle

from multicloud.cli.main import main
from multicloud.errors import UserError
from multicloud.terminal import Terminal

pytestmark = pytest.mark.docker

SUBSCRIPTION = "00000000-0000-0000-0000-0000000e8ec0"


@pytest.fixture(scope="module")
def deployed(
    data_plane_arm: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EmulatorHandle, Path]]:
    """The data-plane ACI emulator and a spec file of one waiting service applied there."""
    handle = data_plane_arm
    root = tmp_path_factory.mktemp("aci-exec")
    settings = {
        "provider": "azure-aci", "subscription_id": SUBSCRIPTION, "resource_group": f"rg-x{os.getpid()}",
        "location": "West Europe", "arm_endpoint": handle.endpoint, "ca_bundle": handle.ca_bundle,
        "poll_interval": 0.05,
    }
    spec = {
        "name": f"ex{os.getpid()}",
        "services": {"box": {"image": "debian:bookworm-slim", "command": ["sleep", "infinity"]}},
        "targets": {"azure": settings},
    }
    (root / "multicloud.yaml").write_text(yaml.safe_dump(spec))
    previous = os.environ.get("MULTICLOUD_AZURE_TOKEN")
    os.environ["MULTICLOUD_AZURE_TOKEN"] = handle.token
    try:
        assert main(["apply", "-f", str(root / "multicloud.yaml"), "--yes"]) == 0
        yield handle, root
    finally:
        main(["destroy", "-f", str(root / "multicloud.yaml"), "--yes"])
        if previous is None:
            os.environ.pop("MULTICLOUD_AZURE_TOKEN", None)
        else:
            os.environ["MULTICLOUD_AZURE_TOKEN"] = previous


def _deployment(root: Path) -> Any:
    from multicloud.api import Deployment

    return Deployment.from_file(str(root / "multicloud.yaml"), "azure")


def test_a_shell_runs_in_the_real_container(deployed: tuple[EmulatorHandle, Path]) -> None:
    """Keys typed (here: piped) reach a shell on the container's terminal; its output comes back;
    the end of input is Ctrl-D, which ends the shell, and the session with it."""
    _, root = deployed
    read, write = os.pipe()
    os.write(write, b"echo answer-$((6 * 7)) from $(hostname)\nstty size\n")
    os.close(write)
    out = io.BytesIO()
    with os.fdopen(read, "rb", buffering=0) as stdin:
        terminal = Terminal(stdin, out, io.BytesIO(), tty=True, size=(33, 101))
        code = _deployment(root).exec("box", ["/bin/sh"], terminal=terminal)
    text = out.getvalue().decode()
    assert code == 0
    assert "answer-42 from " in text
    assert "33 101" in text  # the terminalSize of the exec request


def test_through_the_cli(deployed: tuple[EmulatorHandle, Path], capfd: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, root = deployed
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"cat /etc/debian_version\n")))
    assert main(["exec", "-f", str(root / "multicloud.yaml"), "box", "--", "/bin/sh"]) == 0
    assert re.search(r"\b12\.\d+\r\n", capfd.readouterr().out)  # bookworm's version, over a terminal
    # ACI takes one program without arguments; one replica per service
    assert main(["exec", "-f", str(root / "multicloud.yaml"), "box", "--", "sh", "-c", "id"]) == 2
    assert "ACI's exec runs one program without arguments" in capfd.readouterr().err
    assert main(["exec", "-f", str(root / "multicloud.yaml"), "--replica", "2", "box", "--", "sh"]) == 2
    assert "no replica 2" in capfd.readouterr().err


def test_the_session_needs_its_password_once(deployed: tuple[EmulatorHandle, Path]) -> None:
    """A wrong password closes the socket (1008) and runs nothing; a granted URI works only once."""
    handle, root = deployed
    provider = _deployment(root).provider
    group = provider.settings.group_name(f"ex{os.getpid()}")
    tls = {"ca_certs": handle.ca_bundle, "cert_reqs": ssl.CERT_REQUIRED}
    granted = provider.client.exec_command(group, "box", "/bin/sh", 24, 80)
    assert granted["webSocketUri"].startswith("wss://") and granted["password"]
    ws = websocket.create_connection(granted["webSocketUri"], sslopt=tls, timeout=10)
    ws.send("not-the-password")
    opcode, frame = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame.data[:2], "big") == 1008
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(granted["webSocketUri"], sslopt=tls, timeout=10)


def test_unmasked_client_frames_are_refused(deployed: tuple[EmulatorHandle, Path]) -> None:
    """RFC 6455: a client's frames are masked; the emulator closes the socket (1002) at one that is not."""
    import base64
    import socket
    from urllib.parse import urlsplit

    handle, root = deployed
    provider = _deployment(root).provider
    granted = provider.client.exec_command(provider.settings.group_name(f"ex{os.getpid()}"), "box", "/bin/sh", 24, 80)
    where = urlsplit(granted["webSocketUri"])
    context = ssl.create_default_context(cafile=handle.ca_bundle)
    with socket.create_connection((where.hostname, where.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=where.hostname) as conn:
        key = base64.b64encode(os.urandom(16)).decode()
        conn.sendall((f"GET {where.path} HTTP/1.1\r\nHost: {where.netloc}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 101")
        password = granted["password"].encode()
        conn.sendall(bytes([0x81, len(password)]) + password)  # unmasked
        frame = answer.split(b"\r\n\r\n", 1)[1] or conn.recv(4096)
        assert frame[0] == 0x88 and int.from_bytes(frame[2:4], "big") == 1002


def test_an_unknown_service_is_refused(deployed: tuple[EmulatorHandle, Path]) -> None:
    _, root = deployed
    with pytest.raises(UserError, match="no service 'ghost'"):
        _deployment(root).exec("ghost", ["/bin/sh"], terminal=Terminal(None, io.BytesIO(), io.BytesIO()))


def test_the_session_ends_with_the_program_while_input_stays_open(deployed: tuple[EmulatorHandle, Path]) -> None:
    """The relay ends when the server closes the session, not when input ends."""
    _, root = deployed
    read, write = os.pipe()
    out = io.BytesIO()
    result: list[int] = []

    def run() -> None:
        with os.fdopen(read, "rb", buffering=0) as stdin:
            terminal = Terminal(stdin, out, io.BytesIO(), tty=True)
            result.append(_deployment(root).exec("box", ["/bin/true"], terminal=terminal))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    os.close(write)
    assert result == [0] and not worker.is_alive()
