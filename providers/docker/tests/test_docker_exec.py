"""`multicloud exec` against real containers: exit status, streams, stdin, replicas, a terminal."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


@pytest.fixture(scope="module")
def project(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A deployed app of one service with two replicas that just wait; removed afterwards."""
    import uuid

    from docker_helpers import purge

    app = f"mct-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("exec")
    spec = {
        "name": app,
        "services": {"box": {"image": "debian:bookworm-slim", "replicas": 2, "command": ["sleep", "infinity"]}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }
    (root / "multicloud.yaml").write_text(yaml.safe_dump(spec))
    try:
        assert cli(root, "apply", "--yes").returncode == 0
        yield root
    finally:
        purge(engine, app)


def cli(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the multicloud CLI in `cwd` as a user would, with `stdin` as its input."""
    command = [sys.executable, "-m", "multicloud.cli.main", *args]
    return subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def run(project: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """Run the CLI in this process (quicker than a new one); return (exit code, stdout, stderr)."""
    from multicloud.cli.main import main

    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code = main(["exec", *args])
    out, err = capfd.readouterr()
    return code, out, err


def test_exit_status_and_streams_pass_through(project: Path, capfd: Any, monkeypatch: Any) -> None:
    assert run(project, capfd, monkeypatch, "box", "--", "sh", "-c", "echo out; echo err >&2; exit 7") == (
        7, "out\n", "err\n"
    )
    assert run(project, capfd, monkeypatch, "box", "--", "true")[0] == 0
    # every `--` after the first belongs to the command
    assert run(project, capfd, monkeypatch, "box", "--", "echo", "--", "-x")[1] == "-- -x\n"


def test_stdin_is_forwarded_and_closed(project: Path) -> None:
    done = cli(project, "exec", "box", "--", "sh", "-c", "tr a-z A-Z; echo done", stdin="hello\nworld\n")
    assert (done.returncode, done.stdout) == (0, "HELLO\nWORLD\ndone\n")


def test_replicas_are_told_apart(project: Path, capfd: Any, monkeypatch: Any) -> None:
    first = run(project, capfd, monkeypatch, "box", "--", "hostname")[1]
    second = run(project, capfd, monkeypatch, "--replica", "2", "box", "--", "hostname")[1]
    assert first.strip() and second.strip() and first != second
    code, _, err = run(project, capfd, monkeypatch, "--replica", "3", "box", "--", "true")
    assert code == 2 and "no running replica 3 (running replicas: 1, 2)" in err


def test_what_cannot_run_is_said(project: Path, capfd: Any, monkeypatch: Any) -> None:
    code, out, err = run(project, capfd, monkeypatch, "box", "--", "no-such-program")
    assert code in (126, 127) and "no-such-program" in out + err
    code, _, err = run(project, capfd, monkeypatch, "nosuch", "--", "true")
    assert code == 2 and "no service 'nosuch'" in err and "Traceback" not in err
    code, _, err = run(project, capfd, monkeypatch, "box")
    assert code == 2 and "say what to run after --" in err


def test_a_terminal_is_allocated_on_a_terminal(project: Path) -> None:
    """Under script(1) the CLI runs on a pseudo-terminal: the command gets one too (and not with -T)."""
    base = [sys.executable, "-m", "multicloud.cli.main", "exec", "box"]
    for extra, expected in (([], "/dev/pts/"), (["-T"], "not a tty")):
        line = shlex.join([*base, *extra, "--", "sh", "-c", "tty; exit 3"])
        done = subprocess.run(["script", "-qec", line, "/dev/null"], cwd=project, capture_output=True, text=True,
                              timeout=120, check=False, env={**os.environ, "TERM": "dumb"})
        assert done.returncode == 3, done.stdout
        assert expected in done.stdout
