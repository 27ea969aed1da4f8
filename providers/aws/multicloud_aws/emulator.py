"""The `aws` emulator: moto with multicloud's gaps filled (see multicloud_aws.gaps), served
over HTTP (`AwsEmulator().start()`, `multicloud emulate aws`) or in process (`in_process()`).

moto is imported only when an emulator starts; install it with `multicloud-aws[emulator]`.
ECR pushes go to a real local registry (multicloud_aws.local_registry: Debian's docker-registry).
With `run=True` (what `multicloud emulate aws` and the `aws_emulator` fixture use) and a reachable
Docker engine, ECS services run their tasks as real containers (multicloud_aws.dataplane).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from multicloud.contract import RunningEmulator
from multicloud.errors import BackendUnavailableError
from multicloud_aws.local_registry import MISSING, Registry

REGION = "us-east-1"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
"""Credentials and region a client of the emulator uses (moto accepts any)."""


def _require_moto() -> None:
    try:
        import moto  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            "the aws emulator needs moto", hint="pip install 'multicloud-aws[emulator]'") from exc


class AwsEmulator:
    """Registered under `multicloud.emulators` as `aws`."""

    def __init__(self, registry: str | None = "auto", *, run: bool = False) -> None:
        """`registry` behind ECR: "auto" (start docker-registry when installed), "start", None or HOST:PORT;
        `run`: run ECS services' tasks as containers when a Docker engine is reachable."""
        self.registry = registry
        self.run = run
        self.data_plane: Any = None
        """The started data plane (multicloud_aws.dataplane.EcsDataPlane), or None."""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
        """Serve moto (gaps filled) on host:port in a background thread; port 0 picks one."""
        _require_moto()
        from moto.server import ThreadedMotoServer

        from multicloud_aws import gaps, local_registry

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        gaps.install()
        try:
            registry, detach = local_registry.attach(self.registry)
        except Exception:
            gaps.uninstall()
            raise
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        try:
            server.start()
        except Exception:
            detach()
            gaps.uninstall()
            raise
        bound_host, bound_port = server.get_host_and_port()
        shown = "127.0.0.1" if not bound_host or ipaddress.ip_address(bound_host).is_unspecified else bound_host
        endpoint = f"http://{shown}:{bound_port}"
        stopped: list[bool] = []

        def stop() -> None:
            """Stop serving, then remove what the data plane runs, even when the server's stop fails."""
            if not stopped:
                stopped.append(True)
                with ExitStack() as cleanup:  # each runs, last first, whatever an earlier one raised
                    cleanup.callback(gaps.uninstall)
                    cleanup.callback(detach)
                    if self.data_plane is not None:
                        cleanup.callback(self.data_plane.close)
                    server.stop()

        notes = [registry_note(registry)]
        if self.run:
            try:
                from multicloud_aws import dataplane

                self.data_plane, note = dataplane.start(int(bound_port))
            except BaseException:
                stop()
                raise
            notes.append(note)

        environment = {"AWS_ENDPOINT_URL": endpoint, **ENVIRONMENT}
        return RunningEmulator(name="aws", endpoint=endpoint, environment=environment, stop=stop, notes=tuple(notes))


def registry_note(registry: Registry | None) -> str:
    """One line saying where ECR pushes go, or how to get a registry."""
    if registry is None:
        return MISSING
    return f"ECR images are pushed to the registry at {registry.endpoint}"


@contextmanager
def in_process(registry: str | None = "auto") -> Iterator[None]:
    """moto's in-process mock (`mock_aws`) with the gaps filled: boto3 clients made inside
    the block talk to it without any network (`registry` as for AwsEmulator)."""
    _require_moto()
    from moto import mock_aws

    from multicloud_aws import gaps, local_registry

    saved = {k: os.environ.get(k) for k in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    gaps.install()
    detach = None
    try:
        _, detach = local_registry.attach(registry)
        with mock_aws():
            yield
    finally:
        if detach is not None:
            detach()
        gaps.uninstall()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client_factory(endpoint: str | None, *, region: str = REGION, hook: Any = None) -> Any:
    """A client factory for the emulator at `endpoint` (None: in process), with test
    credentials; `hook(event_name, **kwargs)` is registered on every client for
    'before-call.*.*' (to count calls)."""
    from multicloud_aws.clients import default_factory

    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    base = default_factory(region, None, endpoint)
    hooked: set[int] = set()

    def make(service: str) -> Any:
        client = base(service)
        if hook is not None and id(client) not in hooked:
            hooked.add(id(client))
            client.meta.events.register("before-call.*.*", hook)
        return client

    return make
