"""The local end of `multicloud exec`: the relay forwards input until the command's output ends, then
takes no more of it (a caller's next keystroke stays theirs), and routes stdout and stderr."""

from __future__ import annotations

import io
import os
import time

from multicloud.terminal import STDERR, STDOUT, Terminal, relay


def test_input_is_forwarded_until_the_output_ends_and_no_further() -> None:
    read, write = os.pipe()
    sent: list[bytes] = []
    out, err = io.BytesIO(), io.BytesIO()

    def output():
        os.write(write, b"typed\n")
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        yield STDOUT, b"seen: " + b"".join(sent)
        yield STDERR, b"warning\n"

    with os.fdopen(read, "rb", buffering=0) as stdin:
        relay(Terminal(stdin, out, err), output(), sent.append, lambda: sent.append(b"<eof>"))
        time.sleep(0.3)  # the forwarding thread has seen the end by now
        os.write(write, b"later\n")
        os.set_blocking(read, False)
        assert os.read(read, 100) == b"later\n"  # still there for the caller
    os.close(write)
    assert (out.getvalue(), err.getvalue()) == (b"seen: typed\n", b"warning\n")
    assert sent == [b"typed\n"]


def test_the_end_of_input_is_passed_on() -> None:
    ended: list[bytes] = []
    terminal = Terminal(io.BytesIO(b"abc"), io.BytesIO(), io.BytesIO())
    relay(terminal, iter(()), ended.append, lambda: ended.append(b"EOF"))
    deadline = time.monotonic() + 5
    while len(ended) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ended == [b"abc", b"EOF"]
