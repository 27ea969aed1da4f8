"""Reading the files a spec names (the spec itself, `from_file` secrets) without surprises:
regular files only, a size limit, text decoded by its byte-order mark or as UTF-8, and every
problem located at its line."""

from __future__ import annotations

import codecs
import os
import stat

from multicloud import inputs

MAX_SPEC_BYTES = 4 * 1024 * 1024
"""4 MiB: a spec is a few kilobytes; more can only be the wrong file (or /dev/zero)."""
MAX_SECRET_BYTES = 1024 * 1024
"""1 MiB: more than any target stores as one secret (Secrets Manager: 64 KiB)."""

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
"""UTF-32 first: its little-endian mark begins with UTF-16's."""


class UnreadableFileError(ValueError):
    """A file that cannot be read as text; `line` and `column` say where (1-based)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def read_limited(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; raise FileNotFoundError, or
    UnreadableFileError for a FIFO, device, directory or larger file (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        inputs.note_file(path, None)
        raise
    except OSError as exc:
        raise UnreadableFileError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFileError(f"not a regular file ({_kind(info.st_mode)}); give the path of a file")
        if info.st_size > limit:
            raise UnreadableFileError(f"the file is {info.st_size:,} bytes, over the limit of {limit:,}")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFileError(f"the file is over the limit of {limit:,} bytes")
    inputs.note_file(path, data)
    return data


def decode(data: bytes) -> str:
    """Text from bytes: by the byte-order mark (UTF-8, UTF-16, UTF-32), else strict UTF-8;
    raise UnreadableFileError naming the encoding and the line and column of the bad byte."""
    for mark, codec, name in _BOMS:
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(codec)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(f"not valid {name} after its byte-order mark: {exc.reason}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UnreadableFileError(
            "the file holds NUL bytes (UTF-16 or UTF-32 without a byte-order mark?); save it as UTF-8",
            *_position(data, nul),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start: exc.start + 1].hex()
        position = _position(data, exc.start)
        raise UnreadableFileError(f"not UTF-8 (byte 0x{byte}); save the file as UTF-8", *position) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in bytes) of an offset."""
    return data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"
