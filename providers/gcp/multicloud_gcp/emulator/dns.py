"""The name server instances use: every `*.run.app` name is the inside front's address (so any
service's URL reaches the front, whenever the service was made); other names are forwarded to
the machine's resolver. Plain DNS over UDP, A records only (AAAA answers are empty)."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from pathlib import Path

SUFFIX = ".run.app"
TTL = 5


def upstream_resolver(path: str = "/etc/resolv.conf") -> str:
    """The machine's first name server (127.0.0.53 when none is listed)."""
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1]
    except OSError:
        pass
    return "127.0.0.53"


def question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset of the question) of a query; ValueError when malformed."""
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            raise ValueError("truncated query")
        length = packet[offset]
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed name in a query")
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    if offset + 5 > len(packet):
        raise ValueError("truncated query")
    qtype = struct.unpack("!H", packet[offset + 1 : offset + 3])[0]
    return ".".join(labels).lower(), qtype, offset + 5


def answer(packet: bytes, end: int, address: str | None) -> bytes:
    """A response to the query: one A record for `address`, or none (NOERROR, empty)."""
    header = packet[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if address else 0, 0, 0)
    body = packet[12:end]
    if address:
        body += struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(address)
    return header + body


class RunDns(socketserver.ThreadingUDPServer):
    """Serves on address:53 until `stop()`."""

    daemon_threads = True

    def __init__(self, address: str, front: str, upstream: str | None = None) -> None:
        self.front = front
        self.upstream = upstream or upstream_resolver()
        super().__init__((address, 53), _Handler)
        threading.Thread(target=self.serve_forever, name="cloudrun-dns", daemon=True).start()

    def stop(self) -> None:
        """Stop answering."""
        self.shutdown()
        self.server_close()


class _Handler(socketserver.BaseRequestHandler):
    server: RunDns

    def handle(self) -> None:
        """Answer one query: run.app names here, the rest by the upstream resolver."""
        packet, sock = self.request
        try:
            name, qtype, end = question(packet)
        except ValueError:
            return
        if name.endswith(SUFFIX):
            sock.sendto(answer(packet, end, self.server.front if qtype == 1 else None), self.client_address)
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forward:
            forward.settimeout(2)
            try:
                forward.sendto(packet, (self.server.upstream, 53))
                sock.sendto(forward.recv(4096), self.client_address)
            except OSError:
                return
