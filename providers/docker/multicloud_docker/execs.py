"""`multicloud exec` on the Docker engine: the engine's exec on the hijacked connection, as
`docker exec` does it (stdin half-closed at its end, output demultiplexed unless on a terminal)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any

from multicloud.errors import MulticloudError, UserError
from multicloud.terminal import STDOUT, Terminal, relay
from multicloud_docker.client import guard
from multicloud_docker.observe import Replica, replicas


def run(api: Any, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
    """Run `command` in the newest running container of that replica (1-based); return its exit
    status. UserError when there is none; an exec that cannot start leaves nothing behind."""
    container = running_replica(replicas(api, app), app, service, replica)
    return run_in(api, container.id, command, terminal, where=container.name)


def running_replica(found: Sequence[Replica], app: str, service: str, replica: int) -> Replica:
    """The newest running container of replica `replica` of a service (UserError naming those running)."""
    mine = [r for r in found if r.service == service and r.state == "running"]
    chosen = [r for r in mine if r.index == replica]
    if not chosen:
        running = ", ".join(str(i) for i in sorted({r.index for r in mine})) or "none"
        raise UserError(
            f"service {service!r} of app {app!r} has no running replica {replica} (running replicas: {running})",
            hint="see `multicloud status`",
        )
    return max(chosen, key=lambda r: r.created)


def run_in(api: Any, container: str, command: Sequence[str], terminal: Terminal, *, where: str) -> int:
    """Run `command` in a container through the engine's exec, relaying `terminal`; its exit status."""
    conn, exec_id = start(api, container, command, stdin=terminal.stdin is not None, tty=terminal.tty, where=where)
    resize(api, exec_id, terminal.size, where)
    try:
        relay(terminal, output(conn, terminal.tty), conn.sendall, lambda: conn.shutdown(socket.SHUT_WR))
    finally:
        conn.close()
    return exit_status(api, exec_id, where)


def start(api: Any, container: str, command: Sequence[str], *, stdin: bool, tty: bool, where: str
          ) -> tuple[socket.socket, str]:
    """Start `command` in a container (the engine's exec); return the connection carrying its
    streams and the exec's id. Nothing is left behind when it cannot start."""
    with guard(f"starting {command[0]!r} in {where}"):
        made = api.exec_create(container, list(command), stdin=stdin, tty=tty, stdout=True, stderr=True)
        hijacked = api.exec_start(made["Id"], socket=True, tty=tty)
    return getattr(hijacked, "_sock", hijacked), str(made["Id"])


def resize(api: Any, exec_id: str, size: tuple[int, int] | None, where: str) -> None:
    """Size the exec's terminal (rows, columns), if asked; a command that has already ended cannot
    be resized, and as docker does, that is no error."""
    if size is None:
        return
    try:
        with guard(f"sizing the terminal in {where}"):
            api.exec_resize(exec_id, height=size[0], width=size[1])
    except MulticloudError:
        pass


def exit_status(api: Any, exec_id: str, where: str) -> int:
    """The exec's exit code once the engine has recorded it (it may lag the stream's end briefly)."""
    deadline = time.monotonic() + 5.0
    while True:
        with guard(f"reading the exit status in {where}"):
            info = api.exec_inspect(exec_id)
        if info.get("ExitCode") is not None and not info.get("Running"):
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.02)


def output(conn: socket.socket, tty: bool) -> Iterator[tuple[int, bytes]]:
    """(stream, bytes) from the connection: one raw stream on a terminal, else the engine's
    frames (a header of stream type and length before each chunk)."""
    if tty:
        while chunk := conn.recv(65536):
            yield STDOUT, chunk
        return
    while header := _exactly(conn, 8):
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        yield (stream if stream in (1, 2) else STDOUT), _exactly(conn, size)


def _exactly(conn: socket.socket, size: int) -> bytes:
    """`size` bytes from the connection (fewer only at its end)."""
    parts, left = [], size
    while left and (chunk := conn.recv(left)):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
