"""The holder image: a scratch image whose one file is a ~130-byte static program that sleeps
forever, built on the engine with `docker import` (no registry, no base image needed).

A unit's holder container runs it: it owns the unit's network namespace and published ports,
and the members join that namespace. It ignores SIGTERM (PID 1 without a handler), so it is
always removed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from typing import Any

from multicloud.errors import ProviderError
from multicloud_docker.client import NotFoundError, guard

REPOSITORY = "multicloud/dataplane-holder"
PROGRAM = "/hold"
BASE = 0x400000
HEADERS = 64 + 56
# loop: mov eax, 34 (pause); syscall; jmp loop
X86_64_CODE = bytes.fromhex("b8220000000f05ebf7")


def program(machine: str) -> bytes:
    """A static ELF executable for the engine's architecture that waits for signals forever.
    Raises ProviderError for an architecture it has no code for."""
    if machine not in ("x86_64", "amd64"):
        raise ProviderError(
            f"the emulators' data plane has no holder program for a {machine} engine yet; "
            "run the emulator with --no-run (API only)"
        )
    size = HEADERS + len(X86_64_CODE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, 0x3E, 1, BASE + HEADERS, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return header + segment + X86_64_CODE


def image_tar(code: bytes) -> bytes:
    """A filesystem tarball holding only the program, executable by anyone."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(PROGRAM.lstrip("/"))
        info.size, info.mode, info.mtime = len(code), 0o555, 0
        archive.addfile(info, io.BytesIO(code))
    return buffer.getvalue()


def ensure_image(api: Any) -> str:
    """The holder image reference, imported into the engine if it lacks it. A failed import
    leaves nothing (the engine imports atomically)."""
    with guard("reading the engine's architecture"):
        machine = str(api.version().get("Arch", "")) if hasattr(api, "version") else "x86_64"
    code = program(machine)
    reference = f"{REPOSITORY}:{hashlib.sha256(code).hexdigest()[:12]}"
    try:
        with guard(f"inspecting image {reference}"):
            api.inspect_image(reference)
        return reference
    except NotFoundError:
        pass
    repository, tag = reference.split(":")
    with guard(f"importing the holder image {reference}"):
        api.import_image_from_data(image_tar(code), repository=repository, tag=tag)
    return reference
