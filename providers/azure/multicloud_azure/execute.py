"""`multicloud exec` on ACI: the exec API grants a WebSocket and a one-time password (sent as
the first message), then keys go in and the container's terminal output comes back, as the Azure
CLI's `az container exec` does. ACI runs one program without arguments, always on a terminal,
and reports no exit status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from multicloud.errors import ProviderError, UserError
from multicloud.terminal import STDOUT, Terminal, relay
from multicloud.translate import unreachable
from multicloud_azure.api import AciApi

END_OF_INPUT = b"\x04"
"""Ctrl-D: how the end of piped input reaches a program reading ACI's terminal (no half-close)."""


def run(client: AciApi, group: str, container: str, command: Sequence[str], *, terminal: Terminal,
        ca_bundle: str | None) -> int:
    """Run `command` (one program) in the container's terminal and relay it; 0 when the session
    ends, since ACI does not report the command's status. UserError for arguments (ACI takes none)."""
    if len(command) != 1:
        raise UserError(
            f"ACI's exec runs one program without arguments (an Azure limit), not {' '.join(command)!r}",
            hint="run a shell (-- /bin/sh) and type the command there",
        )
    rows, cols = terminal.size or (24, 80)
    granted = client.exec_command(group, container, command[0], rows, cols)
    import websocket

    where = f"the exec session of {group}/{container}"
    try:
        ws = websocket.create_connection(
            str(granted["webSocketUri"]), sslopt={"ca_certs": ca_bundle} if ca_bundle else {}, timeout=30
        )
        ws.settimeout(None)
        ws.send(str(granted["password"]))
    except (OSError, websocket.WebSocketException) as exc:
        raise unreachable("ACI", f"opening {where}", exc, "check the network path to the container group") from exc
    try:
        relay(terminal, _output(ws, where), ws.send_binary, lambda: ws.send_binary(END_OF_INPUT))
    finally:
        ws.close()
    return 0


def _output(ws: Any, where: str) -> Iterator[tuple[int, bytes]]:
    """The terminal's output from the session's messages, until the server closes it."""
    import websocket

    while True:
        try:
            data = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            return
        except (OSError, websocket.WebSocketException) as exc:
            raise ProviderError(f"{where} broke off: {exc}") from exc
        if not data:
            return
        yield STDOUT, data.encode() if isinstance(data, str) else bytes(data)
