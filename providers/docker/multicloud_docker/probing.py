"""A replica's health check run now by the provider itself (the engine's exec), not by the engine."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from multicloud_docker.client import guard

PROBE_POLL = 0.02
"""How often a probe run by `probe_passes` is checked for having ended."""
PROBE_BACKOFF = 0.05
"""Seconds between runs of a shell check inside one probe exec (see probe_passes)."""
PROBE_WINDOW = 2.0
"""How long one probe exec of health() runs its check again while it fails (see probe_passes)."""
ENGINE_SOON = 1.0
"""A check whose interval is at most this many seconds is left to the engine: its first run comes
about as soon as the provider's own would (see `probe_now`)."""


def probe_now(api: Any, ident: str, check: Mapping[str, Any] | None, window: float = 0.0) -> bool:
    """Whether a replica the engine has not passed yet passes its check when run now (and, given a
    window, again every PROBE_BACKOFF until it passes or the window ends: see probe_passes); for
    checks whose interval puts the engine's first run later than ENGINE_SOON (False for the others)."""
    if not check or float(check["interval"]) <= ENGINE_SOON:
        return False
    return probe_passes(api, ident, check, window)


def probe_passes(
    api: Any, ident: str, check: Mapping[str, Any], window: float = 0.0, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Run a replica's health check now, as the engine runs it (exec in the container, as its user),
    and say whether it exited 0 within the check's timeout. Engine 20.10 runs its first check one
    interval after the start (start_interval needs API 1.44), so health() runs it meanwhile: a shell
    check (tcp, http, CMD-SHELL) runs again every PROBE_BACKOFF for up to `window` seconds inside the
    one exec (an exec costs the engine far more than a run of the check), so a service is seen ready
    within PROBE_BACKOFF of being so. A probe still running at its deadline is left to end on its own
    (the engine cannot stop an exec); the script stops starting runs once its window has passed."""
    test = list(check["test"])
    timeout = max(float(check["timeout"]), PROBE_POLL)
    if test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", retrying(test[1], window) if window > PROBE_BACKOFF else test[1]]
    else:
        command, window = test[1:], 0.0
    with guard(f"running the health check in {ident[:12]}"):
        made = api.exec_create(ident, command, stdout=False, stderr=False)
        api.exec_start(made["Id"], detach=True)
        deadline = clock() + window + timeout
        while True:
            info = api.exec_inspect(made["Id"])
            if not info.get("Running"):
                return bool(info.get("ExitCode") == 0)
            if clock() >= deadline:
                return False
            time.sleep(PROBE_POLL)


def retrying(script: str, window: float) -> str:
    """A sh script that runs `script` (in a subshell) until it exits 0, PROBE_BACKOFF apart (a second
    apart where `sleep` takes whole seconds only), for about `window` seconds: at most the runs that fit
    in it, and none begun once `date +%s` says it has passed, so runs that hang to their timeout do not
    go on long after the caller gave up (without `date`, the count alone bounds it); exits 0 or 1. The
    clock counts whole seconds, so its cutoff is a second later than the window rounded up: never before
    the window is over (a cutoff at the next tick cut a 0.2 s window short when it began late in a second)."""
    runs, seconds = max(1, math.ceil(window / PROBE_BACKOFF)), max(1, math.ceil(window)) + 1
    return (  # names of its own (_mc_*): the check runs in a subshell that sees them
        '_mc_now() { _mc_s=$(date +%s 2>/dev/null); case "$_mc_s" in ""|*[!0-9]*) echo 0;; *) echo "$_mc_s";; esac; }; '
        f"_mc_end=$(($(_mc_now) + {seconds})); _mc_n=0; while :; do ( {script}\n) >/dev/null 2>&1 && exit 0; "
        f"_mc_n=$((_mc_n + 1)); [ $_mc_n -ge {runs} ] && exit 1; "
        f"[ $_mc_end -gt {seconds} ] && [ $(_mc_now) -ge $_mc_end ] && exit 1; "
        f"sleep {PROBE_BACKOFF} 2>/dev/null || sleep 1; done"
    )
