"""CPU figures of the IoT stack's containers for the benchmarks: CPU time per container and for every container
on the engine (cgroup v1 or v2), time spent runnable but waiting for a CPU (schedstat), and the machine's busy time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "examples" / "iot-backend" / "tests")]

from stack import DockerStack, docker  # noqa: E402


def cgroup_cpu_ns(*groups: str) -> int | None:
    """CPU time (ns) used so far by the first of these cgroups (paths under the v1 cpuacct or the v2 hierarchy,
    without the hierarchy's root) that can be read; None if none can."""
    for group in groups:
        for path, key in ((f"/sys/fs/cgroup/cpuacct/{group}/cpuacct.usage", None),
                          (f"/sys/fs/cgroup/{group}/cpu.stat", "usage_usec")):
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if key is None:
                return int(text)
            return 1000 * int(next(line.split()[1] for line in text.splitlines() if line.startswith(key)))
    return None


def container_cpu_ns(stack: DockerStack) -> dict[str, int]:
    """CPU time (ns) used so far by each of the stack's containers (cgroup v1 or v2); {} if unreadable."""
    out: dict[str, int] = {}
    for name in stack.containers:
        cid = docker("inspect", "-f", "{{.Id}}", name, check=False)
        used = cgroup_cpu_ns(f"docker/{cid}", f"system.slice/docker-{cid}.scope")
        if used is not None:
            out[name] = used
    return out


def engine_cpu_ns() -> int | None:
    """CPU time (ns) used so far by every container on the engine (the stack's, the publishers', anyone else's):
    the engine's parent cgroup, which the kernel weighs as one task against each busy process outside Docker."""
    return cgroup_cpu_ns("docker")


def runqueue_wait_ns(stack: DockerStack) -> dict[str, int]:
    """Time (ns) the threads of each of the stack's containers have spent so far runnable but waiting for a CPU
    (the kernel's schedstat, summed over the container's threads; threads that ended are not counted)."""
    out: dict[str, int] = {}
    for name in stack.containers:
        cid = docker("inspect", "-f", "{{.Id}}", name, check=False)
        for path in (f"/sys/fs/cgroup/cpu/docker/{cid}/tasks", f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/"
                     "cgroup.threads", f"/sys/fs/cgroup/docker/{cid}/cgroup.threads"):
            try:
                threads = Path(path).read_text().split()
            except OSError:
                continue
            waited = 0
            for tid in threads:
                try:
                    waited += int(Path(f"/proc/{tid}/schedstat").read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
            out[name] = waited
            break
    return out


def cores(stack: DockerStack, before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """Cores each container used between two container_cpu_ns readings `seconds` apart, by short name
    (ingestion-1, db-1, ...)."""
    return {name.removeprefix(f"{stack.prefix}-"): (ns - before.get(name, ns)) / 1e9 / max(seconds, 1e-9)
            for name, ns in after.items()}


def engine_cores(before: int | None, after: int | None, seconds: float) -> float | None:
    """Cores every container on the engine used between two engine_cpu_ns readings; None if unreadable."""
    return None if before is None or after is None else (after - before) / 1e9 / seconds


def host_busy_ns() -> int:
    """CPU time (ns) the whole machine has spent busy (not idle or waiting), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
