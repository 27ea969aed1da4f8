"""Helpers shared by the docker provider tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

API_VERSION = "1.41"
APP_IMAGE = "multicloud-test/app:1"


@dataclass
class CallLog:
    """Every HTTP request a provider's client sent to the engine, as (method, path)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def mutating(self) -> list[tuple[str, str]]:
        """Requests that can change the engine's state (anything but GET and HEAD)."""
        return [c for c in self.calls if c[0] not in ("GET", "HEAD")]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.calls.clear()


def counting_factory(log: CallLog) -> Callable[[], Any]:
    """A client factory like the provider's own (reads, probes and starting containers over the
    stdlib client, the rest over the SDK) whose two clients record each request before sending it."""

    def make() -> Any:
        from multicloud_docker.client import EngineClient, read_client, sdk_factory

        reader = read_client(None)
        assert reader is not None, "the tests' engine is on the local socket"
        send = reader.send

        def counted_send(method: str, path: str, params: Any = None, body: Any = None) -> bytes:
            log.calls.append((method.upper(), f"/v{reader.version}{path}"))
            return send(method, path, params, body)

        reader.send = counted_send  # type: ignore[method-assign]

        def writer() -> Any:
            api = sdk_factory(None)()
            request = api.request

            def counted_request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                log.calls.append((method.upper(), urlparse(url).path))
                return request(method, url, *args, **kwargs)

            api.request = counted_request
            return api

        return EngineClient(reader, writer)

    return make


def purge(api: Any, app: str) -> None:
    """Remove every container, network, volume and image labelled with the app."""
    selector = {"label": [f"multicloud.app={app}"]}
    for container in api.containers(all=True, filters=selector):
        api.remove_container(container["Id"], force=True, v=True)
    for network in api.networks(filters=selector):
        api.remove_network(network["Id"])
    for volume in (api.volumes(filters=selector) or {}).get("Volumes") or []:
        api.remove_volume(volume["Name"], force=True)
    for image in api.images(filters=selector):
        for tag in image.get("RepoTags") or []:
            if tag.startswith(f"multicloud/{app}/"):
                api.remove_image(tag, force=True)


def owned(api: Any, app: str) -> dict[str, list[dict[str, Any]]]:
    """Everything on the engine labelled with the app, by kind."""
    selector = {"label": [f"multicloud.app={app}"]}
    images = [
        i
        for i in api.images(filters=selector)
        if any(t.startswith(f"multicloud/{app}/") for t in i.get("RepoTags") or [])
    ]
    return {
        "containers": api.containers(all=True, filters=selector),
        "networks": api.networks(filters=selector),
        "volumes": (api.volumes(filters=selector) or {}).get("Volumes") or [],
        "images": images,
    }


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HERE = Path(__file__).parent
APP_CONTEXT = HERE / "images" / "app"
SECRET = "tok-Very-Secret-9c1f"
HTTP_CHECK = {"http": "/health", "interval": "0.5s", "timeout": "3s", "retries": 40}


def three_service_spec(
    app: str,
    web_port: int,
    *,
    greeting: str = "hello",
    api_replicas: int = 2,
    api_env: dict[str, str] | None = None,
    context: Path = APP_CONTEXT,
) -> dict[str, Any]:
    """web (built, public HTTP) -> api (image, 2 replicas, read-only, uid 1000, secret env) ->
    store (image, named volume, secret file, tcp check)."""
    http_port = {"name": "http", "port": 8080, "protocol": "http"}
    return {
        "name": app,
        "services": {
            "web": {
                "build": str(context),
                "ports": [{**http_port, "expose": "public"}],
                "env": {"SERVICE_NAME": "web", "UPSTREAM": "${services.api.url}/upstream", "GREETING": greeting},
                "healthcheck": HTTP_CHECK,
                "depends_on": ["api"],
                "resources": {"cpu": 1},
            },
            "api": {
                "image": APP_IMAGE,
                "replicas": api_replicas,
                "ports": [http_port],
                "env": {"SERVICE_NAME": "api", "UPSTREAM": "${services.store.url}", "TOKEN": "${secrets.token}"}
                | (api_env or {}),
                "healthcheck": HTTP_CHECK,
                "depends_on": ["store"],
                "read_only": True,
                "user": "1000",
                "resources": {"cpu": 0.5, "memory": "128Mi"},
            },
            "store": {
                "image": APP_IMAGE,
                "ports": [http_port],
                "env": {"SERVICE_NAME": "store"},
                "healthcheck": {"tcp": 8080, "interval": "0.5s", "retries": 40},
                "volumes": ["data:/data"],
                "resources": {"cpu": 1},
                "secrets": ["token"],
            },
        },
        "secrets": {"token": {"from_env": "TOKEN_VALUE"}},
        "volumes": {"data": None},
        "targets": {"local": {"provider": "docker", "publish": {"web.http": web_port}, "stop_timeout": 2}},
    }


def deployment(data: dict[str, Any], log: CallLog | None = None, events: list[Any] | None = None) -> Any:
    """A Deployment of spec data on a docker provider built from its target settings."""
    from multicloud_docker.provider import DockerProvider

    from multicloud.api import Deployment
    from multicloud.retry import RetryPolicy
    from multicloud.spec import spec_from_dict

    spec = spec_from_dict(data, base_dir="/")
    settings = spec.targets["local"].settings
    provider = DockerProvider(settings, client_factory=counting_factory(log) if log is not None else None)
    return Deployment(
        spec,
        "local",
        provider=provider,
        environ={"TOKEN_VALUE": SECRET},
        on_event=events.append if events is not None else None,
        retry=RetryPolicy(attempts=3, base_delay=0.2),
        health_timeout=90,
    )


def containers_by_service(api: Any, app: str) -> dict[str, list[dict[str, Any]]]:
    """The app's containers grouped by their service label."""
    found: dict[str, list[dict[str, Any]]] = {}
    for container in api.containers(all=True, filters={"label": [f"multicloud.app={app}"]}):
        found.setdefault(container["Labels"]["multicloud.service"], []).append(container)
    return found
