"""The broker agent's reading of mosquitto's log, without Docker: reloads counted, the subscriber spotted."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "broker"))

from mosquitto_log import LogWatch

FILTER = "$share/ingestion/devices/+/telemetry"


def test_reloads_are_counted_and_waited_for() -> None:
    watch = LogWatch(FILTER)
    assert not watch.wait_reload_beyond(0, 0.01)
    later = threading.Timer(0.05, watch.pump, args=(["2026-01-01T00:00:00: Reloading config.\n"],))
    later.start()
    assert watch.wait_reload_beyond(0, 5.0)
    later.join()
    assert watch.reloads == 1


def test_only_a_subscription_to_the_filter_releases_the_hold() -> None:
    watch = LogWatch(FILTER)
    watch.pump([
        "2026-01-01T00:00:00: New client connected from 10.0.0.5:4242 as dev-1 (p5, c1, k30, u'dev-1').\n",
        "2026-01-01T00:00:00: dev-1 1 devices/dev-1/commands\n",
        f"2026-01-01T00:00:00: someone 1 {FILTER}/extra\n",
    ])
    assert not watch.subscribed.is_set()
    watch.pump([f"2026-01-01T00:00:01: ingestion-ingestion-1 1 {FILTER}\n"])
    assert watch.subscribed.is_set()


def test_without_a_filter_nothing_is_watched_for() -> None:
    watch = LogWatch("")
    watch.pump([f"2026-01-01T00:00:01: ingestion-1 1 {FILTER}\n"])
    assert not watch.subscribed.is_set()


def test_running_is_noticed_only_from_mosquittos_own_line() -> None:
    """SIGHUP kills mosquitto until its handler is installed, which it logs as "running"."""
    watch = LogWatch(FILTER)
    watch.pump(["2026-01-01T00:00:00: mosquitto version 2.0.11 starting\n",
                "2026-01-01T00:00:00: Opening websockets listen socket on port 8080.\n"])
    assert not watch.running.is_set()
    watch.pump(["2026-01-01T00:00:00: mosquitto version 2.0.11 running\n"])
    assert watch.running.is_set()
