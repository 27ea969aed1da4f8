"""`logs --since/--tail` selection rules (multicloud.logwindow) and the CLI on the memory target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multicloud.cli.main import main
from multicloud.errors import UserError
from multicloud.logwindow import last, parse_since

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), (" 1h ", 3600)],
)
def test_durations_count_back_from_now(text: str, ago: float) -> None:
    assert parse_since(text, NOW) == NOW - timedelta(seconds=ago)


def test_iso_times_and_zones() -> None:
    assert parse_since("2026-02-01T10:00:00Z", NOW) == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert parse_since("2026-02-01T10:00:00", NOW) == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert parse_since("2026-02-01T12:00:00+02:00", NOW) == datetime(2026, 2, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "10", "5 minutes", "1h-2m", "99999999999999d"])
def test_anything_else_is_a_clear_error(text: str) -> None:
    with pytest.raises(UserError, match="--since"):
        parse_since(text, NOW)


def test_tail_zero_is_none_and_none_is_all() -> None:
    items = [1, 2, 3]
    assert last(items, None) == [1, 2, 3] and last(items, 0) == [] and last(items, 2) == [2, 3]
    assert last(items, 10) == [1, 2, 3]


def test_cli_on_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MULTICLOUD_FILE", raising=False)
    monkeypatch.delenv("MULTICLOUD_TARGET", raising=False)
    (tmp_path / "multicloud.yaml").write_text(
        "name: logdemo\nservices:\n  web: {image: nginx:1}\n"
        f"targets:\n  mem: {{provider: memory, state_file: {tmp_path / 'state.json'}}}\n"
    )
    assert main(["apply", "--yes"]) == 0
    capsys.readouterr()
    assert main(["logs", "--tail", "0"]) == 0 and capsys.readouterr().out == ""
    assert main(["logs", "--tail", "1"]) == 0 and len(capsys.readouterr().out.splitlines()) == 1
    assert main(["logs", "--since", "5m"]) == 2
    assert "the memory provider cannot apply --since" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["logs", "--tail", "-3"])
    assert main(["status", "--watch", "0"]) == 2 and "more than 0 seconds" in capsys.readouterr().err
