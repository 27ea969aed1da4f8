"""Progress of an apply: the board's times run from the apply's start; plain and JSON lines; the live
view, rendered and in a real terminal (tmux), one line per resource and a summary; NO_COLOR."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from multicloud.cli.board import Board
from multicloud.cli.main import main
from multicloud.cli.progress import progress, view
from multicloud.contract import Event

SPEC = """\
name: prog
services:
  web: {image: "registry.example.com/web:1"}
  api: {image: "registry.example.com/api:1", depends_on: [web]}
  worker: {image: "registry.example.com/worker:1", depends_on: [api]}
targets:
  mem: {provider: memory, state_file: "state.json"}
"""
RESOURCES = ["network/prog", "service/web", "service/api", "service/worker"]


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_board_times_resources_from_the_apply_start() -> None:
    clock = Clock()
    board = Board(["service/a", "service/b", "service/c"], clock=clock)
    clock.now += 2.0
    board.update(Event("start", "service/a", "create started"))
    clock.now += 3.0
    board.update(Event("waiting", "service/a", "waiting for health: 0/1", 3.0))
    board.update(Event("retry", "service/b", "attempt 1 failed; retrying", 0.5))  # first seen mid-step
    clock.now += 1.0
    board.update(Event("done", "service/a", "create complete", 4.0))
    board.update(Event("blocked", "service/c", "not attempted"))
    rows = {r.resource: r for r in board.rows()}
    assert (rows["service/a"].state, rows["service/a"].started, rows["service/a"].finished) == ("done", 2.0, 6.0)
    assert (rows["service/b"].state, rows["service/b"].started) == ("retrying", 4.5)
    assert rows["service/b"].elapsed(board.now()) == 6.0  # still going: runs with the clock
    blocked = rows["service/c"]
    assert (blocked.state, blocked.started, blocked.elapsed(6.0)) == ("blocked", None, 6.0)
    assert board.summary() == "3 resources: 1 done, 1 retrying, 1 blocked · 6.0s"
    board.update(Event("progress", "service/d#sweep", "deleting a leftover"))  # not planned: added last
    assert [r.resource for r in board.rows()][-1] == "service/d#sweep"
    assert Board([], clock=clock).summary() == "nothing to change · 0.0s"  # a no-op apply


def test_plain_and_json_lines() -> None:
    out = io.StringIO()
    with progress(out, "plain", ["service/a"]) as sink:
        sink(Event("start", "service/a", "create started"))
    assert out.getvalue().startswith("[   0.0s] service/a: start: create started")
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress(out, "json", ["service/a", "service/b"]) as sink:
        sink(Event("start", "service/a", "create started"))
        sink(Event("failed", "service/a", "boom", 1.5))
        raise RuntimeError("the apply stopped")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["start", "failed", "summary"]  # the summary even on the way out
    assert set(lines[0]) == {"event", "resource", "state", "message", "elapsed", "step_elapsed", "time"}
    assert (lines[1]["state"], lines[1]["step_elapsed"], lines[1]["time"][-1]) == ("failed", 1.5, "Z")
    assert lines[2]["counts"]["failed"] == 1 and lines[2]["counts"]["pending"] == 1


def test_the_view_has_one_line_per_resource_and_a_summary() -> None:
    from rich.console import Console

    clock = Clock()
    board = Board(RESOURCES, clock=clock)
    board.update(Event("start", "network/prog", "create started"))
    clock.now += 1.25
    board.update(Event("done", "network/prog", "create complete", 1.25))
    board.update(Event("waiting", "service/web", "waiting for health: starting " + "x" * 200, 0.5))
    console = Console(file=io.StringIO(), width=90, no_color=True, force_terminal=True)
    console.print(view(board, "prog on mem"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in _strip(text).splitlines()]
    assert len(lines) == 5 and all(len(line) <= 90 for line in lines)  # long messages cut, not wrapped
    assert lines[0].split()[:4] == ["✓", "done", "1.2s", "network/prog"]
    assert lines[1].split()[:4] == ["…", "waiting", "1.2s", "service/web"] and lines[1].endswith("…")
    assert lines[2].split() == ["·", "pending", "service/api"]
    assert lines[4] == "prog on mem: 4 resources: 1 done, 1 waiting, 2 pending · 1.2s"
    assert "\x1b[3" not in text  # no colour under no_color


def test_cli_progress_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "multicloud.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    assert main(["apply", "--yes", "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {e["resource"] for e in events if e["event"] == "done"} == set(RESOURCES)
    assert events[-1]["event"] == "summary" and events[-1]["counts"]["done"] == 4
    assert main(["destroy", "--yes", "--progress", "json", "-o", "json"]) == 0  # events on stderr then
    captured = capsys.readouterr()
    assert json.loads(captured.out)["steps"] and json.loads(captured.err.splitlines()[-1])["event"] == "summary"


def test_the_live_view_in_a_terminal(tmp_path: Path) -> None:
    """In tmux: while the apply waits for health the view shows it (a waiting line, pending ones, the
    summary counting them); its last frame stays, one line per resource and the summary, in colour;
    under NO_COLOR the same without colour."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (scripts/test.sh installs it: MULTICLOUD_APT_EXTRA)")
    (tmp_path / "multicloud.yaml").write_text(SPEC.replace('state_file: "state.json"', 'state_file: "state.json", '
                                                           "health_polls: 4"))
    exe = shutil.which("multicloud", path=os.path.dirname(sys.executable))
    assert exe is not None
    session = f"mc-progress-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", session]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MULTICLOUD_PROGRESS")}
    script = f"{exe} apply --yes; echo FIRST-DONE; NO_COLOR=1 {exe} destroy --yes; echo SECOND-DONE"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "50", "-c", str(tmp_path),
                    "env", "TERM=xterm-256color", "bash", "--norc", "-c", f"{script}; sleep 600"], env=env, check=True)
    try:
        during = _strip(_wait_for(tmux, session, lambda text: "waiting for health" in text and "pending ·" in text))
        screen = _wait_for(tmux, session, lambda text: "SECOND-DONE" in text)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    waiting = [line for line in during.splitlines() if line.startswith("… waiting")]
    assert waiting and "waiting for health: poll" in waiting[0]
    assert any(line.startswith("· pending") for line in during.splitlines())
    assert re.search(r"^prog on mem: 4 resources: .*\bwaiting\b.*\bpending · \d+\.\ds$", during, re.MULTILINE)
    plain = _strip(screen)
    applied, destroyed = plain.split("FIRST-DONE")
    for part, verb in ((applied, "create"), (destroyed, "delete")):
        rows = [line for line in part.splitlines() if line.startswith("✓ done")]
        assert [row.split()[3] for row in rows] == (RESOURCES if verb == "create" else RESOURCES[::-1])
        assert all(row.rstrip().endswith(f"{verb} complete") for row in rows)
        assert any(line.startswith("prog on mem: 4 resources: 4 done · ") for line in part.splitlines())
    colour_apply, colour_destroy = screen.split("FIRST-DONE")
    assert "\x1b[32m" in colour_apply or "\x1b[38;5;2m" in colour_apply  # green done rows
    assert "\x1b[32m" not in colour_destroy and "\x1b[38;5;2m" not in colour_destroy


def _wait_for(tmux: list[str], session: str, ready: Callable[[str], bool], timeout: float = 60.0) -> str:
    """The pane's text with escapes (capture-pane -e) once `ready(text without escapes)`; fails
    showing the screen after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-e", "-t", session], capture_output=True,
                                text=True, check=True).stdout
        if ready(_strip(screen)):
            return screen
        assert time.monotonic() < deadline, f"the terminal never showed what was awaited:\n{_strip(screen)}"
        time.sleep(0.05)


def _strip(screen: str) -> str:
    """The screen's text without escape sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
