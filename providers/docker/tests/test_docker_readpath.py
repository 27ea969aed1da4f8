"""The read path over the stdlib engine client: which addresses it speaks to, how its errors
are translated, that a no-op plan/apply never imports the docker SDK, and that it reads
exactly what the SDK reads."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import deployment, free_port, purge, three_service_spec
from multicloud_docker import images, observe, views
from multicloud_docker.client import (
    ConflictError,
    EngineClient,
    NotFoundError,
    default_factory,
    sdk_factory,
    translate,
)
from multicloud_docker.engine_http import (
    DEFAULT_SOCKET,
    Address,
    EngineHTTP,
    EngineHTTPError,
    EngineTimeoutError,
    EngineUnreachableError,
    address,
)
from multicloud_docker.provider import DockerProvider

from multicloud.errors import RetryableError

HERE = Path(__file__).parent
SDK_MODULES = ("docker", "requests", "urllib3")


def test_address_speaks_unix_and_plain_tcp_and_leaves_tls_and_ssh_to_the_sdk() -> None:
    assert address(None, {}) == Address(socket_path=DEFAULT_SOCKET)
    assert address(None, {"DOCKER_HOST": "unix:///run/user/1/docker.sock"}) == Address("/run/user/1/docker.sock")
    assert address("unix://var/run/x.sock", {"DOCKER_HOST": "tcp://elsewhere:2375"}) == Address("/var/run/x.sock")
    assert address(None, {"DOCKER_HOST": "tcp://10.0.0.5:2375"}) == Address(host="10.0.0.5", port=2375)
    assert address("http://engine:2375", {}) == Address(host="engine", port=2375)
    for host, environ in (
        ("ssh://me@engine", {}),
        ("https://engine:2376", {}),
        ("tcp://engine:2376", {"DOCKER_TLS_VERIFY": "1"}),
        ("tcp://engine:2376", {"DOCKER_CERT_PATH": "/certs"}),
        (None, {"DOCKER_HOST": "tcp://engine"}),  # no port: the SDK reports the bad address
        ("npipe:////./pipe/docker_engine", {}),
    ):
        assert address(host, environ) is None, (host, environ)
    assert address("tcp://engine:2375", {"DOCKER_TLS_VERIFY": ""}) == Address(host="engine", port=2375)


def test_tls_or_ssh_engines_read_over_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert default_factory("ssh://me@engine")().reader is None
    assert default_factory("tcp://engine:2375")().reader is not None


@pytest.fixture
def fake_engine() -> Iterator[tuple[int, dict[str, tuple[int, str]]]]:
    """A plain-HTTP server answering each path with the (status, body) set for it."""
    answers: dict[str, tuple[int, str]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.get(self.path.split("?")[0], (404, '{"message": "page not found"}'))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1]), answers
    server.shutdown()


def test_engine_errors_are_translated_at_the_guard(fake_engine: tuple[int, dict[str, tuple[int, str]]]) -> None:
    port, answers = fake_engine
    provider = DockerProvider({"host": f"tcp://127.0.0.1:{port}"})
    empty = (200, "[]")
    answers.update({"/v1.41/networks": empty, "/v1.41/images/json": empty, "/v1.41/volumes": (200, "{}")})
    answers["/v1.41/containers/json"] = (500, '{"message": "driver failed"}')
    with pytest.raises(RetryableError) as caught:
        provider.observe("app")
    assert "driver failed" in caught.value.message and isinstance(caught.value.__cause__, EngineHTTPError)
    answers["/v1.41/containers/json"] = (409, '{"message": "removal already in progress"}')
    with pytest.raises(ConflictError):
        provider.status("app")
    assert images.image_exists(provider.api, "nope:1") is False  # a 404 is NotFoundError at the guard
    assert isinstance(translate(EngineHTTPError(404, "no such container"), "x"), NotFoundError)
    answers["/v1.41/containers/json"] = empty
    assert provider.observe("app") == [] and provider.endpoints("app") == []


def test_an_engine_that_never_answers_is_retryable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = EngineHTTP(Address(host="127.0.0.1", port=silent.getsockname()[1]), "1.41", timeout=0.3)
        with pytest.raises(EngineTimeoutError) as caught:
            client.containers(all=True)
    error = translate(caught.value, "listing containers")
    assert isinstance(error, RetryableError) and "did not answer in time" in error.message


def test_answers_are_read_by_length_in_chunks_or_to_the_end_and_garbage_is_unreachable() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n[{\"a\"\r\n6;x=y\r\n: 1}]\n\r\n0\r\nTrailer: t\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[{\"a\": 2}]",
        b"HTTP/1.0 200 OK\r\n\r\n[{\"a\": 3}]",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 24\r\n\r\n{\"message\": \"no such x\"}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n[{\"a\": 4}]",
        b"SSH-2.0-OpenSSH\r\n",
    ]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def serve() -> None:
            for answer in answers:
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        client = EngineHTTP(Address(host="127.0.0.1", port=server.getsockname()[1]), "1.41", timeout=5)
        assert [client.containers(), client.containers(), client.containers()] == [[{"a": 1}], [{"a": 2}], [{"a": 3}]]
        with pytest.raises(EngineHTTPError) as refused:
            client.containers()
        assert (refused.value.status_code, refused.value.explanation) == (404, "no such x")
        for _ in range(2):  # cut short, then not HTTP at all
            with pytest.raises(EngineUnreachableError):
                client.containers()


def test_unreachable_socket_is_backend_unavailable_without_loading_the_sdk(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from multicloud_docker.provider import DockerProvider\n"
        "from multicloud.errors import BackendUnavailableError\n"
        f"provider = DockerProvider({{'host': 'unix://{tmp_path}/none.sock'}})\n"
        "try:\n"
        "    provider.observe('anything')\n"
        "except BackendUnavailableError as exc:\n"
        "    print(json.dumps([str(exc), type(exc.__cause__).__name__]))\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SDK_MODULES!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    message, cause = json.loads(out[0])
    assert "none.sock" in message and "setup-engine.sh" in message and cause == "EngineUnreachableError"
    assert json.loads(out[1]) == []


# --- against the real engine ---------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(
    engine: Any, test_images: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The three-service app applied once for this module; removed afterwards."""
    app = f"mct-{uuid.uuid4().hex[:8]}"
    data = three_service_spec(app, free_port())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MULTICLOUD_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        assert deployment(data).apply().ok
    yield app, data
    purge(engine, app)


