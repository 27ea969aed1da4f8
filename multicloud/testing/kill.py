"""Kill trials: `multicloud apply` run as a real subprocess, killed with SIGKILL at a point an
emulator chooses, then applied again; the next apply must converge.

A provider's test starts the CLI through `killed_apply`, handing the emulator a callback
(`arm`) that receives the child's pid and kills it from the emulator's side at the chosen
call, so the kill lands exactly between two API calls (e.g. after a target group was made
and before its listener). `recover` then runs `apply` and `plan --detailed-exitcode`.
`run_trial` does both. `trial_count()` is how many trials a test runs: 5 by default (CI), MULTICLOUD_KILL_TRIALS
to change it (bench/kill_trials.py runs 20 per provider).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLI = (sys.executable, "-m", "multicloud.cli.main")
TRIALS_ENV = "MULTICLOUD_KILL_TRIALS"


def trial_count(default: int = 5) -> int:
    """How many kill trials to run: MULTICLOUD_KILL_TRIALS, else `default`."""
    value = os.environ.get(TRIALS_ENV, "")
    return int(value) if value.isdigit() else default


@dataclass(frozen=True)
class Trial:
    """One kill trial: where the kill was aimed and what the apply after it did."""

    point: str
    killed: bool
    reapply_exit: int
    plan_exit: int
    seconds: float
    output: str = ""

    @property
    def converged(self) -> bool:
        """The re-apply succeeded and the plan after it is empty."""
        return self.reapply_exit == 0 and self.plan_exit == 0

    def __str__(self) -> str:
        how = "killed" if self.killed else "finished before the kill point"
        result = "converged" if self.converged else f"apply exit {self.reapply_exit}, plan exit {self.plan_exit}"
        return f"{self.point}: {how}; re-apply {result} ({self.seconds:.1f}s)"


def killed_apply(spec_file: Path, target: str, env: Mapping[str, str], arm: Callable[[int], None],
                 timeout: float = 300) -> bool:
    """Run `multicloud apply --yes` and hand its pid to `arm`, which makes the emulator kill
    it with SIGKILL at its chosen call; return whether it died that way (False: it finished
    first). A child still running after `timeout` is killed and reported as a failure."""
    process = subprocess.Popen(
        [*CLI, "apply", "-f", str(spec_file), "-t", target, "--yes"],
        env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    arm(process.pid)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the apply to be killed was still running after {timeout:.0f}s") from None
    return process.returncode == -signal.SIGKILL


def kill(pid: int) -> None:
    """SIGKILL a child and wait until it is gone (called from the emulator's side)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # a zombie counts as dead: it makes no more calls
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.005)


def recover(spec_file: Path, target: str, env: Mapping[str, str], *, point: str, killed: bool,
            started: float, timeout: float = 300) -> Trial:
    """Apply again after a kill, then plan with --detailed-exitcode; return the trial."""
    base = [*CLI]
    reapply = subprocess.run([*base, "apply", "-f", str(spec_file), "-t", target, "--yes"], env=dict(env),
                             capture_output=True, text=True, timeout=timeout, check=False)
    plan = subprocess.run([*base, "plan", "-f", str(spec_file), "-t", target, "--detailed-exitcode"],
                          env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    output = ""
    if reapply.returncode or plan.returncode:
        output = (reapply.stdout + reapply.stderr)[-3000:] + "\n--- plan ---\n" + (plan.stdout + plan.stderr)[-3000:]
    return Trial(point, killed, reapply.returncode, plan.returncode, time.monotonic() - started, output)


def run_trial(spec_file: Path, target: str, env: Mapping[str, str], *, point: str, arm: Callable[[int], None],
              disarm: Callable[[], None]) -> Trial:
    """One trial: the killed apply (`arm` gets its pid; `disarm` runs once it is over), then `recover`."""
    started = time.monotonic()
    try:
        killed = killed_apply(spec_file, target, env, arm)
    finally:
        disarm()
    return recover(spec_file, target, env, point=point, killed=killed, started=started)
