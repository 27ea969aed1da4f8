"""A per-app, per-target lock so two applies never interleave on one machine."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from multicloud.errors import LockHeldError, UserError


def state_dir() -> Path:
    """Where multicloud keeps machine-local state (locks only; never deployment state)."""
    explicit = os.environ.get("MULTICLOUD_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base, "multicloud")


@contextmanager
def app_lock(app: str, target: str, operation: str) -> Iterator[None]:
    """Hold the app/target lock for the block; raise LockHeldError naming the holder.
    The kernel releases the lock when the holder dies, so a killed apply never wedges it."""
    directory = state_dir() / "locks"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{app}.{target}")
    path = directory / f"{safe}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(
            f"cannot create the lock file {path}: {exc.strerror}",
            hint="set MULTICLOUD_STATE_DIR to a writable directory",
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeldError(
                f"another {_holder(fd)} of app {app!r} to target {target!r} is running",
                hint="wait for it to finish; the lock is released as soon as that process ends",
            ) from None
        info = {"operation": operation, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        started = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"{info['operation']} (pid {info['pid']} on {info['host']}, since {started})"
    except (ValueError, KeyError, TypeError, OSError):
        return "apply or destroy"
