"""A real local container registry for the emulators: Debian's `docker-registry` on 127.0.0.1 with
temporary storage. The AWS emulator points ECR at one; the Azure and Google emulators put one behind
their login flows (multicloud.testing.registry_front). Docker trusts registries on 127.0.0.0/8
without TLS verification."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from multicloud.errors import BackendUnavailableError

INSTALL = "apt-get install -y docker-registry (Debian/Ubuntu; it provides /usr/bin/docker-registry)"
_LISTENING = re.compile(rb"listening on (\S+:\d+)")


def missing(emulator: str) -> str:
    """Why an emulator has no registry to push `build:` images to, and how to install one."""
    return (f"the {emulator} emulator has no container registry to push `build:` images to: Debian's "
            f"docker-registry is not installed; install it ({INSTALL})")


@dataclass
class Registry:
    """A registry ECR points at: `address` (HOST:PORT) over `scheme`, and how to stop it."""

    address: str
    scheme: str = "http"
    process: subprocess.Popen[bytes] | None = None
    directory: str | None = None
    stopped: bool = field(default=False, repr=False)

    @property
    def endpoint(self) -> str:
        """The registry's base URL, e.g. http://127.0.0.1:5000."""
        return f"{self.scheme}://{self.address}"

    def stop(self) -> None:
        """Stop the process this module started (if any) and delete its storage."""
        if self.stopped:
            return
        self.stopped = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def binary() -> str | None:
    """The docker-registry executable, or None when the package is not installed."""
    found = shutil.which("docker-registry")
    if found:
        return found
    return "/usr/bin/docker-registry" if os.access("/usr/bin/docker-registry", os.X_OK) else None


def unavailable_reason(emulator: str) -> str | None:
    """Why an emulator cannot start a registry (how to install it), or None when it can."""
    return None if binary() else missing(emulator)


def start(timeout: float = 20.0, *, emulator: str = "local") -> Registry:
    """Run docker-registry on 127.0.0.1:<free port> with temporary storage and no auth."""
    path = binary()
    if path is None:
        raise BackendUnavailableError(missing(emulator), hint=INSTALL)
    directory = tempfile.mkdtemp(prefix="multicloud-registry-")
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": f"{directory}/storage"}, "delete": {"enabled": True}},
        "http": {"addr": "127.0.0.1:0", "secret": os.urandom(16).hex()},
    }
    Path(directory, "config.yml").write_text(json.dumps(config))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    log_path = Path(directory, "registry.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen([path, "serve", f"{directory}/config.yml"], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    registry = Registry("", process=process, directory=directory)
    atexit.register(registry.stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = _LISTENING.search(log_path.read_bytes())
        if found and _answers(f"http://{found.group(1).decode()}"):
            registry.address = found.group(1).decode()
            return registry
        time.sleep(0.05)
    tail = log_path.read_bytes().decode(errors="replace").strip().splitlines()[-5:]
    registry.stop()
    raise BackendUnavailableError(f"docker-registry did not start within {timeout:.0f} s: {' / '.join(tail)}")


def _answers(endpoint: str) -> bool:
    """Whether GET /v2/ answers 200."""
    try:
        with urllib.request.urlopen(f"{endpoint}/v2/", timeout=2) as response:  # noqa: S310
            return int(response.status) == 200
    except OSError:
        return False


