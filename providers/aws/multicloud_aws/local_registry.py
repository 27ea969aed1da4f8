"""The emulator's container registry: moto's ECR is an API without one, so the emulator runs
a real `docker-registry` (Debian's package) on 127.0.0.1 and points ECR at it — repository
URIs, the authorization token's proxyEndpoint, and deletes — so `docker login`, `push` and
deploy-by-digest run for real. Docker trusts plain-HTTP registries on 127.0.0.0/8."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicloud.errors import BackendUnavailableError
from multicloud_aws import registry_api

INSTALL = "apt-get install -y docker-registry (Debian/Ubuntu; it provides /usr/bin/docker-registry)"
MISSING = ("the aws emulator has no container registry to push `build:` images to: Debian's docker-registry is "
           f"not installed; install it ({INSTALL}) or give the emulator a running one "
           "(AwsEmulator(registry='HOST:PORT'))")
_LISTENING = re.compile(rb"listening on (\S+:\d+)")
_lock = threading.Lock()
_active: list[Registry] = []


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


def unavailable_reason() -> str | None:
    """Why the emulator cannot start a registry (how to install it), or None when it can."""
    return None if binary() else MISSING


def current() -> Registry | None:
    """The registry ECR points at now (the latest attached), or None."""
    with _lock:
        return _active[-1] if _active else None


def attach(option: str | None) -> tuple[Registry | None, Callable[[], None]]:
    """Point ECR at a registry: "auto" starts one when installed, "start" requires one, None
    none, else HOST:PORT or http(s)://HOST:PORT of a running one; returns it and a detach."""
    if option is None or (option == "auto" and binary() is None):
        return None, lambda: None
    if option in ("auto", "start"):
        registry = start()
    else:
        scheme, _, address = option.rpartition("://")
        registry = Registry(address.rstrip("/"), scheme or "http")
    with _lock:
        _active.append(registry)

    def detach() -> None:
        with _lock:
            if registry in _active:
                _active.remove(registry)
        registry.stop()

    return registry, detach


def start(timeout: float = 20.0) -> Registry:
    """Run docker-registry on 127.0.0.1:<free port> with temporary storage and no auth."""
    path = binary()
    if path is None:
        raise BackendUnavailableError(MISSING, hint=INSTALL)
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


# --- moto patches (installed by multicloud_aws.gaps) --------------------------------------


def repository_init(original: Any) -> Any:
    """A new ECR repository's URI is HOST:PORT/NAME at the current registry."""

    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        registry = current()
        if registry is not None:
            self.uri = f"{registry.address}/{self.name}"

    return patched


def authorization_token(original: Any) -> Any:
    """get_authorization_token answers with the current registry as proxyEndpoint."""

    def patched(self: Any) -> Any:
        from moto.core.exceptions import ServiceException

        registry = current()
        if registry is None:
            raise type("RegistryUnavailable", (ServiceException,), {"code": "EmulatorRegistryUnavailable"})(MISSING)
        result = original(self)
        for entry in result.result["authorizationData"]:
            entry["proxyEndpoint"] = registry.endpoint
        return result

    return patched


def delete_repository(original: Any) -> Any:
    """Deleting an ECR repository deletes its images from the current registry too."""

    def patched(self: Any, repository_name: str, *args: Any, **kwargs: Any) -> Any:
        deleted = original(self, repository_name, *args, **kwargs)
        registry = current()
        if registry is not None and str(getattr(deleted, "uri", "")).startswith(f"{registry.address}/"):
            with contextlib.suppress(OSError):  # gone from ECR already; leftover blobs are only disk
                _delete_images(registry.endpoint, repository_name)
        return deleted

    return patched


def _delete_images(endpoint: str, name: str) -> None:
    """Delete every tagged manifest of a repository at a registry."""
    for tag in registry_api.tags(endpoint, name):
        digest = registry_api.manifest_digest(endpoint, name, tag)
        if digest:
            registry_api.delete_manifest(endpoint, name, digest)
