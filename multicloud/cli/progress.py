"""Progress of an apply: coloured lines on a terminal (rich), plain lines otherwise."""

from __future__ import annotations

from typing import TextIO

from multicloud.contract import Event, EventSink

STYLES = {"done": "green", "failed": "bold red", "retry": "yellow", "blocked": "red", "skipped": "dim"}


def progress_sink(stream: TextIO) -> EventSink:
    """Return an event sink writing one line per event to stream."""
    if stream.isatty():
        from rich.console import Console

        console = Console(file=stream, highlight=False)

        def rich_sink(event: Event) -> None:
            style = STYLES.get(event.kind, "")
            text = f"[{event.elapsed:6.1f}s] {event.resource}: {event.message}"
            console.print(text, style=style, markup=False)

        return rich_sink

    def plain_sink(event: Event) -> None:
        stream.write(f"[{event.elapsed:6.1f}s] {event.resource}: {event.kind}: {event.message}\n")
        stream.flush()

    return plain_sink
