"""The portable probe scripts, run by a real sh against real sockets with exactly one tool on PATH
(the machine's bash, python3, perl, curl, wget; OpenBSD nc and BusyBox from Debian's packages)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from multicloud.probes import http_script, probe_script, tcp_script
from multicloud.spec.models import Service
from tests.debian_tools import busybox_farm, unpack

HOST_TOOLS = ("bash", "python3", "perl", "curl", "wget")


class _Handler(BaseHTTPRequestHandler):
    """/ok and / answer 200, /redirect 302 to /ok, anything else 404."""

    def do_GET(self) -> None:
        if self.path in ("/", "/ok"):
            self.send_response(200)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    """An HTTP server, a TCP server that accepts and never speaks, and a port that refuses."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def hold() -> None:
        with contextlib.suppress(OSError):  # the fixture's teardown closes the listener under accept()
            while True:
                held.append(silent.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    yield {"http": http.server_address[1], "silent": silent.getsockname()[1], "closed": closed.getsockname()[1]}
    http.shutdown()
    for sock in (silent, closed, *held):
        sock.close()


def _farm(root: Path, tools: dict[str, str]) -> Path:
    """A PATH directory with /bin/sh and the given name -> program links, nothing else."""
    root.mkdir(parents=True, exist_ok=True)
    for name, target in {"sh": "/bin/sh", **tools}.items():
        os.symlink(target, root / name)
    return root


def _host_tool(name: str) -> str:
    """The machine's own program for a tool (the real interpreter for python3, not a shim)."""
    found = os.path.realpath(sys.executable) if name == "python3" else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine")
    return found


def _run(path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run a probe script under the farm's sh with only the farm on PATH."""
    return subprocess.run(
        [str(path / "sh"), "-c", script], env={"PATH": str(path)}, capture_output=True, text=True, timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def farms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One PATH per tool, plus BusyBox-only, OpenBSD-nc-only and no tool at all."""
    base = tmp_path_factory.mktemp("farms")
    made = {name: _farm(base / name, {name: _host_tool(name)}) for name in HOST_TOOLS if shutil.which(name)}
    made["none"] = _farm(base / "none", {})
    debs = unpack(base / "debs", "netcat-openbsd", "busybox-static")
    made["nc-openbsd"] = _farm(base / "nc-openbsd", {"nc": str(debs["netcat-openbsd"][0] / "bin" / "nc.openbsd")})
    made["busybox"] = busybox_farm(debs["busybox-static"][0] / "bin" / "busybox", base / "busybox")
    return made


@pytest.fixture(scope="module")
def https_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An HTTPS server (same paths as the HTTP one) whose certificate names another host."""
    import datetime
    import ssl

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "elsewhere.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    where = tmp_path_factory.mktemp("tls")
    (where / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (where / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "c.pem", where / "k.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


TCP_TOOLS = [*HOST_TOOLS, "nc-openbsd", "busybox"]
HTTP_TOOLS = ["bash", "python3", "perl", "curl", "wget", "busybox"]


@pytest.mark.parametrize("tool", TCP_TOOLS)
def test_tcp_probe_with_only_one_tool(tool: str, farms: dict[str, Path], ports: dict[str, int]) -> None:
    if tool not in farms:
        pytest.skip(f"{tool} is not installed on this machine")
    assert _run(farms[tool], tcp_script(ports["http"], 1)).returncode == 0
    assert _run(farms[tool], tcp_script(ports["silent"], 1)).returncode == 0, "a port that accepts but never speaks"
    refused = _run(farms[tool], tcp_script(ports["closed"], 1))
    assert refused.returncode == 1
    said = "nc" if tool in ("nc-openbsd", "busybox") else tool
    assert f"tcp 127.0.0.1:{ports['closed']}: {said}:" in refused.stderr, refused.stderr


@pytest.mark.parametrize("tool", HTTP_TOOLS)
def test_http_probe_with_only_one_tool(tool: str, farms: dict[str, Path], ports: dict[str, int]) -> None:
    if tool not in farms:
        pytest.skip(f"{tool} is not installed on this machine")
    for path in ("/ok", "/redirect"):
        run = _run(farms[tool], http_script(ports["http"], path, 1))
        assert run.returncode == 0, (path, run.stderr)
    said = "wget" if tool == "busybox" else tool
    for port, path in ((ports["http"], "/missing"), (ports["closed"], "/ok")):
        run = _run(farms[tool], http_script(port, path, 1))
        assert run.returncode == 1
        assert f"http 127.0.0.1:{port}{path}: {said}:" in run.stderr, run.stderr


@pytest.mark.parametrize("tool", ["curl", "wget", "python3"])
def test_https_probe_accepts_a_certificate_for_another_name(
    tool: str, farms: dict[str, Path], https_port: int, ports: dict[str, int]
) -> None:
    if tool not in farms:
        pytest.skip(f"{tool} is not installed on this machine")
    ok = _run(farms[tool], http_script(https_port, "/ok", 3, tls=True))
    assert ok.returncode == 0, ok.stderr
    for port, path in ((https_port, "/missing"), (ports["closed"], "/ok")):
        run = _run(farms[tool], http_script(port, path, 3, tls=True))
        assert run.returncode == 1
        assert f"https 127.0.0.1:{port}{path}: {tool}:" in run.stderr, run.stderr


def test_busybox_tls_that_cannot_handshake_hands_over(
    farms: dict[str, Path], https_port: int, tmp_path: Path
) -> None:
    """BusyBox wget's own TLS fails the handshake with this server: python3 decides instead."""
    alone = _run(farms["busybox"], http_script(https_port, "/ok", 3, tls=True))
    assert alone.returncode == 1 and "no tool in this image could probe it" in alone.stderr, alone.stderr
    farm = tmp_path / "busybox-python3"
    shutil.copytree(farms["busybox"], farm, symlinks=True)
    os.symlink(_host_tool("python3"), farm / "python3")
    assert _run(farm, http_script(https_port, "/ok", 3, tls=True)).returncode == 0
    missing = _run(farm, http_script(https_port, "/missing", 3, tls=True))
    assert missing.returncode == 1 and ": python3:" in missing.stderr


def test_no_tool_fails_and_says_what_to_do(farms: dict[str, Path], ports: dict[str, int]) -> None:
    for script in (tcp_script(ports["http"], 1), http_script(ports["http"], "/ok", 1)):
        run = _run(farms["none"], script)
        assert run.returncode == 1
        assert "no tool in this image could probe it" in run.stderr and "use a command: check" in run.stderr


BROKEN = {
    "bash": "echo 'bash: /dev/tcp/127.0.0.1/1: No such file or directory' >&2; exit 1",  # built without net
    "curl": "kill -SEGV $$",
    "wget": "echo 'wget: unrecognized option: T' >&2; echo 'Usage: wget [-cqS] URL' >&2; exit 1",
    "nc": "echo \"nc: invalid option -- 'z'\" >&2; exit 1",
    "perl": "echo 'Cannot locate IO/Socket/INET.pm in @INC' >&2; exit 2",
}


def test_tools_that_fail_to_run_fall_through(tmp_path: Path, ports: dict[str, int]) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in BROKEN.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    farm = _farm(tmp_path / "farm", {**{n: str(stubs / n) for n in BROKEN}, "python3": _host_tool("python3")})
    assert _run(farm, tcp_script(ports["http"], 1)).returncode == 0
    assert _run(farm, http_script(ports["http"], "/ok", 1)).returncode == 0
    refused = _run(farm, tcp_script(ports["closed"], 1))
    assert refused.returncode == 1 and ": python3:" in refused.stderr, refused.stderr


def test_a_tool_that_ran_and_refused_decides(tmp_path: Path, ports: dict[str, int]) -> None:
    """curl said 404: no later tool is asked (a python3 that would say yes never runs)."""
    yes = tmp_path / "yes-python3"
    yes.write_text("#!/bin/sh\necho asked >&2; exit 0\n")
    yes.chmod(0o755)
    farm = _farm(tmp_path / "farm", {"curl": _host_tool("curl"), "python3": str(yes)})
    run = _run(farm, http_script(ports["http"], "/missing", 1))
    assert run.returncode == 1 and ": curl:" in run.stderr and "asked" not in run.stderr


def test_paths_and_output_are_never_run_as_shell(tmp_path: Path, farms: dict[str, Path], ports: dict[str, int]) -> None:
    marker = tmp_path / "ran"
    path = f"/x'\"$(touch {marker})`touch {marker}`"
    run = _run(farms["python3"], http_script(ports["http"], path, 1))
    assert run.returncode == 1 and not marker.exists()


def test_probe_script_follows_the_check() -> None:
    web = Service.model_validate(
        {"image": "x", "ports": [{"name": "http", "port": 8080}], "healthcheck": {"http": "/h"}}
    )
    assert web.healthcheck is not None
    assert probe_script(web.healthcheck, web) == http_script(8080, "/h", 5.0)
    broker = Service.model_validate({"image": "x", "healthcheck": {"tcp": 1883, "timeout": "2s"}})
    assert broker.healthcheck is not None
    assert probe_script(broker.healthcheck, broker) == tcp_script(1883, 2.0)
    tls = Service.model_validate(
        {"image": "x", "ports": [{"name": "web", "port": 8443, "protocol": "https"}], "healthcheck": {"http": "/h"}}
    )
    assert tls.healthcheck is not None
    assert probe_script(tls.healthcheck, tls) == http_script(8443, "/h", 5.0, tls=True)
    job = Service.model_validate({"image": "x", "healthcheck": {"command": ["true"]}})
    assert job.healthcheck is not None and probe_script(job.healthcheck, job) is None
