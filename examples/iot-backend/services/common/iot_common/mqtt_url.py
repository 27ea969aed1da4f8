"""Parse a broker URL: mqtt://, mqtts://, ws:// or wss:// (host, port, transport, TLS, path)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Literal

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class BrokerUrl:
    """Where and how to reach the broker."""

    host: str
    port: int
    transport: Literal["tcp", "websockets"]
    tls: bool
    path: str

    @staticmethod
    def parse(url: str) -> BrokerUrl:
        """Parse a URL; raise ValueError for an unknown scheme."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"broker URL must be mqtt://, mqtts://, ws:// or wss://HOST[:PORT][/path], not {url!r}")
        websockets = parts.scheme in ("ws", "wss")
        return BrokerUrl(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            transport="websockets" if websockets else "tcp",
            tls=parts.scheme in ("mqtts", "wss"),
            path=(parts.path or "/mqtt") if websockets else "",
        )
