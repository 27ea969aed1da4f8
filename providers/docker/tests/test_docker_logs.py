"""`logs --since DURATION --tail N` and `status --watch` against a real engine."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import deployment

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]

COUNTER = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.5; done"


def counter_spec(app: str) -> dict[str, Any]:
    return {
        "name": app,
        "services": {"talk": {"image": "debian:bookworm-slim", "command": ["sh", "-c", COUNTER]}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }


def test_tail_and_since_select_the_history(engine: Any, app: str) -> None:
    deploy = deployment(counter_spec(app))
    assert deploy.apply().ok
    deadline = time.monotonic() + 120
    while len(everything := list(deploy.logs("talk", tail=None))) < 6:  # 3 s or more, as busy as the machine is
        assert time.monotonic() < deadline, "the counter did not write 6 lines"
        time.sleep(0.5)
    assert all(line.timestamp for line in everything)
    assert list(deploy.logs("talk", tail=0)) == []
    last_two = list(deploy.logs("talk", tail=2))
    numbers = [int(line.message.split()[1]) for line in last_two]
    assert len(numbers) == 2 and numbers[1] == numbers[0] + 1 and numbers[0] >= int(everything[-2].message.split()[1])
    cut = everything[-3].timestamp
    assert cut is not None
    recent = list(deploy.logs("talk", tail=None, since=cut))
    assert recent and all(line.timestamp and line.timestamp >= cut for line in recent)
    assert recent[0].message == everything[-3].message
    assert len(list(deploy.logs("talk", tail=1, since=cut))) == 1
    assert list(deploy.logs("talk", tail=None, since=datetime.now(UTC) + timedelta(hours=1))) == []
    # follow with tail 0: only lines written from now on
    followed = deploy.logs("talk", follow=True, tail=0)
    start = datetime.now(UTC) - timedelta(seconds=1)
    first = next(iter(followed))
    assert first.timestamp is not None and first.timestamp >= start
    followed.close()  # type: ignore[attr-defined]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the multicloud CLI in `cwd` as a user would."""
    command = [sys.executable, "-m", "multicloud.cli.main", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_logs_since_tail_and_status_watch(engine: Any, app: str, tmp_path: Path) -> None:
    import yaml

    (tmp_path / "multicloud.yml").write_text(yaml.safe_dump(counter_spec(app)))
    assert cli(tmp_path, "apply", "--yes").returncode == 0
    deadline = time.monotonic() + 120  # the counter writes a line every 0.5 s or more (a busy machine: more)
    while len(numbers(cli(tmp_path, "logs", "talk").stdout)) < 5:
        assert time.monotonic() < deadline, "the counter did not write 5 lines"
        time.sleep(0.5)
    none = cli(tmp_path, "logs", "--tail", "0")
    assert none.returncode == 0 and none.stdout == ""
    two = cli(tmp_path, "logs", "talk", "--tail", "2")
    assert two.returncode == 0 and len(two.stdout.splitlines()) == 2
    (last,) = numbers(cli(tmp_path, "logs", "talk", "--tail", "1").stdout)
    recent = cli(tmp_path, "logs", "--since", "1s")
    # lines are 0.5 s or more apart: `last - 3` was written 1.5 s or more before `last`, which came before
    # this call began, so it is older than a second; (on a busy machine the last second may hold none)
    assert recent.returncode == 0 and all(n >= last - 2 for n in numbers(recent.stdout)), (last, recent.stdout)
    assert len(cli(tmp_path, "logs", "--since", "1h", "--tail", "100").stdout.splitlines()) >= 5
    bad = cli(tmp_path, "logs", "--since", "last tuesday")
    assert bad.returncode == 2 and "not a duration" in bad.stderr and "Traceback" not in bad.stderr
    command = [sys.executable, "-m", "multicloud.cli.main", "status", "--watch", "0.5"]
    watch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert watch.stdout is not None
    out = ""
    for line in watch.stdout:  # each frame is flushed: stop once two have come, however slowly
        out += line
        if out.count(f"{app} on local at ") >= 2 and line.startswith("talk "):
            break
    watch.send_signal(2)
    out += watch.communicate(timeout=30)[0]
    assert watch.returncode == 0
    assert out.count(f"{app} on local at ") >= 2 and out.count("talk ") >= 2 and "running" in out


def numbers(shown: str) -> list[int]:
    """The counter's line numbers in what `multicloud logs` printed."""
    return [int(found) for found in re.findall(r"\bline (\d+)", shown)]
