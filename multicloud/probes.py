"""Health probes that run inside a container with whatever tool its image has.

A tcp or http check becomes one POSIX sh script that tries a chain of tools, cheapest first.
Each attempt ends one of three ways, judged from its exit status and output:

- the port answered (http: with 2xx or 3xx): the script exits 0;
- the tool ran and says the port is closed or the answer is wrong: the script exits 1 with
  the tool's words, and no later tool is asked;
- anything else (tool missing, a bad option, a crash such as BusyBox `wget -T` on Debian's
  busybox-static, an answer it cannot judge): the next tool is tried.

An image with none of the tools (or no /bin/sh, e.g. distroless) fails the check with a line
saying so; such images need a `command:` check. Used by the docker provider's health checks,
ACI exec probes and ECS container health checks alike.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from multicloud.addressing import http_probe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from multicloud.spec.models import HealthCheck, Service

HOST = "127.0.0.1"
CLOSED = 200
"""Exit status our own probe programs (bash, python3, perl) use for "ran and found it closed"."""


@dataclass(frozen=True)
class Attempt:
    """One tool's try: a shell command and the `case` patterns on "STATUS:OUTPUT" that judge it
    (`unsure` ones, checked before `refused`, hand over to the next tool)."""

    tool: str
    command: str
    answered: tuple[str, ...] = ("0:*",)
    refused: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()


def probe_script(check: HealthCheck, service: Service) -> str | None:
    """The sh script for a tcp or http check (https on a TLS port); None for a command check."""
    if check.tcp is not None:
        return tcp_script(check.tcp, check.timeout)
    if check.http is not None:
        scheme, port = http_probe(service)
        return http_script(port, check.http, check.timeout, tls=scheme == "https")
    return None


def tcp_script(port: int, timeout: float, host: str = HOST) -> str:
    """A POSIX sh script that exits 0 when host:port accepts a TCP connection, else 1."""
    wait = _seconds(timeout)
    python = (
        "import socket, sys\n"
        f"s = socket.socket(); s.settimeout({wait})\n"
        f'e = s.connect_ex(("{host}", {port}))\n'
        f'print("connect:", e) if e else None; sys.exit({CLOSED} if e else 0)'
    )
    perl = (
        f'IO::Socket::INET->new(PeerAddr => "{host}:{port}", Timeout => {wait}) '
        f'or do {{ print "connect: $!"; exit {CLOSED} }}'
    )
    url = shlex.quote(f"http://{host}:{port}/")
    return _chain(
        f"tcp {host}:{port}",
        Attempt("bash", f"bash -c {shlex.quote(f'exec 3<>/dev/tcp/{host}/{port}')}", refused=("*connect:*",)),
        Attempt("python3", f"python3 -c {shlex.quote(python)}", refused=(f"{CLOSED}:*",)),
        Attempt("perl", f"perl -MIO::Socket::INET -e {shlex.quote(perl)}", refused=(f"{CLOSED}:*",)),
        # OpenBSD and traditional nc are silent when refused; ncat says so
        Attempt("nc", f"nc -z -w {wait} {host} {port}", refused=("1:", "1:*[Rr]efused*")),
        # BusyBox's small nc has no -z; -e PROG (last) runs PROG once connected
        Attempt("nc", f"nc -w {wait} {host} {port} -e true", refused=("1:*[Rr]efused*",)),
        Attempt(
            "curl",
            f"curl -s -o /dev/null -w 'connects=%{{num_connects}}' --connect-timeout {wait} -m {wait} {url}",
            answered=("0:*", "*connects=1*"),
            refused=("7:*",),
        ),
        Attempt(
            "wget", f"wget -O /dev/null -T {wait} -t 1 {url}", answered=("0:*", "*connected.*"), refused=("*refused*",)
        ),
    )


def http_script(port: int, path: str, timeout: float, host: str = HOST, *, tls: bool = False) -> str:
    """A POSIX sh script that exits 0 when GET http(s)://host:port/path answers 2xx or 3xx, else 1.
    With tls the certificate is not verified: the probe runs on the container's own loopback,
    where there is no one to impersonate it (and the certificate names the public host)."""
    wait = _seconds(timeout)
    url = shlex.quote(f"{'https' if tls else 'http'}://{host}:{port}{path}")
    quoted_path = shlex.quote(path)
    insecure = "k" if tls else ""
    unverified = " --no-check-certificate" if tls else ""
    context = ", context=ssl._create_unverified_context()" if tls else ""
    python = (
        "import ssl, sys, urllib.request\n"
        f"try: urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]){context}).close()\n"
        f'except Exception as e: print("failed:", e); sys.exit({CLOSED})'
    )
    attempts = [
        # curl: 7 refused, 22 HTTP >= 400, 28 timed out, 35 TLS handshake, 52 empty reply, 56 connection reset
        Attempt(
            "curl",
            f"curl -fsS{insecure} -o /dev/null --max-time {wait} {url}",
            refused=("7:*", "22:*", "28:*", "35:*", "52:*", "56:*"),
        ),
        # GNU wget: 4 network failure, 8 error response; BusyBox's crashes on -T and falls through
        Attempt(
            "wget",
            f"wget -q -O /dev/null -T {wait} -t 1 --no-http-keep-alive{unverified} {url}",
            refused=("4:*", "8:*"),
        ),
        # BusyBox wget; its own TLS lacks many servers' ciphers, which says nothing about the server
        Attempt(
            "wget",
            f"wget -q -O /dev/null{unverified} {url}",
            refused=('*"server returned error"*', "*[Rr]efused*", '*"error getting response"*'),
            unsure=('*"TLS error"*',),
        ),
        Attempt("python3", f"python3 -c {shlex.quote(python)} {url} {wait}", refused=(f"{CLOSED}:*",)),
    ]
    if not tls:  # bash and perl speak plain HTTP over a socket; TLS needs a library they lack
        raw = (
            f"exec 3<>/dev/tcp/{host}/{port} || exit 1\n"
            'printf "GET %s HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n" "$1" >&3\n'
            f"read -r -t {wait} _ code _ <&3\n"
            f'case "$code" in 2??|3??) exit 0;; esac; echo "status: $code"; exit {CLOSED}'
        )
        perl = (
            f'my $s = IO::Socket::INET->new(PeerAddr => "{host}:{port}", Timeout => {wait}) '
            f'or do {{ print "connect: $!"; exit {CLOSED} }};\n'
            'print $s "GET $ARGV[0] HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";\n'
            'my $line = <$s> // "";\n'
            f'exit 0 if $line =~ m{{^HTTP/\\S+ [23]\\d\\d }}; print "status: $line"; exit {CLOSED}'
        )
        attempts[3:3] = [Attempt("bash", f"bash -c {shlex.quote(raw)} _ {quoted_path}",
                                 refused=("*connect:*", f"{CLOSED}:*"))]
        attempts.append(
            Attempt("perl", f"perl -MIO::Socket::INET -e {shlex.quote(perl)} {quoted_path}", refused=(f"{CLOSED}:*",))
        )
    return _chain(f"{'https' if tls else 'http'} {host}:{port}{path}", *attempts)


def _chain(what: str, *attempts: Attempt) -> str:
    """The sh script running the attempts in order (see the module docstring)."""
    lines = []
    for attempt in attempts:
        said = f'echo {shlex.quote(f"{what}: {attempt.tool}: ")}"$o" >&2; exit 1'
        lines.append(f"o=$({attempt.command} 2>&1 </dev/null); r=$?")
        case = f'case "$r:$o" in {"|".join(attempt.answered)}) exit 0;;'
        if attempt.unsure:
            case += f' {"|".join(attempt.unsure)}) ;;'
        if attempt.refused:
            case += f' {"|".join(attempt.refused)}) {said};;'
        lines.append(case + " esac")
    tools = ", ".join(dict.fromkeys(a.tool for a in attempts))
    missing = f"{what}: no tool in this image could probe it (tried {tools}); use a command: check"
    lines.append(f"echo {shlex.quote(missing)} >&2; exit 1")
    return "\n".join(lines)


def _seconds(timeout: float) -> int:
    """A tool's own timeout: whole seconds, at least 1."""
    return max(1, int(timeout))
