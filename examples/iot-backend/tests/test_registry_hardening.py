"""The registry against hostile input: body limit, bounded and storable fields, ids, ranges, time windows."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import eventually, new_device
from iotsim.api import RegistryClient
from stack import DockerStack, docker

pytestmark = pytest.mark.docker

MiB = 1024 * 1024


def call(stack: DockerStack, method: str, path: str, body: bytes | None = None, chunked: bool = False,
         token: str | None = None) -> tuple[int, bytes]:
    """One raw HTTP request to the registry (chunked: without Content-Length); return status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports["registry"], timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token or stack.admin_token}", "Content-Type": "application/json"}
        if chunked and body is not None:
            view = memoryview(body)
            pieces = (view[i:i + 65536] for i in range(0, len(body), 65536))
            connection.request(method, path, body=pieces, headers=headers, encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def memory_kib(stack: DockerStack) -> dict[str, int]:
    """The registry process's resident memory now and at its peak (VmRSS, VmHWM from /proc, in KiB)."""
    status = docker("exec", stack.name("registry"), "cat", "/proc/1/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def test_twenty_concurrent_20_mb_bodies_get_413_and_memory_stays_bounded(stack: DockerStack) -> None:
    before = memory_kib(stack)
    body = b"x" * (20 * MiB)  # one buffer shared by every sender
    answers: list[object] = []
    lock = threading.Lock()

    def send(chunked: bool) -> None:  # chunked: no Content-Length, the limit is counted as the body streams in
        try:
            status, text = call(stack, "POST", "/devices", body, chunked=chunked, token="unchecked")
            answer: object = (status, len(text))
        except OSError as exc:
            answer = repr(exc)
        with lock:
            answers.append(answer)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(i % 2 == 0,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    after = memory_kib(stack)
    print(f"20 x 20 MiB in {elapsed:.1f} s; registry VmRSS {before['VmRSS']} -> {after['VmRSS']} KiB,"
          f" peak {before['VmHWM']} -> {after['VmHWM']} KiB")
    assert all(isinstance(a, tuple) and a[0] == 413 and a[1] < 200 for a in answers), answers
    assert len(answers) == 20
    assert after["VmHWM"] - before["VmHWM"] < 64 * 1024, "the registry's peak memory grew by more than 64 MiB"
    assert stack.running(stack.name("registry"))
    assert call(stack, "GET", "/healthz")[0] == 200
    assert call(stack, "POST", "/devices", json.dumps({"name": "after the flood"}).encode())[0] == 201


def test_the_body_limit_is_counted_not_trusted(stack: DockerStack) -> None:
    just_over = b'{"name": "' + b"a" * (64 * 1024) + b'"}'
    assert call(stack, "POST", "/devices", just_over)[0] == 413
    status, answer = call(stack, "POST", "/devices", just_over, chunked=True)
    assert status == 413, answer
    # unauthenticated callers get the same answer before anything else looks at the request
    assert call(stack, "POST", "/devices", just_over, token="nobody")[0] == 413


def test_a_validation_error_quotes_at_most_a_short_excerpt(stack: DockerStack) -> None:
    broken = b'{"name": "' + b"A" * 60_000  # unterminated JSON, just under the limit
    status, answer = call(stack, "POST", "/devices", broken)
    assert status == 422
    assert len(answer) < 1000 and b"AAAAAAAAAA" not in answer
    wrong_type = json.dumps({"name": ["B" * 60_000]}).encode()
    status, answer = call(stack, "POST", "/devices", wrong_type)
    assert status == 422
    assert len(answer) < 1000 and b"BBBBBBBBBB" not in answer


BAD_INPUTS: list[tuple[str, str, Any, str]] = [
    # method, path, JSON body (None: no body), what it is
    ("GET", "/devices?offset=9223372036854775808", None, "offset beyond bigint"),
    ("GET", "/devices?offset=-1", None, "negative offset"),
    ("GET", "/devices?limit=0", None, "limit 0"),
    ("GET", "/devices?limit=1000000000000000000000", None, "huge limit"),
    ("GET", "/devices?status=%00", None, "NUL status"),
    ("GET", "/devices/abc%00", None, "NUL in a path id"),
    ("GET", "/devices/abc%0A", None, "id ending in a newline"),
    ("GET", "/devices/" + "a" * 64, None, "id of 64 characters"),
    ("GET", "/devices/%ED%A0%80", None, "a lone surrogate in UTF-8 form in a path"),
    ("DELETE", "/devices/abc%00", None, "NUL id to decommission"),
    ("POST", "/devices/abc%00/commands", {"command": "x"}, "NUL id for a command"),
    ("GET", "/devices/abc%00/readings", None, "NUL id for readings"),
    ("GET", "/readings?limit=100000", None, "readings limit too large"),
    ("GET", "/readings?since=1732800000123", None, "since in milliseconds"),
    ("GET", "/readings?until=99999999999999999999", None, "until far out of range"),
    ("GET", "/readings?since=nan", None, "since NaN"),
    ("GET", "/readings?since=1e400", None, "since infinite"),
    ("GET", "/readings?since=yesterday", None, "since in words"),
    ("GET", "/readings?since=10000-01-01T00:00:00", None, "year 10000"),
    ("GET", "/readings?since=%00", None, "NUL since"),
    ("DELETE", "/devices/abc?wait=1e999", None, "infinite wait"),
    ("POST", "/devices?wait_active=nan", {}, "NaN wait_active"),
    ("POST", "/devices", {"id": "abc\n"}, "new id ending in a newline"),
    ("POST", "/devices", {"id": "ABC"}, "upper-case id"),
    ("POST", "/devices", {"id": "a" * 64}, "id of 64 characters"),
    ("POST", "/devices", {"name": "a\u0000b"}, "NUL in a name"),
    ("POST", "/devices", {"name": "a\ud800b"}, "lone surrogate in a name"),
    ("POST", "/devices", {"name": "n" * 201}, "name too long"),
    ("POST", "/devices", {"metadata": {"k": "a\u0000b"}}, "NUL in a metadata value"),
    ("POST", "/devices", {"metadata": {"k\u0000": 1}}, "NUL in a metadata key"),
    ("POST", "/devices", {"metadata": {"k": "v" * 5000}}, "metadata too large"),
    ("POST", "/devices", {"metadata": {"k": float("inf")}}, "infinite number in metadata"),
    ("POST", "/devices", {"metadata": {"k": float("nan")}}, "NaN in metadata"),
    ("POST", "/devices", {"metadata": json.loads("[" * 20 + "]" * 20)}, "metadata not an object"),
    ("POST", "/devices", {"metadata": {"k": json.loads("[" * 20 + "]" * 20)}}, "metadata nested too deep"),
    ("POST", "/devices", {"name": False}, "a boolean name"),
    ("POST", "/devices", {"id": ""}, "an empty id"),
    ("POST", "/devices/abc/commands", {"command": False}, "a boolean command"),
    ("POST", "/devices", [], "a list instead of an object"),
    ("POST", "/devices", "text", "a string instead of an object"),
    ("POST", "/devices/bulk", {"devices": []}, "an empty bulk"),
    ("POST", "/devices/bulk", {"devices": [{"id": "ok-1"}, {"id": "ok-1"}]}, "bulk with a repeated id"),
    ("POST", "/devices/bulk", {"devices": [{"name": "\u0000"}]}, "bulk with a NUL name"),
    ("POST", "/devices/bulk", {"devices": [{"id": "x\n"}]}, "bulk with an id ending in a newline"),
]


@pytest.mark.parametrize(("method", "path", "body", "what"), BAD_INPUTS, ids=[case[3] for case in BAD_INPUTS])
def test_bad_input_gets_a_4xx_never_a_500(stack: DockerStack, method: str, path: str, body: Any, what: str) -> None:
    raw = None if body is None else json.dumps(body).encode()  # json.dumps writes NaN/Infinity as Python does
    status, answer = call(stack, method, path, raw)
    assert 400 <= status < 500, f"{what}: HTTP {status} {answer[:300]!r}"
    assert len(answer) < 2000, f"{what}: a {len(answer)}-byte error"


def test_malformed_tokens_get_401(stack: DockerStack) -> None:
    for token in ("ÿÿÿ", "a b", "x" * 10_000, "tab\there"):
        connection = http.client.HTTPConnection("127.0.0.1", stack.ports["registry"], timeout=10)
        try:
            connection.putrequest("GET", "/devices")
            connection.putheader("Authorization", b"Bearer " + token.encode("latin-1"))
            connection.endheaders()
            assert connection.getresponse().status in (400, 401), token[:20]
        finally:
            connection.close()


def test_one_bad_registration_in_a_group_fails_only_itself(stack: DockerStack) -> None:
    bodies = [{"name": f"good-{i}"} for i in range(11)] + [{"name": "bad\u0000"}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: call(stack, "POST", "/devices", json.dumps(b).encode()), bodies))
    assert [status for status, _ in answers] == [201] * 11 + [422]


REGISTRAR_PROBE = """
import asyncio, json, os
from registry_service.auth_client import AuthClient
from registry_service.db import make_pool
from registry_service.registrar import Registrar
from registry_service.settings import Settings

async def main():
    settings = Settings.from_env()
    pool = make_pool(settings.database_url)
    await pool.open()
    registrar = Registrar(pool, AuthClient(settings.auth_url, 5.0))
    registrar.start()
    prefix, token = os.environ["PROBE_PREFIX"], os.environ["PROBE_TOKEN"]
    names = ["fine"] * 11 + ["bad\\u0000"]  # the NUL passes no API check: it reaches the database
    calls = [registrar.register(token, f"{prefix}-{i}", name, {}) for i, name in enumerate(names)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    print(json.dumps([getattr(r, "status_code", "created") for r in results]))
    await registrar.stop()
    await pool.close()

asyncio.run(main())
"""


def test_the_registrar_splits_a_group_until_the_bad_item_is_alone(stack: DockerStack) -> None:
    """Inside the running registry container, against the stack's database and auth: one group, one bad item."""
    prefix = f"probe-{os.urandom(3).hex()}"
    out = docker("exec", "-i", "-e", "PROBE_PREFIX", "-e", "PROBE_TOKEN", stack.name("registry"), "python3", "-c",
                 REGISTRAR_PROBE, env={**os.environ, "PROBE_PREFIX": prefix, "PROBE_TOKEN": stack.admin_token})
    assert json.loads(out.splitlines()[-1]) == ["created"] * 11 + [422]
    stored = stack.psql(f"SELECT count(*) FROM devices WHERE id LIKE '{prefix}-%'")
    assert stored == "11"


def test_since_and_until_take_iso_8601_and_unix_seconds_alike(stack: DockerStack, api: RegistryClient) -> None:
    device = new_device(api, stack.mqtt_url, "window")
    device.publish()
    assert device.wait_acked(5)
    assert eventually(lambda: api.readings(device.device_id), timeout=5.0)
    row = api.readings(device.device_id)[0]
    seconds = time.time() - 3600
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    for since in (str(int(seconds)), f"{seconds:.3f}", iso, iso.replace("Z", "+00:00"), iso[:-1]):
        query = urllib.parse.urlencode({"since": since})
        status, answer = call(stack, "GET", f"/devices/{device.device_id}/readings?{query}")
        assert status == 200, (since, answer)
        assert [r["seq"] for r in json.loads(answer)] == [row["seq"]], since
    status, answer = call(stack, "GET", f"/devices/{device.device_id}/readings?since={int(seconds * 1000)}")
    assert status == 422 and b"milliseconds" in answer
    device.close()
