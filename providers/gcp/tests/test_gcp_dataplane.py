"""Cloud Run's data plane in the emulator: serving revisions run as real containers behind the
TLS front. Through the real run_v2 client and the provider: the container contract (PORT,
K_SERVICE, K_REVISION, K_CONFIGURATION), Secret Manager references resolved, min instances,
an external service reached only over its URL (its containers publish nothing), an internal one
refusing outside callers but answering another service's instances at its URL, WebSocket
upgrades passing and the request timeout ending requests."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.emulator.running import accepts

from multicloud.api import Deployment
from multicloud.errors import MulticloudError
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict

pytestmark = pytest.mark.docker

APP_IMAGE = "multicloud-test/app:1"
PYTHON_IMAGE = "multicloud-test/python3:1"
IMAGES = Path(__file__).resolve().parents[2] / "docker" / "tests" / "images"
SECRET = "run-secret-8Hq1-unguessable"
# a raw server: 101 for an Upgrade (then echoes bytes), /slow answers after 5 s, else 200
ECHO = """
import socket, threading, time
def serve(c):
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += c.recv(4096)
    if b"upgrade: websocket" in head.lower():
        c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n")
        while True:
            data = c.recv(4096)
            if not data:
                break
            c.sendall(data)
    else:
        if b" /slow " in head:
            time.sleep(5)
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(__import__("os").environ["PORT"]))); s.listen(16)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def running() -> Iterator[RunningCloudRun]:
    """A Cloud Run emulator with its data plane (skips without an engine)."""
    emulator = CloudRunEmulator(run=True).start()
    if not emulator.front:
        emulator.stop()
        pytest.skip(emulator.notes[-1])
    _build_images()
    yield emulator
    emulator.stop()


def _build_images() -> None:
    """The docker tests' python3 base and app images, built once if missing."""
    import docker

    api = docker.APIClient(version="1.41", timeout=300)
    for tag, context in ((PYTHON_IMAGE, "base"), (APP_IMAGE, "app")):
        if not api.images(name=tag):
            log = list(api.build(path=str(IMAGES / context), tag=tag, rm=True, decode=True))
            assert not [c for c in log if "error" in c], log[-3:]


def deploy(running: RunningCloudRun, services: dict[str, Any], app: str = "", **settings: Any) -> Deployment:
    """Apply a spec of these services to the emulator (as app `app`, else a new one); return its Deployment."""
    target = {"provider": "gcp-cloudrun", **running.settings(), **settings}
    data = {
        "name": app or f"run{uuid.uuid4().hex[:6]}",
        "secrets": {"token": {"from_env": "TOKEN_VALUE"}},
        "services": services,
        "targets": {"gcp": target},
    }
    deployment = Deployment(
        spec_from_dict(data), "gcp", environ={"TOKEN_VALUE": SECRET}, retry=RetryPolicy(attempts=3, base_delay=0.1)
    )
    deployment.apply()
    return deployment


def url_of(deployment: Deployment, service: str) -> str:
    """A service's URL as `multicloud endpoints` reports it."""
    return next(e.url for e in deployment.endpoints() if e.service == service)


def through_front(
    running: RunningCloudRun, url: str, request: bytes, timeout: float = 90
) -> tuple[ssl.SSLSocket, bytes]:
    """Send raw request bytes to a service URL through the front (SNI and Host: the URL's host,
    the front's CA verified); return the socket and the first answer bytes."""
    host = url.removeprefix("https://").split("/")[0]
    context = ssl.create_default_context(cafile=running.front_ca)
    address, port = running.front.rsplit(":", 1)
    sock = context.wrap_socket(socket.create_connection((address, int(port)), timeout=timeout), server_hostname=host)
    sock.sendall(request.replace(b"HOST", host.encode()))
    return sock, sock.recv(65536)


def get(running: RunningCloudRun, url: str, path: str = "/") -> tuple[int, bytes]:
    """GET a path of a service URL through the front: (status, body)."""
    status, _, body = exchange(running, url, path)
    return status, body


