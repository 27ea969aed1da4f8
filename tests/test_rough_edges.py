"""Rough edges found by fuzzing and by trying the CLI as a new user: each gets a clear answer,
an exit code that says what to do next, and (where there is one) the line it concerns."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multicloud.api import Deployment
from multicloud.cli.main import main
from multicloud.errors import CapabilityError, SpecError, TargetError
from multicloud.spec import load, loads, read_secrets, target_spec

HEAD = "name: edge\nservices:\n  web:\n    image: nginx\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def problems_of(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(SpecError) as caught:
        loads(text, file="edge.yaml")
    return [(p.line, p.field, p.message) for p in caught.value.problems]


# --- numbers too large for their field ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resources: {memory: " + "9" * 400 + "Gi}", "memory"),
        ("resources: {memory: 99999999999999999999999}", "memory"),
        ("resources: {memory: 2Ti}", "memory"),
        ("resources: {cpu: 1.0e400}", "cpu"),
        ("healthcheck: {tcp: 80, interval: 1.0e400}", "interval"),
        ("healthcheck: {tcp: 80, timeout: 99999999999h}", "timeout"),
        ("healthcheck: {tcp: 80, start_period: " + "9" * 5000 + "}", "start_period"),
        ("replicas: " + "9" * 30, "replicas"),
    ],
)
def test_numbers_too_large_are_refused_at_their_line(field: str, value: str) -> None:
    found = problems_of(HEAD + "    " + field + "\n")
    assert [line for line, _, _ in found] == [5], found
    assert value in found[0][1] or found[0][1] == "services.web", found


def test_a_huge_number_on_the_command_line_exits_2_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(HEAD + "    resources: {memory: " + "9" * 400 + "Gi}\n")
    code, _, err = run(capsys, "validate", "-f", str(spec))
    assert code == 2 and f"{spec}:5:" in err and "memory" in err and "Traceback" not in err


# --- what the spec file is ------------------------------------------------------------------


def test_a_file_over_4_mib_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of nothing
    with pytest.raises(SpecError, match="over the limit of 4,194,304"):
        load(big)


def test_devices_and_fifos_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"not a regular file \(a character device\)"):
        load("/dev/zero")
    fifo = tmp_path / "spec.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"not a regular file \(a FIFO\)"):
        load(fifo)  # no writer: opening it for reading must not block
    assert time.monotonic() - started < 5
    with pytest.raises(SpecError, match=r"not a regular file \(a directory\)"):
        load(tmp_path)


def test_non_utf8_bytes_and_control_characters_are_located(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(HEAD.encode() + b"    env: {CITY: M\xfcnchen}\n")
    with pytest.raises(SpecError) as caught:
        load(latin1)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (5, 18) and "not UTF-8 (byte 0xfc)" in problem.message
    control = tmp_path / "control.yaml"
    control.write_text(HEAD + "    env: {A: \"x\x07y\"}\n")
    with pytest.raises(SpecError) as caught:
        load(control)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (5, 16) and "U+0007" in problem.message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_a_byte_order_mark_says_how_to_read_the_file(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.yaml"
    data = (HEAD + "    env: {CITY: München}\n").encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert load(path).services["web"].env == {"CITY": "München"}


def test_utf16_without_a_mark_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "u16.yaml"
    path.write_bytes(HEAD.encode("utf-16-le"))
    with pytest.raises(SpecError, match="NUL bytes \\(UTF-16 or UTF-32 without a byte-order mark\\?\\)"):
        load(path)


# --- secrets --------------------------------------------------------------------------------

SECRET_SPEC = HEAD + (
    "    env: {TOKEN: \"${secrets.token}\"}\n"
    "secrets:\n  token: {from_file: token.txt}\n"
    "targets:\n  t: {provider: memory}\n  strict: {provider: memory, empty_secrets: false}\n"
)


def test_a_non_utf8_secret_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(SECRET_SPEC)
    (tmp_path / "token.txt").write_bytes(b"\x80\x81 not text")
    code, _, err = run(capsys, "plan", "-f", str(spec), "-t", "t")
    assert code == 2 and "secret 'token': cannot read" in err and "not UTF-8 (byte 0x80)" in err
    (tmp_path / "token.txt").write_bytes(b"caf\xe9")
    with pytest.raises(TargetError, match="not UTF-8"):
        read_secrets(target_spec(load(spec), "t"), {})
    (tmp_path / "token.txt").unlink()
    os.mkfifo(tmp_path / "token.txt")
    with pytest.raises(TargetError, match="not a regular file"):
        read_secrets(target_spec(load(spec), "t"), {})


def test_an_empty_secret_is_refused_at_plan_where_the_target_cannot_store_it(tmp_path: Path) -> None:
    spec_path = tmp_path / "multicloud.yaml"
    spec_path.write_text(SECRET_SPEC)
    (tmp_path / "token.txt").write_text("")
    spec = load(spec_path)
    Deployment(spec, "t").plan()  # a target that stores empty values: fine
    with pytest.raises(CapabilityError) as caught:
        Deployment(spec, "strict").plan()
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (7, "secrets.token")
    assert "cannot store an empty secret" in problem.message


# --- placeholders and YAML merge keys -------------------------------------------------------


def test_an_unterminated_placeholder_is_an_error_at_its_line() -> None:
    found = problems_of(HEAD + "    env: {HOST: \"${services.web.host\"}\n")
    assert found == [(5, "services.web.env.HOST", "${services.web.host is not closed; end the placeholder with }")]
    assert problems_of(HEAD + "    command: [\"a ${secrets.x\"]\n")[0][:2] == (5, "services.web.command[0]")


def test_a_merge_key_then_an_overriding_key_is_accepted() -> None:
    spec = loads(
        "name: m\nservices:\n  web: &base\n    image: nginx\n    replicas: 2\n"
        "  api:\n    <<: *base\n    replicas: 3\n    image: other\n"
    )
    assert (spec.services["api"].replicas, spec.services["api"].image) == (3, "other")
    assert spec.source.locate(("services", "api", "replicas")) == (8, 5)
    merged_twice = "name: m\nx: &a {image: a}\nservices:\n  web:\n    <<: [*a, {image: b}]\n"
    assert problems_of(merged_twice)[0][2] == "unknown field 'x'"  # merges may repeat keys; only x is wrong
    found = problems_of("name: m\nservices:\n  web:\n    <<: {replicas: 1}\n    image: a\n    image: b\n")
    assert found == [(6, "services.web.image", "key appears twice in this mapping")]


# --- the command line -----------------------------------------------------------------------


def test_errors_under_json_output_are_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(HEAD + "targets:\n  local: {provider: memory}\n")
    code, out, err = run(capsys, "plan", "-f", str(spec), "-t", "lcoal", "-o", "json")
    report = json.loads(out)
    assert code == 2 and report["error"]["kind"] == "TargetError"
    assert "did you mean 'local'?" in report["error"]["message"] and "error:" in err
    spec.write_text(HEAD + "    replicas: -1\n")
    code, out, _ = run(capsys, "validate", "-f", str(spec), "-o", "json")
    report = json.loads(out)
    assert code == 2 and report["valid"] is False
    assert report["error"]["problems"][0]["line"] == 5


def test_options_are_never_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", "--out", "json"])
    assert caught.value.code == 2 and "unrecognized arguments: --out json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--vers"])


def test_unknown_targets_and_providers_get_a_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(HEAD + "targets:\n  staging: {provider: memroy}\n")
    code, _, err = run(capsys, "plan", "-f", str(spec), "-t", "stagin")
    assert code == 2 and "unknown target 'stagin' (did you mean 'staging'?" in err
    code, _, err = run(capsys, "plan", "-f", str(spec), "-t", "staging")
    assert code == 2 and "no provider named 'memroy' is installed (did you mean 'memory'?" in err
    code, _, err = run(capsys, "validate", "-f", str(spec))
    assert code == 2 and f"{spec}:6:13: targets.staging.provider: no provider 'memroy' is installed" in err


def test_ctrl_d_at_the_prompt_aborts(tmp_path: Path) -> None:
    """A real terminal (a pty): Ctrl-D at the confirmation prompt is "aborted", exit 2, nothing changed."""
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(HEAD + f"targets:\n  t: {{provider: memory, state_file: {tmp_path / 'state.json'}}}\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child runs the CLI on the pty
        os.execv(sys.executable, [sys.executable, "-m", "multicloud.cli.main", "apply", "-f", str(spec)])
    output = b""
    try:
        output = _read_until(fd, b"Only 'yes' is accepted: ")
        os.write(fd, b"\x04")  # Ctrl-D: end of input
        output += _read_until(fd, b"")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert "apply aborted (end of input); nothing was changed" in text and "internal error" not in text
    assert not (tmp_path / "state.json").exists() or "web" not in (tmp_path / "state.json").read_text()


def _read_until(fd: int, marker: bytes, timeout: float = 30.0) -> bytes:
    """Read a pty until `marker` appears (or, for b"", until the child closes it)."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
        if marker and marker in data:
            return data
    raise AssertionError(f"timed out waiting for {marker!r}; got {data!r}")


def test_an_unreachable_engine_exits_1_cannot_reach(tmp_path: Path) -> None:
    """A backend that does not answer is not invalid input: exit 1, "cannot reach"."""
    spec = tmp_path / "multicloud.yaml"
    spec.write_text(HEAD + "targets:\n  local: {provider: docker, host: \"tcp://127.0.0.1:9\"}\n")
    done = subprocess.run(
        [sys.executable, "-m", "multicloud.cli.main", "plan", "-f", str(spec)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot reach the Docker engine" in done.stderr and "Traceback" not in done.stderr
