"""Byte forwarding between two connected sockets, for the emulators' fronts (Cloud Run's TLS
front, the ECS emulator's load balancer listeners): one copy of the loop, TLS-aware."""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from typing import Any

MAX_HEAD = 65536
"""The longest first line of an answer that `extra` waits for."""


def splice(client: socket.socket, upstream: socket.socket, deadline: float, extra: bytes = b"") -> tuple[bool, bool]:
    """Copy bytes both ways until either side closes or the deadline (time.monotonic()), `extra`
    (an HTTP front's header lines) inserted after the answer's first line; return (upstream
    answered, timed out). The caller closes both sockets."""
    answered = False
    held = b""
    selector = selectors.DefaultSelector()
    client.setblocking(False)
    upstream.setblocking(False)
    selector.register(client, selectors.EVENT_READ, upstream)
    selector.register(upstream, selectors.EVENT_READ, client)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return answered, True
            for key, _ in selector.select(timeout=min(left, 1.0)):
                source: Any = key.fileobj
                try:
                    data = source.recv(65536)
                    while isinstance(source, ssl.SSLSocket) and source.pending():
                        data += source.recv(source.pending())
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    return answered, False
                if not data:
                    return answered, False
                if source is upstream and extra:
                    held += data
                    if b"\r\n" not in held and len(held) < MAX_HEAD:
                        continue
                    status, _, rest = held.partition(b"\r\n")
                    data, extra = status + b"\r\n" + extra + rest, b""
                if source is upstream:
                    answered = True
                try:
                    key.data.setblocking(True)
                    key.data.sendall(data)
                    key.data.setblocking(False)
                except OSError:
                    return answered, False
    finally:
        selector.close()
