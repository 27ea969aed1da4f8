"""The compiled-form cache: results of loading and checking a spec, kept per user and reused while
every input they were made from (multicloud.inputs) reads the same.

Entries live in `$XDG_CACHE_HOME/multicloud` (else `~/.cache/multicloud`), a 0700 folder of 0600
files written atomically (a reader sees a whole entry or none, so concurrent runs are safe) and
read only when the folder and the file belong to this user and no one else may write them. An
entry that is corrupt, foreign, from another format or whose inputs changed counts as absent; the
caller then compiles afresh and replaces it. Entries name and hold inputs by keyed digest only,
never a value. MULTICLOUD_NO_CACHE=1 turns the cache off.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multicloud import inputs

FORMAT = 1
"""Bumped when what an entry holds changes shape."""
KEEP_ENTRIES = 256
"""More entries than this and the oldest half is removed when one is written."""
CORE = os.path.dirname(os.path.abspath(__file__))
"""The core package's directory: its code is an input of every entry (and its place part of the key,
so two checkouts never share entries)."""


def cache_dir() -> Path:
    """Where compiled forms are kept: $XDG_CACHE_HOME/multicloud, else ~/.cache/multicloud."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "multicloud")


class Cache:
    """One user's cache folder and the random key its digests are made with."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory = directory
        self.key = key

    @classmethod
    def open(cls) -> Cache | None:
        """The cache, its folder and key made if missing; None when it is turned off, cannot be made,
        or is not private to this user (then nothing is read or written)."""
        if os.environ.get("MULTICLOUD_NO_CACHE", "") not in ("", "0"):
            return None
        directory = cache_dir()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(os.lstat(directory), directory=True):
                return None
            return cls(directory, _key(directory / "key"))
        except (OSError, ValueError):
            return None

    def name(self, kind: str, *parts: object) -> str:
        """The entry name of a kind of compiled form made from these arguments (keyed: names reveal nothing)."""
        text = repr((FORMAT, sys.version, CORE, kind, parts)).encode()
        return f"{kind}-{hmac.new(self.key, text, hashlib.sha256).hexdigest()[:40]}"

    def get(self, name: str) -> Any | None:
        """The payload of an entry whose inputs all read the same (they are then noted in any active
        recording), else None."""
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            if not _private(os.fstat(fd)):
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                entry = pickle.load(handle)  # noqa: S301 - a private file of this user's (checked above)
            if not (isinstance(entry, dict) and entry.get("format") == FORMAT):
                return None
            found = entry["inputs"]
            if not inputs.unchanged(found, self.key):
                return None
        except Exception:  # a corrupt or half-understood entry is no entry
            return None
        finally:
            os.close(fd)
        inputs.replay(found)
        return entry["payload"]

    def put(self, name: str, found: inputs.Inputs, payload: Any, code: Sequence[str] = ()) -> None:
        """Keep a payload made from `found` (and the code of the core and of `code`'s package folders);
        a failure to write leaves the cache as it was."""
        recorder = inputs.Recorder(self.key)
        found = dict(found)
        for directory in (CORE, *code):
            found[("code", directory)] = recorder.digest(inputs.code_listing(directory))
        entry = {"format": FORMAT, "inputs": found, "payload": payload}
        import tempfile  # only writers need it (it imports shutil and random)

        try:
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".new-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    pickle.dump(entry, handle, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, self.directory / name)
            except BaseException:
                os.unlink(temporary)
                raise
            self._prune()
        except (OSError, pickle.PicklingError):
            return

    def _prune(self) -> None:
        """Remove the oldest half of the entries once there are more than KEEP_ENTRIES."""
        with os.scandir(self.directory) as found:
            entries = [e for e in found if e.name != "key" and e.is_file(follow_symlinks=False)]
        if len(entries) <= KEEP_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns)
        for entry in entries[: len(entries) // 2]:
            try:
                os.unlink(entry.path)
            except OSError:
                continue


def _private(info: os.stat_result, *, directory: bool = False) -> bool:
    """Owned by this user, writable by no one else, and a real folder (or regular file)."""
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return kind(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def _key(path: Path) -> bytes:
    """The cache's random 32-byte key, made on first use (0600; of two racing makers, the first wins)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            key = handle.read(64)
        if not _private(os.fstat(fd)) or len(key) != 32:
            raise ValueError(f"{path} is not a private 32-byte key")
    finally:
        os.close(fd)
    return key
