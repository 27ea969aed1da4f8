"""The ACI emulator's exec sessions, as ACI serves them: the exec API hands out a WebSocket URI and
a one-time password; the client's first message is the password, then its messages are keys for
the command's terminal and the server's are the terminal's output, until the command ends. The
command runs through the data plane's exec in the group's real container. WebSocket per RFC 6455
(server side: unmasked frames out, masked frames in)."""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
SESSION_SECONDS = 60.0
"""How long an exec URI stays usable before the client connects."""
MAX_MESSAGE = 1 << 20


@dataclass(frozen=True)
class ExecSession:
    """One exec the API has granted and no client has used yet."""

    key: str
    container: str
    command: str
    size: tuple[int, int]
    """The terminal's rows and columns."""
    password: str
    expires: float


class ExecSessions:
    """The granted sessions, each usable once, within SESSION_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, ExecSession] = {}

    def grant(self, key: str, container: str, command: str, size: tuple[int, int]) -> tuple[str, str]:
        """Record a session; return its id (the URI's last segment) and password."""
        ident, password = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
        expires = time.monotonic() + SESSION_SECONDS
        with self._lock:
            self._open[ident] = ExecSession(key, container, command, size, password, expires)
        return ident, password

    def take(self, ident: str) -> ExecSession | None:
        """The session of that id, removed (one use); None when unknown or expired."""
        with self._lock:
            session = self._open.pop(ident, None)
        return session if session is not None and time.monotonic() < session.expires else None


def serve(handler: Any, session: ExecSession | None, start: Callable[[ExecSession], socket.socket | None]) -> None:
    """Answer a WebSocket upgrade on an HTTP handler and bridge it to the command `start` runs
    (None: the container is not running). A wrong password or unknown session ends it at once."""
    handler.close_connection = True
    key = handler.headers.get("Sec-WebSocket-Key")
    if session is None or not key or (handler.headers.get("Upgrade") or "").lower() != "websocket":
        handler.send_error(404 if session is None else 400, "no such exec session, or not a WebSocket upgrade")
        return
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324 (RFC 6455)
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    handler.end_headers()
    handler.wfile.flush()
    out = Writer(handler.wfile)
    first = read_message(handler.rfile, out)
    if first is None or not hmac.compare_digest(first, session.password.encode()):
        out.close(1008, "wrong password")
        return
    conn = start(session)
    if conn is None:
        out.send(TEXT, f"container {session.container} is not running\r\n".encode())
        out.close(1011, "container not running")
        return
    threading.Thread(target=_pump, args=(conn, out), name="aci-exec-output", daemon=True).start()
    try:
        while (data := read_message(handler.rfile, out)) is not None:
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def _pump(conn: socket.socket, out: Writer) -> None:
    """The command's terminal output to the client as text messages; a close frame at its end."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        while chunk := conn.recv(65536):
            out.send(TEXT, decoder.decode(chunk).encode())
    except OSError:
        pass
    out.close(1000, "exited")


class Writer:
    """Frames to the client, one writer at a time (the output thread and the reader's pongs)."""

    def __init__(self, wfile: BinaryIO) -> None:
        self._wfile = wfile
        self._lock = threading.Lock()
        self.closed = False

    def send(self, opcode: int, payload: bytes) -> None:
        """One final, unmasked frame (nothing after a close)."""
        size = len(payload)
        head = bytes([0x80 | opcode])
        if size < 126:
            head += bytes([size])
        elif size < 1 << 16:
            head += bytes([126]) + struct.pack(">H", size)
        else:
            head += bytes([127]) + struct.pack(">Q", size)
        with self._lock:
            if self.closed:
                return
            try:
                self._wfile.write(head + payload)
                self._wfile.flush()
            except OSError:
                self.closed = True

    def close(self, code: int, reason: str) -> None:
        """A close frame with its status code; nothing is sent after it."""
        self.send(CLOSE, struct.pack(">H", code) + reason.encode()[:120])
        with self._lock:
            self.closed = True


def read_message(rfile: BinaryIO, out: Writer) -> bytes | None:
    """The next text or binary message from the client (fragments joined, pings answered); None
    at a close frame or the end of the connection, and, closing it as RFC 6455 says, at an
    unmasked frame (1002) or a message over MAX_MESSAGE (1009)."""
    parts: list[bytes] = []
    size_so_far = 0
    while True:
        head = _exactly(rfile, 2)
        if head is None:
            return None
        opcode, size = head[0] & 0x0F, head[1] & 0x7F
        if size >= 126:
            extended = _exactly(rfile, 2 if size == 126 else 8)
            if extended is None:
                return None
            size = int.from_bytes(extended, "big")
        if not head[1] & 0x80:
            out.close(1002, "client frames must be masked")
            return None
        size_so_far += size
        if size_so_far > MAX_MESSAGE:
            out.close(1009, "message too big")
            return None
        mask, data = _exactly(rfile, 4), _exactly(rfile, size)
        if mask is None or data is None:
            return None
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        if opcode == CLOSE:
            out.close(1000, "")
            return None
        if opcode == PING:
            out.send(PONG, payload)
            continue
        if opcode == PONG:
            continue
        parts.append(payload)
        if head[0] & 0x80:
            return b"".join(parts)


def _exactly(rfile: BinaryIO, size: int) -> bytes | None:
    """`size` bytes from the client, None when the connection ends first."""
    data = rfile.read(size) if size else b""
    return data if len(data) == size else None
