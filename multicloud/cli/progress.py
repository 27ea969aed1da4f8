"""Progress of an apply for people and machines: a live view on a terminal (one line per resource,
a summary line), plain lines for logs, or JSON lines for CI tools. Times run from the apply's start."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the board and the contract load only for an apply that shows progress
    from rich.console import RenderableType

    from multicloud.cli.board import Board, Row
    from multicloud.contract import Event, EventSink

STYLES = {
    "done": "green", "unchanged": "dim", "running": "cyan", "waiting": "yellow", "retrying": "yellow",
    "pending": "dim", "failed": "bold red", "blocked": "red",
}
SYMBOLS = {
    "done": "✓", "unchanged": "=", "waiting": "…", "retrying": "↻", "pending": "·", "failed": "✗", "blocked": "⊘",
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def choose_mode(requested: str | None, stream: TextIO) -> str:
    """The mode asked for, else a live view on a terminal (not TERM=dumb) and plain lines elsewhere."""
    if requested:
        return requested
    return "tty" if stream.isatty() and os.environ.get("TERM") != "dumb" else "plain"


@contextmanager
def progress(stream: TextIO, mode: str | None = None, resources: Sequence[str] = (), title: str = ""
             ) -> Iterator[EventSink]:
    """Yield an event sink that shows the apply on `stream` in `mode` (see choose_mode); the
    resources named are listed from the start, pending. The live view's last frame stays on
    screen; JSON mode ends with a summary line, even when the apply raises."""
    from multicloud.cli.board import Board

    board = Board(resources)
    chosen = choose_mode(mode, stream)
    if chosen == "tty":
        with _live(stream, board, title) as live:
            yield live
        return
    line = _json_line if chosen == "json" else _plain_line

    def write(event: Event) -> None:
        stream.write(line(event, board.update(event), board) + "\n")
        stream.flush()

    try:
        yield write
    finally:
        if chosen == "json":
            summary = {"event": "summary", "elapsed": round(board.now(), 3), "time": _now(), "counts": board.counts()}
            stream.write(json.dumps(summary) + "\n")
            stream.flush()


def _plain_line(event: Event, row: Row, board: Board) -> str:
    """`[  12.3s] service/x: kind: message`, the time since the apply began."""
    return f"[{board.now():6.1f}s] {event.resource}: {event.kind}: {event.message}"


def _json_line(event: Event, row: Row, board: Board) -> str:
    """One event as a JSON object (fields documented in docs/guide.md, "Progress")."""
    return json.dumps({
        "event": event.kind, "resource": event.resource, "state": row.state, "message": event.message,
        "elapsed": round(board.now(), 3), "step_elapsed": round(event.elapsed, 3), "time": _now(),
    })


def _now() -> str:
    """The time now, UTC, ISO 8601 to the millisecond with a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextmanager
def _live(stream: TextIO, board: Board, title: str) -> Iterator[EventSink]:
    """A rich Live view of the board, redrawn 8 times a second (colour off under NO_COLOR)."""
    from rich.console import Console
    from rich.live import Live

    console = Console(file=stream, highlight=False, no_color=bool(os.environ.get("NO_COLOR")), force_terminal=True)

    def sink(event: Event) -> None:
        board.update(event)

    with Live(console=console, get_renderable=lambda: view(board, title), refresh_per_second=8, transient=False):
        yield sink


def view(board: Board, title: str = "") -> RenderableType:
    """The live view: one line per resource (symbol, state, time since the apply began, name, last
    message, cut to the terminal's width) and a summary line."""
    from rich.text import Text

    class View:
        """Rendered afresh at every refresh, at the console's width."""

        def __rich_console__(self, console: Any, options: Any) -> Iterator[Text]:
            """The lines of the view now."""
            now = board.now()
            rows = board.rows()
            width = max((len(r.resource) for r in rows), default=0)
            for row in rows:
                elapsed = row.elapsed(now)
                since = " " * 7 if elapsed is None else f"{elapsed:6.1f}s"
                spinning = SPINNER[int(now * 10) % len(SPINNER)]
                symbol = spinning if row.state == "running" else SYMBOLS.get(row.state, "?")
                style = STYLES.get(row.state, "")
                line = Text.assemble(
                    (symbol, style), " ", (f"{row.state:9}", style), " ", since, " ",
                    (f"{row.resource:{width}}", "bold"), "  ", (row.message, "dim"),
                )
                line.truncate(options.max_width, overflow="ellipsis")
                yield line
            yield Text.assemble((f"{title}: " if title else "", "bold"), board.summary())

    return View()
