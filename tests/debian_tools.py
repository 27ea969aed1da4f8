"""Real tools from Debian packages for probe tests: `apt-get download` + `dpkg-deb -x`, nothing installed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def unpack(into: Path, *packages: str) -> dict[str, tuple[Path, str]]:
    """Download each package's .deb into `into` (one apt-get call) and unpack it to into/NAME;
    return NAME -> (that root, sha256 of the .deb). Skips the test, saying why, where apt-get or
    the mirror is unavailable."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip(f"{', '.join(packages)}: apt-get and dpkg-deb are needed to fetch them (a Debian machine)")
    into.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        ["apt-get", "download", *packages], cwd=into, capture_output=True, text=True, timeout=300, check=False
    )
    unpacked = {}
    for package in packages:
        debs = sorted(into.glob(f"{package}_*.deb"))
        if fetched.returncode != 0 or not debs:
            pytest.skip(f"apt-get download {package} failed: {fetched.stderr.strip()[-300:]}")
        root = into / package
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True, timeout=60)
        unpacked[package] = (root, hashlib.sha256(debs[0].read_bytes()).hexdigest())
    return unpacked


def busybox_farm(busybox: Path, into: Path) -> Path:
    """A directory holding one link to `busybox` per applet (sh included): PATH for a BusyBox-only shell."""
    into.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=30)
    for applet in listed.stdout.split():
        os.symlink(busybox, into / applet)
    return into


def busybox_rootfs(busybox: Path, into: Path) -> Path:
    """A root filesystem holding only /bin/busybox and its applet links at their usual paths."""
    (into / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, into / "bin" / "busybox")
    listed = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True, timeout=30)
    for path in listed.stdout.split():
        link = into / path
        if path == "bin/busybox" or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    return into