def exchange(running: RunningCloudRun, url: str, path: str = "/", cookie: str = "") -> tuple[int, str, bytes]:
    """GET a path of a service URL through the front, sending a Cookie header when given:
    (status, the answer's head, body)."""
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    sock, data = through_front(running, url, f"GET {path} HTTP/1.1\r\nHost: HOST\r\n{extra}\r\n".encode())
    with sock:
        while True:
            more = sock.recv(65536)
            if not more:
                break
            data += more
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


def instances(running: RunningCloudRun, service_name: str) -> list[dict[str, Any]]:
    """docker inspect of the app containers running a service's revisions."""
    import docker

    assert running.model.runner is not None
    api = docker.APIClient(version="1.41")
    session = running.model.runner.plane.session
    found = api.containers(filters={"label": [f"multicloud.dataplane={session}", "multicloud.dataplane.role=member"]})
    inspected = [api.inspect_container(c["Id"]) for c in found]
    return [i for i in inspected if f"/services/{service_name}/" in i["Config"]["Labels"]["multicloud.dataplane.unit"]]


def test_revisions_run_behind_the_front_with_the_container_contract(running: RunningCloudRun) -> None:
    running.model.secret_values["token"] = SECRET
    services = {
        "web": {
            "image": APP_IMAGE,
            "replicas": 2,
            "env": {"SERVICE_NAME": "web", "TOKEN": "${secrets.token}", "UPSTREAM": "${services.back.url}"},
            "ports": [{"name": "http", "port": 8081, "protocol": "http", "expose": "public"}],
        },
        "back": {
            "image": APP_IMAGE,
            "env": {"SERVICE_NAME": "back"},
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "internal"}],
        },
    }
    deployment = deploy(running, services, vpc_network="run-vpc")  # web reaches internal back
    web = url_of(deployment, "web")
    assert running.model.runner is not None
    started = instances(running, f"{deployment.spec.name}-web")
    keys = {i["Config"]["Labels"]["multicloud.dataplane.unit"] for i in started}
    assert any(accepts(running.model.runner.address(k), 8081) for k in keys)  # apply waited for the startup probe
    status, body = get(running, web)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["service"] == "web" and answer["token_sha"] == hashlib.sha256(SECRET.encode()).hexdigest()
    web_instances = instances(running, f"{deployment.spec.name}-web")
    assert len(web_instances) == 2  # replicas 2 -> min instances 2
    for info in web_instances:
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        assert env["PORT"] == "8081" and env["K_SERVICE"] == env["K_CONFIGURATION"] == f"{deployment.spec.name}-web"
        assert env["K_REVISION"].startswith(f"{deployment.spec.name}-web-")
        assert not info["HostConfig"]["PortBindings"]  # reached only over its URL
    status, body = get(running, url_of(deployment, "back"))
    assert status == 404 and b"Page not found" in body  # internal ingress: outside callers refused
    deadline = time.monotonic() + 60
    while (answer := get(running, web, "/upstream"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)  # web calls back by its URL, from inside: 502 while back's instance starts
    assert json.loads(answer[1])["upstream"]["service"] == "back", answer
    assert len(instances(running, f"{deployment.spec.name}-back")) == 1
    deployment.destroy()
    deadline = time.monotonic() + 30
    while instances(running, f"{deployment.spec.name}-web") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert instances(running, f"{deployment.spec.name}-web") == []


def test_a_revision_whose_image_cannot_start_fails_the_rollout(running: RunningCloudRun) -> None:
    services = {"gone": {"image": "multicloud-test/does-not-exist:never",
                         "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}]}}
    with pytest.raises(MulticloudError) as caught:
        deploy(running, services)
    assert "is not ready and cannot serve traffic" in str(caught.value) and "does-not-exist" in str(caught.value)


def test_websockets_pass_and_the_request_timeout_ends_requests(running: RunningCloudRun) -> None:
    services = {
        "echo": {
            "image": PYTHON_IMAGE,
            "command": ["python3", "-c", ECHO],
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}],
        }
    }
    deployment = deploy(running, services, request_timeout=2)
    url = url_of(deployment, "echo")
    assert get(running, url) == (200, b"ok")
    upgrade = b"GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    sock, answer = through_front(running, url, upgrade)
    with sock:
        assert answer.startswith(b"HTTP/1.1 101")
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        started = time.monotonic()
        assert sock.recv(16) == b""  # the request timeout (2 s) ends the WebSocket
        assert time.monotonic() - started < 10
    status, body = get(running, url, "/slow")
    assert status == 504, body
    deployment.destroy()


def test_the_name_server_gives_run_app_names_the_front() -> None:
    from multicloud_gcp.emulator.dns import answer, question

    name = b"".join(bytes([len(p)]) + p for p in b"web-1.europe-west1.run.app".split(b".")) + b"\0"
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
    assert question(query)[:2] == ("web-1.europe-west1.run.app", 1)
    reply = answer(query, question(query)[2], "172.30.0.1")
    assert reply[:2] == b"\x12\x34" and reply[6:8] == b"\x00\x01" and reply.endswith(socket.inet_aton("172.30.0.1"))
    assert answer(query, question(query)[2], None)[6:8] == b"\x00\x00"


def _http(port: int = 8080) -> list[dict[str, Any]]:
    return [{"name": "http", "port": port, "protocol": "http", "expose": "public"}]


def updated(deployment: Deployment, service: str, edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """Change a deployed service's Cloud Run body with `edit` through the run_v2 client (as a user
    would in the console) and wait for the rollout; return the service as it is then."""
    client = deployment.provider.client  # type: ignore[attr-defined]
    name = f"projects/demo-project/locations/europe-west1/services/{deployment.spec.name}-{service}"
    body = client.get_service(name)
    edit(body)
    client.update_service({k: v for k, v in body.items() if k in (
        "name", "labels", "annotations", "ingress", "invoker_iam_disabled", "template", "traffic")})
    deadline = time.monotonic() + 60
    while (body := client.get_service(name)).get("reconciling") and time.monotonic() < deadline:
        time.sleep(0.1)
    return dict(body)


def test_traffic_splits_between_two_revisions_and_tags_reach_one(running: RunningCloudRun) -> None:
    app = f"run{uuid.uuid4().hex[:6]}"
    first = deploy(running, {"split": {"image": APP_IMAGE, "env": {"GREETING": "blue"}, "ports": _http()}}, app)
    second = deploy(running, {"split": {"image": APP_IMAGE, "env": {"GREETING": "green"}, "ports": _http()}}, app)
    client = second.provider.client  # type: ignore[attr-defined]
    name = f"projects/demo-project/locations/europe-west1/services/{app}-split"
    green, blue = (r["name"].rsplit("/", 1)[-1] for r in client.list_revisions(name))
    body = updated(second, "split", lambda body: body.update(traffic=[
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": blue, "percent": 50, "tag": "blue"},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": green, "percent": 50, "tag": "green"},
    ]))
    tagged = {t["tag"]: t["uri"] for t in body["traffic_statuses"]}
    assert tagged["blue"] == f"https://blue---{body['uri'].removeprefix('https://')}"
    greetings = [json.loads(get(running, url_of(second, "split"))[1])["greeting"] for _ in range(40)]
    assert 8 <= greetings.count("blue") <= 32 and greetings.count("green") == 40 - greetings.count("blue")
    for tag, uri in tagged.items():
        assert {json.loads(get(running, uri)[1])["greeting"] for _ in range(5)} == {tag}
    first.destroy()


def test_session_affinity_pins_a_client_to_its_instance(running: RunningCloudRun) -> None:
    from multicloud_gcp.client import GoogleCloudRunApi
    from multicloud_gcp.settings import parse_settings

    client = GoogleCloudRunApi(parse_settings(running.settings()))  # the run_v2 client, as a user's script
    parent, name = "projects/demo-project/locations/europe-west1", f"ws{uuid.uuid4().hex[:6]}"
    container = {"image": APP_IMAGE, "ports": [{"container_port": 8080}]}
    client.create_service(parent, name, {"template": {
        "containers": [container], "session_affinity": True, "scaling": {"min_instance_count": 3}}})
    deadline = time.monotonic() + 60
    while (body := client.get_service(f"{parent}/services/{name}") or {}).get("terminal_condition", {}).get(
        "state") != "CONDITION_SUCCEEDED":
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    url = body["uri"]
    answers = [exchange(running, url) for _ in range(12)]
    assert len({json.loads(body)["hostname"] for _, _, body in answers}) >= 2  # no cookie: spread
    cookies = [line.split(":", 1)[1].split(";")[0].strip() for _, head, _ in answers
               for line in head.split("\r\n") if line.lower().startswith("set-cookie: gaesa=")]
    assert len(cookies) == 12
    pinned = {exchange(running, url, cookie=cookies[0]) for _ in range(8)}
    assert {json.loads(body)["hostname"] for _, _, body in pinned} == {json.loads(answers[0][2])["hostname"]}
    assert not any("Set-Cookie" in head for _, head, _ in pinned)  # the pin holds: no new cookie
    assert "Set-Cookie: GAESA=" in exchange(running, url, cookie="GAESA=forged")[1]  # unknown: placed anew
    client.delete_service(f"{parent}/services/{name}")


SLOW = """
import http.server, os, socket, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.5 if self.path == "/slow" else 0)
        body = socket.gethostname().encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


def test_instances_scale_with_load_up_to_max_and_down_to_zero(running: RunningCloudRun) -> None:
    import threading

    assert running.model.runner is not None
    scaler = running.model.runner.scaler
    service = {"image": PYTHON_IMAGE, "command": ["python3", "-c", SLOW], "replicas": 0, "ports": _http(),
               "resources": {"cpu": 0.5, "memory": "256Mi"}}  # below 1 cpu: one request per instance
    deployment = deploy(running, {"slow": service}, max_instances=2)
    name, url = f"{deployment.spec.name}-slow", url_of(deployment, "slow")
    assert len(instances(running, name)) == 1  # deployed with one instance, though min is 0
    answers: list[tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda: answers.append(get(running, url, "/slow"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, len(instances(running, name)))
        time.sleep(0.2)
    assert [status for status, _ in answers] == [200] * 4
    assert len({body for _, body in answers}) == 2 and peak == 2  # four at once: a second instance, no third
    idle, scaler.idle_seconds = scaler.idle_seconds, 1.0
    try:
        deadline = time.monotonic() + 30
        while instances(running, name) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert instances(running, name) == []  # min 0 and idle: scaled to zero
    finally:
        scaler.idle_seconds = idle
    served = [line for line in deployment.logs("slow", tail=None) if "GET /slow" in line.message]
    assert len(served) == 4  # Cloud Logging kept what the stopped instances printed
    assert get(running, url)[0] == 200  # a cold start from zero
    assert len(instances(running, name)) == 1
    deployment.destroy()


def test_logs_come_from_cloud_logging(running: RunningCloudRun) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    deployment = deploy(running, {"web": {"image": APP_IMAGE, "env": {"SERVICE_NAME": "web"}, "ports": _http()}})
    url = url_of(deployment, "web")
    for path in ("/one", "/two", "/three"):
        assert get(running, url, path)[0] == 200
    deadline = time.monotonic() + 60  # an answer can come before its line is written (and read back)
    history = list(deployment.logs("web", tail=None))
    while not any("/three" in line.message for line in history):
        assert time.monotonic() < deadline, [line.message for line in history]
        time.sleep(0.3)
        history = list(deployment.logs("web", tail=None))
    assert history[0].message == "web listening on 8080" and history[0].instance.startswith(f"{deployment.app}-web-")
    assert [line.timestamp for line in history] == sorted(line.timestamp for line in history)  # type: ignore[type-var]
    last_two = list(deployment.logs("web", tail=2))
    assert "/two" in last_two[0].message and "/three" in last_two[1].message
    assert list(deployment.logs("web", since=datetime.now(UTC) + timedelta(minutes=1))) == []
    assert len(list(deployment.logs(None, tail=None, since=datetime.now(UTC) - timedelta(minutes=5)))) == len(history)
    following = deployment.logs("web", follow=True, tail=0)
    stop = threading.Event()

    def ask() -> None:  # until a line comes: the follow reads from when it starts, however late that is
        while not stop.wait(0.5):
            try:
                get(running, url, "/followed")
            except OSError:
                continue

    threading.Thread(target=ask, daemon=True).start()
    try:
        line = next(following)  # the history is skipped (tail 0); a later request's line arrives
    finally:
        stop.set()
    assert "/followed" in line.message
    following.close()
    deployment.destroy()
