"""Request-body limit as an ASGI middleware: a body over the limit gets 413 before the app (or a parser) sees it.

The middleware reads the body itself, counting bytes as they stream in (chunked bodies have no
Content-Length), and hands the app the buffered body only when it fits. A declared
Content-Length over the limit is refused without reading anything. After a 413 the rest of the
body is read and dropped for a bounded number of bytes and seconds, so that a client that sends
its whole body before reading (most do) still gets the 413 instead of a connection reset; then
the connection is closed. Memory per request is therefore bounded by the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_BYTES = 64 * 1024 * 1024  # after a 413, read and drop at most this much of the rest of the body
DRAIN_SECONDS = 10.0


class BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it declares one (the HTTP server has already checked its syntax)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def expects_continue(scope: Scope) -> bool:
    """Whether the client waits for `100 Continue` before it sends the body."""
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ()))


class BodyLimit:
    """Wraps an ASGI app: HTTP request bodies over `max_bytes` are answered 413 and never reach the app."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body up to the limit, then run the app with it; answer 413 (leaving nothing behind) past it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            await self.refuse(receive, send, drain=not expects_continue(scope))
            return
        try:
            first = await self.read_body(receive)
        except BodyTooLarge:
            await self.refuse(receive, send, drain=True)
            return
        if first["type"] == "http.disconnect":
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # later calls wait for the disconnect (streaming responses listen for it)
            replayed = True
            return first

        await self.app(scope, replay, send)

    async def read_body(self, receive: Receive) -> Message:
        """Read the whole body, counting bytes; raise BodyTooLarge as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def refuse(self, receive: Receive, send: Send, drain: bool) -> None:
        """Answer 413; read and drop a bounded rest of the body first when asked, then close the connection."""
        detail = {"detail": f"request body larger than {self.max_bytes} bytes (MAX_BODY_BYTES)"}
        body = json.dumps(detail).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body, "more_body": drain})
        if not drain:
            return
        # the answer is on the wire already; keep reading so the client's upload can finish and it reads it
        dropped, deadline = 0, time.monotonic() + DRAIN_SECONDS
        while dropped < DRAIN_BYTES:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if message["type"] != "http.request":
                break
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
