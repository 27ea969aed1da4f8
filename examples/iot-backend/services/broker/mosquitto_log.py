"""Watches mosquitto's log (copied to stdout): counts config reloads and spots the first subscriber of a filter."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable


class LogWatch:
    """Notices mosquitto running, counts "Reloading config." lines and spots a SUBSCRIBE to `filter_`."""

    def __init__(self, filter_: str = "") -> None:
        self.reloads = 0
        self.filter = filter_
        self.running = threading.Event()  # its signal handlers are installed: SIGHUP no longer kills it
        self.subscribed = threading.Event()
        self._cond = threading.Condition()

    def pump(self, lines: Iterable[str]) -> None:
        """Copy mosquitto's output line by line, watching it (until mosquitto closes its stdout)."""
        for line in lines:
            sys.stdout.write(line)
            sys.stdout.flush()
            if not self.running.is_set() and "mosquitto version" in line and line.rstrip().endswith(" running"):
                self.running.set()
            elif "Reloading config." in line:
                with self._cond:
                    self.reloads += 1
                    self._cond.notify_all()
            elif self.filter and line.rstrip().endswith(f" {self.filter}"):
                # "<time>: <client id> <qos> <filter>": only service accounts can be connected while
                # devices are held back, so this is an ingestion replica's subscription
                self.subscribed.set()

    def wait_reload_beyond(self, seen: int, timeout: float) -> bool:
        """Wait until more than `seen` reloads were logged; False at the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.reloads > seen, timeout)
