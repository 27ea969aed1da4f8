"""Run `multicloud emulate NAME` as a user would and read back the environment it prints."""

from __future__ import annotations

import queue
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

QUIET = 1.0
"""Seconds without output after the first `export` line that mean the listing is complete."""


@dataclass(frozen=True)
class Emulated:
    """A running `multicloud emulate` process: its `# ...` comment lines and the variables it exports."""

    comments: tuple[str, ...]
    exports: dict[str, str]
    pid: int = 0
    """The emulator process's id."""


@contextmanager
def emulate(name: str, *args: str, timeout: float = 60.0) -> Iterator[Emulated]:
    """Start `multicloud emulate NAME ARGS` in a child process, yield what it printed, stop it on exit
    (SIGTERM, then SIGKILL after 10 s). Raises RuntimeError when it exits or prints nothing in time."""
    command = [sys.executable, "-m", "multicloud.cli.main", "emulate", name, *args]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            yield _read_listing(process, errors, timeout)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_listing(process: subprocess.Popen[str], errors: IO[str], timeout: float) -> Emulated:
    """The comment and export lines printed before the emulator goes quiet."""
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    comments: list[str] = []
    exports: dict[str, str] = {}
    while True:
        try:
            line = lines.get(timeout=QUIET if exports else timeout)
        except queue.Empty:
            if exports:
                return Emulated(tuple(comments), exports, process.pid)
            break
        if line is None:
            break
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            exports[key] = shlex.split(value)[0] if value else ""
        elif line.startswith("#"):
            comments.append(line.rstrip("\n"))
    errors.seek(0)
    raise RuntimeError(f"`multicloud emulate` printed no environment: {errors.read().strip()[-2000:]}")