NO_OP = """
import json, sys
sys.path.insert(0, {here!r})
from docker_helpers import deployment
deploy = deployment(json.loads(sys.argv[1]))
planned = deploy.plan()
result = deploy.apply(planned)
health = [deploy.provider.health(deploy.app, c.after).state.value for c in planned.changes]
print(json.dumps({{
    "changes": planned.has_changes,
    "changed": result.changed,
    "health": sorted(set(health)),
    "status": [s.state for s in deploy.status()],
    "endpoints": [e.url for e in deploy.endpoints() if e.public],
    "sdk": sorted(m for m in sys.modules if m.split(".")[0] in {sdk!r}),
}}))
"""


@pytest.mark.docker
def test_noop_plan_and_apply_never_import_the_sdk(deployed: tuple[str, dict[str, Any]]) -> None:
    _, data = deployed
    code = NO_OP.format(here=str(HERE), sdk=SDK_MODULES)
    done = subprocess.run([sys.executable, "-c", code, json.dumps(data)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    port = data["targets"]["local"]["publish"]["web.http"]
    assert found == {
        "changes": False,
        "changed": 0,
        "health": ["healthy"],
        "status": ["running", "running", "running"],
        "endpoints": [f"http://localhost:{port}"],
        "sdk": [],
    }


@pytest.mark.docker
def test_read_path_sees_what_the_sdk_sees(deployed: tuple[str, dict[str, Any]]) -> None:
    app, _ = deployed
    raw = default_factory(None)()
    sdk = sdk_factory(None)()
    assert isinstance(raw, EngineClient) and raw.reader is not None
    observed = observe.observe_all(raw, app)
    services = {f"service/{name}" for name in ("web", "api", "store")}
    assert {r.key for r in observed} == {f"network/{app}", "volume/data", "image/web"} | services
    assert observed == observe.observe_all(sdk, app)
    for resource in observed:
        assert observe.read(raw, app, resource.key) == observe.read(sdk, app, resource.key) == [resource]
    assert views.status(raw, app) == views.status(sdk, app)
    assert views.endpoints(raw, app, "localhost") == views.endpoints(sdk, app, "localhost")
    web = next(r for r in observed if r.key == "image/web")
    tag = str(web.properties["tag"])
    assert raw.inspect_image(tag)["Id"] == sdk.inspect_image(tag)["Id"]
    box = observed[-1].payload["containers"][0]
    assert raw.inspect_container(box)["Config"] == sdk.inspect_container(box)["Config"]
    assert not raw.sdk.built  # every call above went over the stdlib client
