"""Built-in tcp/http health checks on the real engine, in images that lack the usual tools: a
scratch image holding only Debian's busybox-static (whose small nc has no -z and whose wget -T
crashes), and a Python-only image (no bash, perl, curl, wget or nc). Images are cached by a tag
derived from their content."""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import deployment
from multicloud_docker import healthcheck

from multicloud.probes import http_script, tcp_script
from multicloud.spec.models import Service

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root, for tests.debian_tools

from tests.debian_tools import busybox_rootfs, unpack

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]

PORT = 8080
CLOSED_PORT = 8081
BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
PYTHON_ONLY_DOCKERFILE = """\
FROM multicloud-test/python3:1
RUN rm -f /bin/bash /usr/bin/bash /usr/bin/perl* /bin/perl* \\
 && for tool in bash perl curl wget nc busybox; do if command -v "$tool"; then exit 1; fi; done
CMD ["python3", "-m", "http.server", "8080", "--directory", "/tmp"]
"""


def _build(engine: Any, context: Path, tag: str) -> str:
    """Build `context` as `tag` unless an image already has that tag; return the tag."""
    import docker.errors

    try:
        engine.inspect_image(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    for chunk in engine.build(path=str(context), tag=tag, rm=True, forcerm=True, decode=True):
        if "error" in chunk:
            raise RuntimeError(f"building {tag} failed: {chunk['error']}")
    return tag


@pytest.fixture(scope="module")
def images(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """name -> tag of the BusyBox-only and the Python-only image, built once per content."""
    work = tmp_path_factory.mktemp("probe-images")
    debs = unpack(work / "debs", "busybox-static")
    root, deb_sha = debs["busybox-static"]
    context = work / "busybox"
    rootfs = busybox_rootfs(root / "bin" / "busybox", context / "rootfs")
    (rootfs / "www").mkdir()
    (rootfs / "www" / "index.html").write_text("ok\n")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    busybox_tag = hashlib.sha256(f"{deb_sha}\n{BUSYBOX_DOCKERFILE}".encode()).hexdigest()[:12]
    python_context = work / "python-only"
    python_context.mkdir()
    (python_context / "Dockerfile").write_text(PYTHON_ONLY_DOCKERFILE)
    base_id = engine.inspect_image("multicloud-test/python3:1")["Id"]
    python_tag = hashlib.sha256(f"{base_id}\n{PYTHON_ONLY_DOCKERFILE}".encode()).hexdigest()[:12]
    return {
        "busybox": _build(engine, context, f"multicloud-test/busybox-static:{busybox_tag}"),
        "python-only": _build(engine, python_context, f"multicloud-test/python-only:{python_tag}"),
    }


def _service(image: str, check: dict[str, Any]) -> Service:
    """A service of the image whose server listens on PORT, with a fast health check."""
    timing = {"interval": "1s", "timeout": "5s", "retries": 2}
    return Service.model_validate(
        {"image": image, "ports": [{"name": "http", "port": PORT}], "healthcheck": {**check, **timing}}
    )


@pytest.fixture
def started(engine: Any, app: str) -> Iterator[list[str]]:
    """Ids of the containers a test starts (removed afterwards, with everything labelled with the app)."""
    ids: list[str] = []
    yield ids
    for container in ids:
        engine.remove_container(container, force=True)


def _start(engine: Any, app: str, image: str, health: dict[str, Any] | None, ids: list[str]) -> str:
    """Start a container of the image as the docker provider would (non-root, read-only root)."""
    host = engine.create_host_config(read_only=True, cap_drop=["ALL"], tmpfs={"/tmp": ""})
    created = engine.create_container(
        image, name=f"{app}-{uuid.uuid4().hex[:6]}", user="1000", labels={"multicloud.app": app},
        healthcheck=health, host_config=host,
    )
    ids.append(created["Id"])
    engine.start(created["Id"])
    return str(created["Id"])


def _exec(engine: Any, container: str, command: list[str]) -> tuple[int, str]:
    """Run a command in the container; its exit status and output."""
    run = engine.exec_create(container, command, user="1000")
    output = engine.exec_start(run["Id"]).decode(errors="replace")
    return int(engine.exec_inspect(run["Id"])["ExitCode"]), output


def _wait_listening(engine: Any, container: str) -> None:
    """Until the container's server accepts connections (judged by the probe itself), at most 20 s."""
    deadline = time.monotonic() + 20
    while _exec(engine, container, ["/bin/sh", "-c", tcp_script(PORT, 1)])[0] != 0:
        assert time.monotonic() < deadline, "the test server never listened"
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["busybox", "python-only"])
def test_probe_scripts_in_an_image_without_the_usual_tools(
    kind: str, images: dict[str, str], engine: Any, app: str, started: list[str]
) -> None:
    container = _start(engine, app, images[kind], None, started)
    _wait_listening(engine, container)
    cases = {
        tcp_script(PORT, 1): 0,
        tcp_script(CLOSED_PORT, 1): 1,
        http_script(PORT, "/", 1): 0,
        http_script(PORT, "/no-such-page", 1): 1,
        http_script(CLOSED_PORT, "/", 1): 1,
    }
    for script, expected in cases.items():
        status, output = _exec(engine, container, ["/bin/sh", "-c", script])
        assert status == expected, (script.splitlines()[0], output)
        assert "no tool in this image" not in output


@pytest.mark.parametrize("kind", ["busybox", "python-only"])
def test_engine_health_checks_pass_on_an_open_port_and_fail_on_a_closed_one(
    kind: str, images: dict[str, str], engine: Any, app: str, started: list[str]
) -> None:
    checks = {
        "tcp-open": ({"tcp": PORT}, "healthy"),
        "tcp-closed": ({"tcp": CLOSED_PORT}, "unhealthy"),
        "http-open": ({"http": "/"}, "healthy"),
        "http-closed": ({"http": "/", "port": CLOSED_PORT}, "unhealthy"),
    }
    boxes = {
        name: _start(
            engine, app, images[kind], healthcheck.docker_healthcheck(healthcheck.render(_service(images[kind], c))),
            started,
        )
        for name, (c, _) in checks.items()
    }
    deadline = time.monotonic() + 60
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {n: engine.inspect_container(c)["State"]["Health"]["Status"] for n, c in boxes.items()}
        if "starting" not in states.values():
            break
        time.sleep(0.5)
    assert states == {name: want for name, (_, want) in checks.items()}
    log = engine.inspect_container(boxes["tcp-closed"])["State"]["Health"]["Log"][-1]["Output"]
    assert f"tcp 127.0.0.1:{CLOSED_PORT}:" in log and "no tool" not in log, log


def test_docker_provider_applies_a_tcp_checked_service_on_busybox(images: dict[str, str], app: str) -> None:
    spec = {
        "name": app,
        "services": {
            "web": {
                "image": images["busybox"],
                "ports": [{"name": "http", "port": PORT}],
                "healthcheck": {"tcp": PORT, "interval": "1s", "retries": 2},
            }
        },
        "targets": {"local": {"provider": "docker"}},
    }
    deploy = deployment(spec)
    assert deploy.apply().ok  # ready once the provider's own run of the check passed (exec)
    deadline = time.monotonic() + 30  # status is the engine's verdict: healthy at its first check (1 s)
    while [(s.service, s.healthy) for s in deploy.status()] != [("web", 1)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(s.service, s.healthy) for s in deploy.status()] == [("web", 1)]
    deploy.destroy()
