"""multicloud's docker provider against docker-compose, same services and images, warm.

Two races, both tools run as CLIs, images prebuilt (the provider tests' app image):
- small (issue 15): web (public port, a tcp health check with the default 10 s interval) and two
  workers. Per round: from nothing (multicloud's apply returns once web is healthy; compose's
  `up -d` does not wait, so its figure is `up -d` plus the time until web really answers HTTP,
  polled every 20 ms), then --noops interleaved no-op runs of each (`apply` / `up -d` on the
  running stack), wall and CPU time; then teardown.
- stack: four services (store with a volume, api x2, web, worker), health checks on all at 0.5 s;
  cold `up` until every container is healthy, a no-op re-run, and teardown (volumes kept).
Prints medians and the ratios multicloud / compose.

Run: .venv/bin/python bench/local_vs_compose.py [--rounds 3] [--noops 10] [--only small|stack]
Needs a Docker engine (scripts/setup-engine.sh) and Debian's docker-compose (1.29).
Goals: no-op <= 0.5x compose and <= 150 ms CPU; from nothing <= compose `up -d` + web's time to
answer + 0.5 s; stack up <= 1.0x compose.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "providers" / "docker" / "tests" / "images"
APP_IMAGE = "multicloud-test/app:1"
CHECK = {"interval": "0.5s", "timeout": "3s", "retries": 40}

MULTICLOUD_SPEC = {
    "name": "bench-mc",
    "services": {
        "store": {
            "image": APP_IMAGE,
            "env": {"SERVICE_NAME": "store"},
            "volumes": ["data:/data"],
            "healthcheck": {"tcp": 8080, **CHECK},
        },
        "api": {
            "image": APP_IMAGE,
            "replicas": 2,
            "env": {"SERVICE_NAME": "api", "UPSTREAM": "http://store:8080"},
            "depends_on": ["store"],
            "healthcheck": {"tcp": 8080, **CHECK},
        },
        "web": {
            "image": APP_IMAGE,
            "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}],
            "env": {"SERVICE_NAME": "web", "UPSTREAM": "http://api:8080/upstream"},
            "depends_on": ["api"],
            "healthcheck": {"tcp": 8080, **CHECK},
        },
        "worker": {
            "image": APP_IMAGE,
            "env": {"SERVICE_NAME": "worker", "UPSTREAM": "http://api:8080"},
            "depends_on": ["api"],
            "healthcheck": {"tcp": 8080, **CHECK},
        },
    },
    "volumes": {"data": {}},
    "targets": {"local": {"provider": "docker", "publish": {"web.http": 28181}}},
}


def compose_file() -> dict[str, object]:
    """The same services for docker-compose 1.29 (file format 2.4: healthchecks, scale)."""
    check = {
        "test": ["CMD-SHELL", "bash -c ': </dev/tcp/127.0.0.1/8080'"],
        "interval": "0.5s",
        "timeout": "3s",
        "retries": 40,
    }
    healthy = {"condition": "service_healthy"}
    limits = {"cpus": 0.25, "mem_limit": "512m", "init": True}  # multicloud's defaults, for a fair race
    return {
        "version": "2.4",
        "services": {
            "store": {
                "image": APP_IMAGE,
                "environment": {"SERVICE_NAME": "store"},
                "volumes": ["data:/data"],
                "healthcheck": check,
                **limits,
            },
            "api": {
                "image": APP_IMAGE,
                "scale": 2,
                "environment": {"SERVICE_NAME": "api", "UPSTREAM": "http://store:8080"},
                "depends_on": {"store": healthy},
                "healthcheck": check,
                **limits,
            },
            "web": {
                "image": APP_IMAGE,
                "ports": ["28182:8080"],
                "depends_on": {"api": healthy},
                "healthcheck": check,
                "environment": {"SERVICE_NAME": "web", "UPSTREAM": "http://api:8080/upstream"},
                **limits,
            },
            "worker": {
                "image": APP_IMAGE,
                "depends_on": {"api": healthy},
                "healthcheck": check,
                **limits,
                "environment": {"SERVICE_NAME": "worker", "UPSTREAM": "http://api:8080"},
            },
        },
        "volumes": {"data": {}},
    }


def load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes (a busy machine slows both tools, not alike)."""
    return "/".join(f"{figure:.1f}" for figure in os.getloadavg())


def run(command: list[str], cwd: Path) -> float:
    """Run a command to completion; return its wall time; raise with its output on failure."""
    return measured(command, cwd)[0]


def measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a command to completion; return its wall and CPU time (user + system, its children's
    included); raise with its output on failure. Bytecode writing is on (as for users) even if
    this shell disables it: Debian's compose ships compiled bytecode, so the race would
    otherwise time our compiler, not our code."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def answers(port: int, timeout: float = 60) -> float:
    """Poll http://127.0.0.1:port/ every 20 ms until it answers 200; return when (perf_counter)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as reply:
                if reply.status == 200:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"nothing answered on port {port} after {timeout}s")


def wait_healthy(label: str, count: int, timeout: float = 120) -> None:
    """Poll the engine until `count` containers with the label are healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["docker", "ps", "--filter", f"label={label}", "--format", "{{.Status}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if len(out) == count and all("(healthy)" in line for line in out):
            return
        time.sleep(0.1)
    raise SystemExit(f"containers labelled {label} not healthy after {timeout}s")


def ensure_images() -> None:
    """Build the shared test images when missing (from the local debian:bookworm-slim)."""
    for tag, context in (("multicloud-test/python3:1", IMAGES / "base"), (APP_IMAGE, IMAGES / "app")):
        present = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0
        if not present:
            subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True)


SMALL_PORTS = (28183, 28184)


def small_files(work: Path) -> None:
    """The small race's spec and compose file, in work/small."""
    web = {"image": APP_IMAGE, "env": {"SERVICE_NAME": "web"}, "healthcheck": {"tcp": 8080}}
    worker = {"image": APP_IMAGE, "replicas": 2, "env": {"SERVICE_NAME": "worker"}}
    spec = {
        "name": "bench-small",
        "services": {"web": {**web, "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}]},
                     "worker": worker},
        "targets": {"local": {"provider": "docker", "publish": {"web.http": SMALL_PORTS[0]}}},
    }
    limits = {"cpus": 0.25, "mem_limit": "512m", "init": True}
    check = {"test": ["CMD-SHELL", "bash -c ': </dev/tcp/127.0.0.1/8080'"], "interval": "10s"}
    compose = {
        "version": "2.4",
        "services": {
            "web": {"image": APP_IMAGE, "ports": [f"{SMALL_PORTS[1]}:8080"], "environment": {"SERVICE_NAME": "web"},
                    "healthcheck": check, **limits},
            "worker": {"image": APP_IMAGE, "scale": 2, "environment": {"SERVICE_NAME": "worker"}, **limits},
        },
    }
    (work / "small").mkdir()
    (work / "small" / "multicloud.yaml").write_text(json.dumps(spec))
    (work / "small" / "docker-compose.yml").write_text(json.dumps(compose))


def race_small(cli: str, compose: str, work: Path, rounds: int, noops: int) -> None:
    """The small race (see the module's docstring); prints its figures."""
    here = work / "small"
    mc_apply = [cli, "apply", "--target", "local", "--yes"]
    dc_up = [compose, "-p", "bench-small-dc", "up", "-d"]
    cold: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    load_then = load()
    try:
        for _ in range(rounds):
            cold.setdefault("multicloud", []).append(run(mc_apply, here))
            start = time.perf_counter()
            cold.setdefault("compose up -d", []).append(run(dc_up, here))
            cold.setdefault("compose answers", []).append(answers(SMALL_PORTS[1]) - start)
            answers(SMALL_PORTS[0])
            for _ in range(noops):  # interleaved: the machine's load falls on both alike
                for tool, command in (("multicloud", mc_apply), ("compose", dc_up)):
                    seconds, used = measured(command, here)
                    wall.setdefault(tool, []).append(seconds)
                    cpu.setdefault(tool, []).append(used)
            run([cli, "destroy", "--target", "local", "--yes"], here)
            run([compose, "-p", "bench-small-dc", "down"], here)
    finally:
        subprocess.run([cli, "destroy", "--target", "local", "--yes"], cwd=here, capture_output=True, check=False)
        subprocess.run([compose, "-p", "bench-small-dc", "down"], cwd=here, capture_output=True, check=False)
    med = {k: statistics.median(v) for k, v in cold.items()}
    bound = med["compose answers"] + 0.5
    print(f"small: web (health check, 10 s interval) + 2 workers, {rounds} round(s), medians in seconds; "
          f"machine load {load_then} -> {load()}")
    print(f"  from nothing  multicloud {med['multicloud']:6.2f}  compose up -d {med['compose up -d']:6.2f}, "
          f"web answers at {med['compose answers']:6.2f}")
    verdict = "met" if med["multicloud"] <= bound else "NOT met"
    print(f"  goal: from nothing <= compose up -d + time to answer + 0.5 s = {bound:.2f}: {verdict}")
    each = list(zip(cold["multicloud"], cold["compose answers"], strict=True))
    print(f"  each round (multicloud / compose's answer + 0.5 s): "
          f"{', '.join(f'{ours:.2f}/{theirs + 0.5:.2f}' for ours, theirs in each)}; "
          f"met in {sum(ours <= theirs + 0.5 for ours, theirs in each)} of {len(each)}")
    ours, theirs = statistics.median(wall["multicloud"]), statistics.median(wall["compose"])
    ours_cpu, theirs_cpu = statistics.median(cpu["multicloud"]), statistics.median(cpu["compose"])
    print(f"  no-op ({len(wall['multicloud'])} interleaved runs each)  multicloud {ours:6.3f} s wall "
          f"{ours_cpu * 1000:5.0f} ms CPU  compose {theirs:6.3f} s wall {theirs_cpu * 1000:5.0f} ms CPU  "
          f"ratio {ours / theirs:5.2f}x wall {ours_cpu / theirs_cpu:5.2f}x CPU")
    verdict = "met" if ours <= 0.5 * theirs and ours_cpu <= 0.150 else "NOT met"
    print(f"  goal: no-op <= 0.5x compose and <= 150 ms CPU: {verdict}")


def race_stack(cli: str, compose: str, work: Path, rounds: int) -> None:
    """The four-service race (see the module's docstring); prints its figures."""
    (work / "multicloud.yaml").write_text(json.dumps(MULTICLOUD_SPEC))
    (work / "docker-compose.yml").write_text(json.dumps(compose_file()))
    mc = {
        "up": [cli, "apply", "--target", "local", "--yes"],
        "no-op": [cli, "apply", "--target", "local", "--yes"],
        "down": [cli, "destroy", "--target", "local", "--yes"],
    }
    dc = {
        "up": [compose, "-p", "bench-dc", "up", "-d"],
        "no-op": [compose, "-p", "bench-dc", "up", "-d"],
        "down": [compose, "-p", "bench-dc", "down"],
    }
    times: dict[tuple[str, str], list[float]] = {}
    load_then = load()
    run([cli, "plan", "--target", "local"], work)  # warm up: bytecode, page cache
    run([compose, "-p", "bench-dc", "config", "-q"], work)
    try:
        for _ in range(rounds):
            for tool, commands, label in (
                ("multicloud", mc, "multicloud.app=bench-mc"),
                ("compose", dc, "com.docker.compose.project=bench-dc"),
            ):
                for step, command in commands.items():
                    start = time.perf_counter()
                    run(command, work)
                    if step == "up":  # compose returns before its containers are healthy
                        wait_healthy(label, 5)
                    times.setdefault((tool, step), []).append(time.perf_counter() - start)
    finally:
        subprocess.run(mc["down"], cwd=work, capture_output=True, check=False)
        subprocess.run([compose, "-p", "bench-dc", "down", "-v"], cwd=work, capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", "-f", "bench-mc_data"], capture_output=True, check=False)
    print(f"stack: 4 services / 5 containers, {rounds} round(s), medians in seconds; "
          f"machine load {load_then} -> {load()}")
    for step in ("up", "no-op", "down"):
        ours = statistics.median(times[("multicloud", step)])
        theirs = statistics.median(times[("compose", step)])
        print(f"  {step:6} multicloud {ours:6.2f}  compose {theirs:6.2f}  ratio {ours / theirs:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noops", type=int, default=10, help="interleaved no-op runs per round (small race)")
    parser.add_argument("--only", choices=("small", "stack"))
    args = parser.parse_args()
    compose = shutil.which("docker-compose")
    if compose is None:
        raise SystemExit("docker-compose is not installed (apt-get install docker-compose)")
    ensure_images()
    cli = str(Path(sys.executable).parent / "multicloud")
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    os.environ["MULTICLOUD_STATE_DIR"] = str(work / "state")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # a compiled-form cache of its own
    try:
        if args.only in (None, "small"):
            small_files(work)
            race_small(cli, compose, work, args.rounds, args.noops)
        if args.only in (None, "stack"):
            race_stack(cli, compose, work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
