"""Content hashes of `build:` contexts, shared by every provider that builds images."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from multicloud import inputs
from multicloud.errors import UserError

if TYPE_CHECKING:
    from multicloud.spec.models import Build

Rules = list[tuple[re.Pattern[str], bool]]


def context_path(base_dir: str, build: Build) -> Path:
    """The absolute context directory of a `build:` (relative to the spec file's directory)."""
    return Path(os.path.abspath(os.path.join(base_dir, build.context)))


def build_hash(base_dir: str, service: str, build: Build) -> str:
    """The context hash of a service's `build:`; a UserError names `services.SERVICE.build`."""
    try:
        return context_hash(context_path(base_dir, build), build.dockerfile, build.args, build.target)
    except UserError as exc:
        raise UserError(f"services.{service}.build: {exc.message}", hint=exc.hint) from exc


def context_hash(context: Path, dockerfile: str, args: Mapping[str, str], target: str | None) -> str:
    """Hash what a build reads (files .dockerignore keeps, Dockerfile, args, target); reads files only."""
    digest = hashlib.sha256()
    files = hashlib.sha256()
    for part in _context_parts(context, dockerfile):
        digest.update(part)
        files.update(part)
    inputs.note_build(str(context), dockerfile, files.hexdigest())
    for key in sorted(args):
        digest.update(f"arg\0{key}\0{args[key]}\0".encode())
    digest.update(f"target\0{target or ''}".encode())
    return digest.hexdigest()[:16]


def files_digest(context: str, dockerfile: str) -> str:
    """The digest of a build context's files and Dockerfile alone (what `inputs` compares)."""
    files = hashlib.sha256()
    for part in _context_parts(Path(context), dockerfile):
        files.update(part)
    return files.hexdigest()


def _context_parts(context: Path, dockerfile: str) -> Iterator[bytes]:
    """What of a context a build reads, in order: each file kept by .dockerignore, then the Dockerfile."""
    if not context.is_dir():
        raise UserError(f"build context {context} is not a directory")
    dockerfile_path = Path(dockerfile) if os.path.isabs(dockerfile) else context / dockerfile
    if not dockerfile_path.is_file():
        raise UserError(f"Dockerfile {dockerfile_path} does not exist")
    rules = _ignore_rules(context)
    try:
        for rel in _files(context, rules):
            yield _entry(context / rel, rel)
        yield b"dockerfile\0" + dockerfile.encode() + b"\0" + _sha(dockerfile_path).encode()
    except OSError as exc:
        raise UserError(f"cannot read build context {context}: {exc}") from exc


def _entry(path: Path, rel: str) -> bytes:
    """One file's contribution: its path, exec bit and content digest (a link's target)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        body = "link:" + os.readlink(path)
    else:
        body = ("x:" if info.st_mode & 0o111 else "f:") + _sha(path)
    return f"{rel}\0{body}\0".encode()


def _sha(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path, rules: Rules) -> Iterator[str]:
    """Yield context-relative paths of regular files and links that the build would send."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            rel = name if base == "." else f"{base}/{name}"
            if not _ignored(rel, rules):
                yield rel
        for name in list(dirnames):
            path = Path(dirpath, name)
            rel = name if base == "." else f"{base}/{name}"
            if path.is_symlink():
                dirnames.remove(name)
                if not _ignored(rel, rules):
                    yield rel


def _ignore_rules(context: Path) -> Rules:
    """Parse .dockerignore into (pattern, excluded?) rules; the last match wins."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        if pattern == ".":
            continue
        rules.append((re.compile(_glob_regex(pattern)), not negate))
    return rules


def _glob_regex(pattern: str) -> str:
    """Go filepath.Match syntax plus `**`, matching a path or any directory above it."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "/?"
                i += 1
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end
        else:
            out += re.escape(char)
        i += 1
    return f"^{out}(/.*)?$"


def _ignored(rel: str, rules: Rules) -> bool:
    """Whether .dockerignore excludes a context-relative path."""
    excluded = False
    for pattern, exclude in rules:
        if pattern.match(rel):
            excluded = exclude
    return excluded
