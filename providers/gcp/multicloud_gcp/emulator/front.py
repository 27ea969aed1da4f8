"""The Cloud Run emulator's TLS front: the one way to a service's instances, as Google's front end is.

HTTPS on one local port (certificates from a test CA, one per region, chosen by SNI). A request
is routed by its Host header (a service URL's host name, or `TAG---HOST` for a traffic tag's
revision) to a revision picked by traffic percent and an instance the autoscaler places it on
(`scaling.py`), waiting for one to accept while it starts (a cold start; 429 when max instances
stay full), with X-Forwarded-For and X-Forwarded-Proto added. With session affinity the answer
sets the GAESA cookie, and a request carrying it goes back to the same instance while it serves.
A WebSocket upgrade passes through; the service's request timeout ends a request (504 when
nothing was answered yet) and a WebSocket. A service
whose ingress is internal refuses callers from outside its network with 404, as Cloud Run does:
callers on the machine's loopback are outside; instances calling another service's URL reach a
second front on the instances' network (port 443), where they are inside.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

from multicloud_docker.dataplane.splice import splice

from multicloud.testing.tls import TestAuthority

if TYPE_CHECKING:
    from multicloud_gcp.emulator.running import RevisionRunner
    from multicloud_gcp.emulator.scaling import Lease

MAX_HEAD = 65536
COLD_START = 60.0
"""Seconds a request waits for an instance to accept before the front answers 503."""
AFFINITY_COOKIE = "GAESA"
"""The cookie Cloud Run's front end pins a client to an instance with (session affinity)."""
AFFINITY_AGE = 30 * 86400
NOT_FOUND = b"<html><body><h1>Error: Page not found</h1>The requested URL was not found on this server.</body></html>"


class Certificates:
    """The fronts' test CA and their certificates: one for local names, one per region (by SNI)."""

    def __init__(self, directory: str) -> None:
        self.authority = TestAuthority(directory, "multicloud Cloud Run emulator test CA")
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.context = self._context("local", ["localhost", "127.0.0.1"])
        self.context.sni_callback = self._pick_context

    @property
    def ca_bundle(self) -> str:
        """The CA file clients trust."""
        return self.authority.ca_bundle

    def _context(self, stem: str, hosts: list[str]) -> ssl.SSLContext:
        with self._lock:
            if stem not in self._contexts:
                issued = self.authority.issue(hosts, stem)
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(issued.cert_file, issued.key_file)
                self._contexts[stem] = context
            return self._contexts[stem]

    def _pick_context(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _base: ssl.SSLContext) -> None:
        """SNI: a certificate for `*.<region>.run.app`, issued on first use."""
        parts = (name or "").lower().split(".")
        if len(parts) >= 4 and parts[-2:] == ["run", "app"]:
            region = parts[-3]
            sock.context = self._context(f"region-{region}", [f"*.{region}.run.app"])


class Front(socketserver.ThreadingTCPServer):
    """One listening front; `address` is where the service URLs' host names point. Callers from
    `internal` (the instances' network) may call internal services; everyone else is outside."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        runner: RevisionRunner,
        certificates: Certificates,
        host: str = "127.0.0.1",
        port: int = 0,
        internal: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None,
    ) -> None:
        self.runner = runner
        self.certificates = certificates
        self.context = certificates.context
        self.internal = internal
        self.partner: Any = None
        """What was started next to this front and stops with it (the inside front; its name server)."""
        super().__init__((host, port), _Handler)
        self.address = f"{host}:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, name="cloudrun-front", daemon=True)
        self._thread.start()

    def inside(self, peer: str) -> bool:
        """True for a caller on the instances' network."""
        return self.internal is not None and ipaddress.ip_address(peer) in self.internal

    def stop(self) -> None:
        """Stop accepting; connections in flight end with their threads."""
        self.shutdown()
        self.server_close()


