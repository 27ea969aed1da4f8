"""multicloud's docker provider against docker-compose, same services and images, warm.

Four services (store with a volume, api x2, web with a public port, worker), health checks
on all, images prebuilt (the provider tests' app image). Each round times, for both tools,
run as CLIs: cold `up` until every container is healthy, a no-op re-run, and teardown
(volumes kept). Prints medians and the ratios multicloud / compose.

Run: .venv/bin/python bench/local_vs_compose.py [--rounds 3]
Needs a Docker engine (scripts/setup-engine.sh) and Debian's docker-compose (1.29).
Goal: up <= 1.0x compose, no-op <= 0.5x compose.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run(command: list[str], cwd: Path) -> float:
    """Run a command to completion; return its wall time; raise with its output on failure.
    Bytecode writing is on (as for users) even if this shell disables it: Debian's compose
    ships compiled bytecode, so the race would otherwise time our compiler, not our code."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    compose = shutil.which("docker-compose")
    if compose is None:
        raise SystemExit("docker-compose is not installed (apt-get install docker-compose)")
    ensure_images()
    cli = str(Path(sys.executable).parent / "multicloud")
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    (work / "multicloud.yaml").write_text(json.dumps(MULTICLOUD_SPEC))
    (work / "docker-compose.yml").write_text(json.dumps(compose_file()))
    os.environ["MULTICLOUD_STATE_DIR"] = str(work / "state")
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
    run([cli, "plan", "--target", "local"], work)  # warm up: bytecode, page cache
    run([compose, "-p", "bench-dc", "config", "-q"], work)
    try:
        for _ in range(args.rounds):
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
        shutil.rmtree(work, ignore_errors=True)
    print(f"local_vs_compose: 4 services / 5 containers, {args.rounds} round(s), medians in seconds")
    for step in ("up", "no-op", "down"):
        ours = statistics.median(times[("multicloud", step)])
        theirs = statistics.median(times[("compose", step)])
        print(f"  {step:6} multicloud {ours:6.2f}  compose {theirs:6.2f}  ratio {ours / theirs:5.2f}x")


if __name__ == "__main__":
    main()
