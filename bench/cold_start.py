"""CLI cold start against bare Python, in one run: median wall time of N launches each.

Run: .venv/bin/python bench/cold_start.py [--runs 40]
Goal: `multicloud --help` <= 2.5x `python3 -c pass`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def median_ms(command: list[str], runs: int) -> float:
    """Median wall time of `runs` launches, interleaving nothing else."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    cli = os.path.join(os.path.dirname(sys.executable), "multicloud")
    cases = {
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "multicloud --help": [cli, "--help"],
        "multicloud --version": [cli, "--version"],
        "multicloud plan --help": [cli, "plan", "--help"],
        "multicloud schema (imports pydantic)": [cli, "schema"],
    }
    for command in cases.values():  # warm the page cache and .pyc files
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    results = {name: median_ms(command, args.runs) for name, command in cases.items()}
    base = results["python3 -c pass"]
    print(f"cold start, median of {args.runs} launches")
    for name, ms in results.items():
        print(f"  {name:40} {ms:7.1f} ms  {ms / base:5.2f}x")
    ratio = results["multicloud --help"] / base
    print(f"goal: multicloud --help <= 2.5x bare python: {'met' if ratio <= 2.5 else 'NOT met'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
