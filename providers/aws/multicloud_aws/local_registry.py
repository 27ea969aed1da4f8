"""The emulator's container registry: moto's ECR is an API without one, so the emulator runs
a real `docker-registry` (Debian's package) on 127.0.0.1 and points ECR at it — repository
URIs, the authorization token's proxyEndpoint, and deletes — so `docker login`, `push` and
deploy-by-digest run for real. Docker trusts plain-HTTP registries on 127.0.0.0/8."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from multicloud import image_registry as registry_api
from multicloud.testing.registry import INSTALL, Registry, binary, missing, start

__all__ = ["INSTALL", "MISSING", "Registry", "attach", "current", "unavailable_reason"]

MISSING = missing("aws") + " or give the emulator a running one (AwsEmulator(registry='HOST:PORT'))"
_lock = threading.Lock()
_active: list[Registry] = []


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
        registry = start(emulator="aws")
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
