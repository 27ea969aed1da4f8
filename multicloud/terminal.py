"""The local end of `multicloud exec`: which streams a remote command gets, the terminal in raw
mode while it runs, and the relay that copies input to it and its output back."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

STDOUT, STDERR = 1, 2


@dataclass(frozen=True)
class Terminal:
    """Where a remote command's input comes from and its output goes; `tty` asks for a terminal
    on the remote side (whose output then arrives as one stream) of `size` (rows, columns)."""

    stdin: BinaryIO | None
    stdout: BinaryIO
    stderr: BinaryIO
    tty: bool = False
    size: tuple[int, int] | None = None


def relay(
    terminal: Terminal,
    output: Iterable[tuple[int, bytes]],
    send: Callable[[bytes], object],
    end_input: Callable[[], object],
) -> None:
    """Copy terminal.stdin to `send` in a daemon thread (`end_input` at its end), and each (stream,
    bytes) of `output` to stdout or stderr until the output ends. An input side that fails (the
    remote closed) just stops forwarding; the output decides when the command is over, and input
    is read no further after it (a caller's next keystroke is not taken)."""
    over = threading.Event()
    if terminal.stdin is not None:
        source = terminal.stdin

        def forward() -> None:
            try:
                while (chunk := _read_some(source, over)) is not None and chunk:
                    send(chunk)
                if chunk is not None:
                    end_input()
            except Exception:  # the remote closed: each transport raises its own errors
                return

        threading.Thread(target=forward, name="multicloud-exec-stdin", daemon=True).start()
    try:
        for stream, data in output:
            target = terminal.stderr if stream == STDERR else terminal.stdout
            target.write(data)
            target.flush()
    finally:
        over.set()


def _read_some(source: BinaryIO, over: threading.Event) -> bytes | None:
    """What is available now (at least one byte; b'' at the end; a key press on a terminal), or
    None once `over` is set before anything came."""
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests hand in BytesIO)
        read1 = getattr(source, "read1", None)
        return bytes(read1(4096) if read1 else source.read(4096))
    import select

    while not over.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            return os.read(fd, 4096)
    return None


@contextmanager
def raw_mode(fd: int, enabled: bool) -> Iterator[None]:
    """While enabled and fd is a terminal, keys go to the remote as typed (Ctrl-C included),
    unechoed; the settings are restored on the way out, whatever happens."""
    if not enabled or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on fd, None when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns
