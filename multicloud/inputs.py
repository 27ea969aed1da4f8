"""What compiling a spec read (files, environment variables, build contexts, code), by keyed digest.

A compiled form (multicloud/compiled.py) is reused only while every input it was made from reads
the same. While a recording is active, the readers note what they read through `note_file`,
`note_build` and the environment `environ()` hands out; `unchanged` reads each again. Digests
are HMAC-SHA256 under the cache's own random key, so a manifest holds no value (a secret read
from the environment or a file) nor anything to test a guess of one against.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

Inputs = dict[tuple[str, str], str]
"""(kind, name) -> digest; kinds: file, env, environ (the whole environment), build, code."""
MISSING = "-"
"""The digest of an input that did not exist (a file, an unset variable)."""

_active: ContextVar[tuple[Recorder, ...]] = ContextVar("multicloud_recordings", default=())
_lock = threading.Lock()


class Recorder:
    """The inputs one compilation read, digested under `key`."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.inputs: Inputs = {}

    def digest(self, data: bytes | None) -> str:
        """The keyed digest of some bytes; MISSING for None."""
        return MISSING if data is None else hmac.new(self.key, data, hashlib.sha256).hexdigest()


@contextmanager
def recording(key: bytes) -> Iterator[Recorder]:
    """Record every input read in the block by this thread (its context); recordings nest, each sees
    every input read inside it."""
    recorder = Recorder(key)
    token = _active.set((*_active.get(), recorder))
    try:
        yield recorder
    finally:
        _active.reset(token)


def _note(kind: str, name: str, data: bytes | None) -> None:
    with _lock:
        for recorder in _active.get():
            recorder.inputs.setdefault((kind, name), recorder.digest(data))


def note_file(path: str | os.PathLike[str], data: bytes | None) -> None:
    """A file was read (None: it did not exist)."""
    if _active.get():
        _note("file", os.path.abspath(path), data)


def note_file_kept(path: str | os.PathLike[str], data: bytes) -> None:
    """A file read a moment ago will hold `data` once what is being planned is applied (a generated secret
    the apply keeps): compiled forms hold for it then, not for what it holds now."""
    if _active.get():
        with _lock:
            for recorder in _active.get():
                recorder.inputs[("file", os.path.abspath(path))] = recorder.digest(data)


def note_build(context: str, dockerfile: str, files_digest: str) -> None:
    """A build context was hashed: what its files and Dockerfile hash to (see multicloud.build)."""
    if _active.get():
        _note("build", f"{context}\0{dockerfile}", files_digest.encode())


def note_code(directory: str) -> None:
    """The compiled form depends on the code in this package directory."""
    if _active.get():
        _note("code", directory, code_listing(directory))


def replay(found: Inputs) -> None:
    """Note inputs another recording found (a compiled spec reused inside a recording)."""
    with _lock:
        for recorder in _active.get():
            for key, digest in found.items():
                recorder.inputs.setdefault(key, digest)


class _Watched(Mapping[str, str]):
    """The process environment, noting each variable looked up (and the whole of it when listed)."""

    def __getitem__(self, name: str) -> str:
        value = os.environ.get(name)
        _note("env", name, None if value is None else value.encode())
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        _note("environ", "*", _environ_bytes())
        return iter(dict(os.environ))

    def __len__(self) -> int:
        _note("environ", "*", _environ_bytes())
        return len(os.environ)


def environ() -> Mapping[str, str]:
    """The process environment: watched while a recording is active, else os.environ itself."""
    return _Watched() if _active.get() else os.environ


def _environ_bytes() -> bytes:
    return "\0".join(f"{k}={v}" for k, v in sorted(os.environ.items())).encode()


def code_listing(directory: str) -> bytes:
    """Name, size and modification time of every Python file under a package directory."""
    entries: list[str] = []
    pending = [directory]
    while pending:
        with os.scandir(pending.pop()) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    entries.append(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}")
    return "\n".join(sorted(entries)).encode()


def unchanged(found: Inputs, key: bytes) -> bool:
    """Whether every input reads as it did (False at the first that does not, or cannot be read)."""
    recorder = Recorder(key)
    for (kind, name), digest in found.items():
        if not hmac.compare_digest(recorder.digest(_read(kind, name)), digest):
            return False
    return True


def _read(kind: str, name: str) -> bytes | None:
    """An input's current bytes (None when it does not exist); unknown kinds never match."""
    try:
        if kind == "file":
            from multicloud.spec.files import MAX_SPEC_BYTES, read_limited

            return read_limited(name, MAX_SPEC_BYTES)
        if kind == "env":
            value = os.environ.get(name)
            return None if value is None else value.encode()
        if kind == "environ":
            return _environ_bytes()
        if kind == "code":
            return code_listing(name)
        if kind == "build":
            from multicloud.build import files_digest

            context, _, dockerfile = name.partition("\0")
            return files_digest(context, dockerfile).encode()
    except FileNotFoundError:
        return None
    except Exception:  # unreadable, or a build context that no longer hashes: not the same input
        return b"\0unreadable"
    return b"\0unknown"