class _Handler(socketserver.BaseRequestHandler):
    server: Front

    def handle(self) -> None:
        """Serve one connection: one request (or one WebSocket) to one instance."""
        raw: socket.socket = self.request
        raw.settimeout(30)
        try:
            client = self.server.context.wrap_socket(raw, server_side=True)
            head, body = _read_head(client)
        except (OSError, ValueError):
            return
        with client:
            self._serve(client, head, body)

    def _serve(self, client: ssl.SSLSocket, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        route = self.server.runner.route(headers.get("host", ""))
        if route is None or (route.internal and not self.server.inside(self.client_address[0])):
            _reply(client, 404, NOT_FOUND, "text/html")
            return
        if not any(percent > 0 for percent, _ in route.revisions):
            _reply(client, 503, b"no revision of this service serves traffic\n")
            return
        token = _cookie(headers.get("cookie", ""), AFFINITY_COOKIE)
        lease = self.server.runner.lease(route, token)
        if lease is None:
            _reply(client, 429, b"Rejected because no instance was available: max instances reached\n")
            return
        try:
            self._forward(client, lines, headers, body, (route.timeout, lease, token))
        finally:
            self.server.runner.release(lease)

    def _forward(
        self, client: ssl.SSLSocket, lines: list[str], headers: dict[str, str], body: bytes,
        placed: tuple[float, Lease, str],
    ) -> None:
        """Send the request to the leased instance and copy the exchange both ways (a new
        session-affinity cookie added to the answer), or answer 502/503/504 for the instance;
        `placed` is (request timeout, lease, the affinity token the client sent)."""
        timeout, lease, token = placed
        upstream = self._connect(lease.key, lease.port)
        if upstream is None:
            short = lease.revision.rsplit("/", 1)[-1]
            _reply(client, 503, f"no instance of {short} accepted within {COLD_START:.0f}s\n".encode())
            return
        upgrade = headers.get("upgrade", "").lower() == "websocket"
        forwarded = [lines[0]] + [line for line in lines[1:] if line and not _hop(line, upgrade)]
        forwarded += [f"X-Forwarded-For: {self.client_address[0]}", "X-Forwarded-Proto: https"]
        if not upgrade:
            forwarded.append("Connection: close")
        cookie = b""
        if lease.affinity and lease.token != token:
            line = f"Set-Cookie: {AFFINITY_COOKIE}={lease.token}; Path=/; Max-Age={AFFINITY_AGE}; Secure; HttpOnly"
            cookie = line.encode() + b"\r\n"
        with upstream:
            upstream.sendall(("\r\n".join(forwarded) + "\r\n\r\n").encode("latin-1") + body)
            answered, timed_out = splice(client, upstream, time.monotonic() + timeout, cookie)
        if not answered:
            status, message = (504, b"upstream request timeout\n") if timed_out else (502, b"bad gateway\n")
            _reply(client, status, message)

    def _connect(self, key: str, port: int) -> socket.socket | None:
        """A connection to an instance once it accepts, waiting through a cold start; None at the deadline."""
        deadline = time.monotonic() + COLD_START
        while time.monotonic() < deadline:
            address = self.server.runner.address(key)
            if address:
                try:
                    return socket.create_connection((address, port), timeout=2)
                except OSError:
                    pass
            time.sleep(0.1)
        return None


def _cookie(header: str, name: str) -> str:
    """A cookie's value from a Cookie header ('' when absent)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip()
    return ""


def _hop(line: str, upgrade: bool) -> bool:
    """Headers the front sets itself (and Connection, kept for an upgrade)."""
    name = line.partition(":")[0].strip().lower()
    return name in ("x-forwarded-for", "x-forwarded-proto") or (name == "connection" and not upgrade)


def _read_head(sock: ssl.SSLSocket) -> tuple[bytes, bytes]:
    """The request line and headers, and what followed them; ValueError when too long or cut short."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > MAX_HEAD:
            raise ValueError("no complete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _reply(client: ssl.SSLSocket, status: int, body: bytes, kind: str = "text/plain") -> None:
    """A complete short HTTP answer."""
    reasons = {404: "Not Found", 429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable"}
    reasons[504] = "Gateway Timeout"
    reason = reasons.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    try:
        client.setblocking(True)
        client.sendall(head.encode() + body)
    except OSError:
        return
