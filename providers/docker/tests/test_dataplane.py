"""The emulators' data plane on the real engine: units of real containers sharing one
namespace, kept level-based (killed containers come back), swept by label on close."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docker_helpers import free_port
from multicloud_docker.dataplane import DataPlane, Member, Probe, Publish, Unit, engine_reachable
from multicloud_docker.dataplane import engine as E
from multicloud_docker.dataplane.desired import member_hash
from multicloud_docker.dataplane.holder import program

from multicloud.testing.http import get_json

pytestmark = pytest.mark.docker


def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a condition, failing the test after timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.fixture
def plane(engine: Any) -> Iterator[DataPlane]:
    """A started data plane with a fast loop; closed (and checked empty) afterwards."""
    running = DataPlane("test", period=0.2).start()
    yield running
    running.close()
    selector = {"label": [f"{E.SESSION}={running.session}"]}
    assert engine.containers(all=True, filters=selector) == []
    assert engine.networks(filters=selector) == []


def pair(image: str, port: int, *, greeting: str = "hi") -> Unit:
    """Two app containers in one namespace: `front` (8081, published) calls `back` on localhost."""
    back = Member("back", image, env={"SERVICE_NAME": "back", "PORT": "8080"})
    front = Member(
        "front",
        image,
        env={"SERVICE_NAME": "front", "PORT": "8081", "UPSTREAM": "http://localhost:8080/", "GREETING": greeting},
        files={"/run/secrets": {"token": b"s3cret-value"}},
        cpu=0.25,
        memory=128 * 1024 * 1024,
    )
    return Unit(f"group/{port}", (back, front), publish=(Publish(8081, host_port=port),))


def test_holder_program_is_a_small_static_elf() -> None:
    code = program("amd64")
    assert code.startswith(b"\x7fELF") and len(code) < 200


def test_member_hash_changes_with_secret_files_but_never_shows_them() -> None:
    unit = pair("img", 1)
    front = unit.members[1]
    changed = Member(**{**vars(front), "files": {"/run/secrets": {"token": b"other"}}})
    assert member_hash(unit, front, b"k") != member_hash(unit, changed, b"k")
    assert "s3cret" not in member_hash(unit, front, b"k")
    assert member_hash(unit, front, b"k") != member_hash(unit, front, b"other key")


def test_each_session_has_its_own_loopback_addresses() -> None:
    """What an emulator publishes for a cloud name (an ACI group, a flexible server, a Cloud SQL
    instance) is apart for two emulators running at once, and stable within one."""
    first, second = DataPlane("test"), DataPlane("test")  # not started: addresses need no engine
    assert first.loopback("azure/sub/rg/app") == first.loopback("azure/sub/rg/app")
    assert first.loopback("azure/sub/rg/app") != second.loopback("azure/sub/rg/app")
    assert first.loopback("azure/sub/rg/app") != first.loopback("azure/sub/rg/other")
    assert all(a.startswith("127.") and not a.startswith("127.0.") for a in (first.loopback("k"), second.loopback("k")))


def test_engine_reachable() -> None:
    assert engine_reachable() is True
    assert engine_reachable("tcp://127.0.0.1:1") is False


def test_members_share_localhost_and_get_env_and_files(plane: DataPlane, test_images: str, engine: Any) -> None:
    port = free_port()
    unit = pair(test_images, port)
    plane.apply(unit)
    state = plane.wait(unit.key)
    assert state.converged and state.error is None, state.error
    answer = get_json(f"http://127.0.0.1:{port}/upstream", timeout=60)
    assert answer["service"] == "front" and answer["upstream"]["service"] == "back"
    direct = get_json(f"http://127.0.0.1:{port}/", timeout=60)
    assert direct["greeting"] == "hi"
    assert set(direct["secret_files"]) == {"token"}
    until(lambda: set(plane.state(unit.key).members) == {"back", "front"})
    front = plane.state(unit.key).members["front"]
    assert front.state == "running"
    info = engine.inspect_container(front.container)
    assert info["HostConfig"]["NanoCpus"] == 250_000_000
    assert all("s3cret" not in value for value in info["Config"]["Labels"].values())
    until(lambda: "front listening on 8081" in plane.logs(unit.key, "front"))


def test_killed_members_and_holders_come_back(plane: DataPlane, test_images: str, engine: Any) -> None:
    port = free_port()
    unit = pair(test_images, port)
    plane.apply(unit)
    assert plane.wait(unit.key).error is None
    get_json(f"http://127.0.0.1:{port}/upstream", timeout=60)
    until(lambda: "back" in plane.state(unit.key).members)
    back = plane.state(unit.key).members["back"].container
    engine.remove_container(back, force=True)
    until(
        lambda: (
            plane.state(unit.key).members.get("back") is not None
            and plane.state(unit.key).members["back"].container != back
        )
    )
    assert get_json(f"http://127.0.0.1:{port}/upstream", timeout=60)["upstream"]["service"] == "back"
    holder = engine.containers(filters={"label": [f"{E.SESSION}={plane.session}", f"{E.ROLE}=holder"]})[0]
    engine.remove_container(holder["Id"], force=True)
    assert get_json(f"http://127.0.0.1:{port}/upstream", timeout=60)["upstream"]["service"] == "back"


def test_a_change_recreates_only_the_changed_member(plane: DataPlane, test_images: str) -> None:
    port = free_port()
    plane.apply(pair(test_images, port))
    key = pair(test_images, port).key
    assert plane.wait(key).error is None
    until(lambda: len(plane.state(key).members) == 2)
    before = {n: m.container for n, m in plane.state(key).members.items()}
    plane.apply(pair(test_images, port, greeting="hello"))
    assert plane.wait(key).error is None
    until(lambda: len(plane.state(key).members) == 2 and plane.state(key).members["front"].container != before["front"])
    assert plane.state(key).members["back"].container == before["back"]
    assert get_json(f"http://127.0.0.1:{port}/", timeout=60)["greeting"] == "hello"
    plane.remove(key)
    until(lambda: plane.state(key).converged and not plane.state(key).members)


def test_a_dropped_shared_volume_goes_once_unused_and_a_purged_unit_takes_its_data(plane: DataPlane,
                                                                                     engine: Any) -> None:
    """What a deleted cloud object shared (a database's socket) and held (its data) goes with it."""
    sleeper = Member("m", "debian:bookworm-slim", entrypoint=("sleep", "600"), volumes={"data": "/data"},
                     shared={"sock": "/sock"})
    plane.apply(Unit("db/1", (sleeper,)))
    assert plane.wait("db/1").error is None

    def volumes() -> set[str]:
        found = (engine.volumes(filters={"label": [f"{E.SESSION}={plane.session}"]}) or {}).get("Volumes") or []
        return {str(v["Name"]).rsplit("-", 1)[-1] for v in found}

    until(lambda: volumes() == {"data", "sock"})
    plane.drop_shared("sock")
    plane.remove("db/1")  # its containers go, its data stays
    until(lambda: volumes() == {"data"})
    plane.purge("db/1")
    until(lambda: not volumes())


def test_liveness_restarts_and_exit_codes(plane: DataPlane, test_images: str) -> None:
    failing = Probe(("CMD", "false"), interval=0.3, timeout=1, retries=1, restart=True)
    sick = Member("sick", test_images, env={"PORT": "8080"}, probe=failing)
    done = Member("done", test_images, command=("sh", "-c", "exit 3"), restart="no")
    unit = Unit("group/probe", (sick, done))
    plane.apply(unit)
    assert plane.wait(unit.key).error is None
    until(lambda: (m := plane.state(unit.key).members.get("sick")) is not None and m.restarts >= 1)
    until(lambda: (m := plane.state(unit.key).members.get("done")) is not None and m.state == "terminated")
    assert plane.state(unit.key).members["done"].exit_code == 3


def test_a_missing_image_is_an_error_on_the_unit(plane: DataPlane) -> None:
    unit = Unit("group/missing", (Member("x", "multicloud-test/does-not-exist:never"),))
    plane.apply(unit)
    state = plane.wait(unit.key)
    assert state.error is not None and "does-not-exist" in state.error


def test_a_dead_sessions_leftovers_are_swept(engine: Any) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    dead_pid = child.pid  # exited and reaped: no process has this id now
    labels = {E.SESSION: "deadbeef00", E.OWNER: f"{socket.gethostname()}:{dead_pid}", E.EMULATOR: "test"}
    network = engine.create_network(f"mcdp-deadbeef00-{os.getpid()}", labels=labels)
    plane = DataPlane("test").start()
    try:
        assert "deadbeef00" in plane.swept
        assert engine.networks(filters={"label": [f"{E.SESSION}=deadbeef00"]}) == []
    finally:
        plane.close()
        if engine.networks(filters={"label": [f"{E.SESSION}=deadbeef00"]}):
            engine.remove_network(network["Id"])
