"""Progress of an apply: a live rich display on a terminal, plain lines otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from multicloud.contract import Event, EventSink

STYLES = {"done": "green", "failed": "bold red", "retry": "yellow", "blocked": "red", "skipped": "dim"}
FINISHED = ("done", "failed", "blocked", "skipped")


@contextmanager
def progress(stream: TextIO) -> Iterator[EventSink]:
    """Yield an event sink: on a TTY a spinner naming the steps in flight above coloured
    lines; otherwise one plain line per event (for CI logs)."""
    if not stream.isatty():
        yield _plain(stream)
        return
    from rich.console import Console

    console = Console(file=stream, highlight=False)
    running: dict[str, str] = {}
    finished = 0
    with console.status("applying", spinner="dots") as status:

        def sink(event: Event) -> None:
            nonlocal finished
            if event.kind == "start":
                running[event.resource] = event.message
            elif event.kind in FINISHED:
                running.pop(event.resource, None)
                finished += 1
            elif event.resource in running:
                running[event.resource] = event.message
            style = STYLES.get(event.kind, "")
            if event.kind not in ("start", "waiting"):
                console.print(f"[{event.elapsed:6.1f}s] {event.resource}: {event.message}", style=style, markup=False)
            in_flight = ", ".join(sorted(running)) or "finishing"
            status.update(f"{finished} step(s) finished; in progress: {in_flight}")

        yield sink


def _plain(stream: TextIO) -> EventSink:
    def sink(event: Event) -> None:
        stream.write(f"[{event.elapsed:6.1f}s] {event.resource}: {event.kind}: {event.message}\n")
        stream.flush()

    return sink
