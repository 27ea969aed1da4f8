"""Spec health checks as Docker health checks that work without curl in the image.

tcp and http checks run under /bin/sh and use the first tool the image has: curl or wget
(http), bash's /dev/tcp, nc (tcp), python3 or perl (tcp); the cheap ones come first. An http
check of a TLS port (https) speaks HTTPS without verifying the certificate: it probes the
container's own loopback, where there is no one to impersonate it
because a probe runs inside the container's CPU quota. An image with none of them (distroless)
needs a `command:` check instead; docs/providers/docker.md says so.
"""

from __future__ import annotations

import shlex
from typing import Any

from multicloud.addressing import http_probe
from multicloud.spec.models import HealthCheck, Service

MIN_INTERVAL = 0.001
NANOS = 1_000_000_000


def render(service: Service) -> dict[str, Any] | None:
    """The healthcheck property of a service: probe command and timings in seconds, or None."""
    check = service.healthcheck
    if check is None:
        return None
    return {
        "test": probe(check, service),
        "interval": check.interval,
        "timeout": check.timeout,
        "retries": check.retries,
        "start_period": check.start_period,
    }


def probe(check: HealthCheck, service: Service) -> list[str]:
    """The Docker `test` of a check: CMD for commands, CMD-SHELL for tcp and http probes."""
    if check.command is not None:
        return ["CMD", *check.command]
    if check.tcp is not None:
        return ["CMD-SHELL", tcp_script(check.tcp, check.timeout)]
    assert check.http is not None
    scheme, port = http_probe(service)
    script = https_script if scheme == "https" else http_script
    return ["CMD-SHELL", script(port, check.http, check.timeout)]


def tcp_script(port: int, timeout: float) -> str:
    """A POSIX sh probe that succeeds when 127.0.0.1:port accepts a connection."""
    wait = max(1, int(timeout))
    python = f"import socket; socket.create_connection(('127.0.0.1', {port}), {wait})"
    perl = f"IO::Socket::INET->new(PeerAddr => '127.0.0.1:{port}', Timeout => {wait}) or exit 1"
    return _first_tool(
        ("bash", f"bash -c {shlex.quote(f': </dev/tcp/127.0.0.1/{port}')}"),
        ("nc", f"nc -z -w {wait} 127.0.0.1 {port}"),
        ("python3", f"python3 -c {shlex.quote(python)}"),
        ("perl", f"perl -MIO::Socket::INET -e {shlex.quote(perl)}"),
        missing="bash, nc, python3 or perl",
    )


def http_script(port: int, path: str, timeout: float) -> str:
    """A POSIX sh probe that succeeds when GET http://127.0.0.1:port/path answers 2xx or 3xx."""
    wait = max(1, int(timeout))
    url = shlex.quote(f"http://127.0.0.1:{port}{path}")
    python = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))"
    raw = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port} || exit 1; "
        'printf "GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n" "$1" >&3; '
        "read -r _ code _ <&3; while read -r _ <&3; do :; done; "
        'case "$code" in 2??|3??) exit 0;; esac; exit 1'
    )
    return _first_tool(
        ("curl", f"curl -fsS -o /dev/null --max-time {wait} {url}"),
        ("wget", f"wget -q -O /dev/null -T {wait} {url}"),
        ("bash", f"bash -c {shlex.quote(raw)} _ {shlex.quote(path)}"),
        ("python3", f"python3 -c {shlex.quote(python)} {url} {wait}"),
        missing="curl, wget, bash or python3",
    )


def https_script(port: int, path: str, timeout: float) -> str:
    """A POSIX sh probe that succeeds when GET https://127.0.0.1:port/path answers 2xx or 3xx
    (certificate not verified: the probe runs on the container's own loopback)."""
    wait = max(1, int(timeout))
    url = shlex.quote(f"https://127.0.0.1:{port}{path}")
    python = (
        "import ssl, sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]), "
        "context=ssl._create_unverified_context())"
    )
    return _first_tool(
        ("curl", f"curl -fsSk -o /dev/null --max-time {wait} {url}"),
        ("python3", f"python3 -c {shlex.quote(python)} {url} {wait}"),
        ("wget", f"wget -q -t 1 --no-check-certificate -O /dev/null -T {wait} {url}"),
        missing="curl, python3 or wget (with TLS)",
    )


def docker_healthcheck(rendered: dict[str, Any] | None) -> dict[str, Any] | None:
    """The engine's Healthcheck object for a rendered healthcheck property."""
    if rendered is None:
        return None
    return {
        "test": list(rendered["test"]),
        "interval": _nanos(max(float(rendered["interval"]), MIN_INTERVAL)),
        "timeout": _nanos(max(float(rendered["timeout"]), MIN_INTERVAL)),
        "retries": int(rendered["retries"]),
        "start_period": _nanos(float(rendered["start_period"])),
    }


def _first_tool(*choices: tuple[str, str], missing: str) -> str:
    branches = [f"command -v {tool} >/dev/null 2>&1; then {command}" for tool, command in choices]
    fail = f'echo "health check needs {missing} in the image; use a command: check" >&2; exit 1'
    return "if " + "; elif ".join(branches) + f"; else {fail}; fi"


def _nanos(seconds: float) -> int:
    return round(seconds * NANOS)
