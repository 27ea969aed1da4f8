"""Azure Container Registry in the emulator: ARM registries (`Microsoft.ContainerRegistry/registries`,
PUT/GET/list) whose login server is a real `docker-registry` behind ACR's login flow
(multicloud.testing.registry_front): `POST /oauth2/exchange` trades the emulator's ARM token for a
refresh token, which the token endpoint `/oauth2/token` takes as the password of user
00000000-0000-0000-0000-000000000000 (what `docker login` and ACI's imageRegistryCredentials send).
Every registry of the emulator shares one login server (the front's address). Started on the first
registry PUT; without Debian's docker-registry that PUT fails saying how to install it."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from multicloud.testing import registry as local_registry
from multicloud.testing.registry_front import Call, RegistryFront, Reply
from multicloud_azure.emulator.validation import ArmError

API_VERSIONS = ("2023-07-01", "2023-01-01-preview", "2019-05-01")
TOKEN_USER = "00000000-0000-0000-0000-000000000000"  # noqa: S105 - ACR's fixed user for refresh tokens
NAME_PATTERN = r"^[a-zA-Z0-9]{5,50}$"


class AcrBackend:
    """The emulator's registries and the login server they share."""

    def __init__(self, arm_token: Callable[[], str | None], wrap: Callable[[Any], Any] | None) -> None:
        self.arm_token = arm_token
        self.wrap = wrap
        self.registries: dict[tuple[str, str], dict[str, Any]] = {}
        self.refresh_tokens: set[str] = set()
        self.front: RegistryFront | None = None
        self._lock = threading.Lock()

    def login_server(self) -> str:
        """The front's HOST:PORT, starting the registry and front on first use; ArmError when it cannot."""
        with self._lock:
            if self.front is None:
                reason = local_registry.unavailable_reason("azure")
                if reason:
                    raise ArmError(409, "RegistryUnavailable", reason)
                routes = {("POST", "/oauth2/exchange"): self.exchange}
                self.front = RegistryFront(lambda: local_registry.start(emulator="azure"), self.authorize,
                                           token_path="/oauth2/token", routes=routes, wrap=self.wrap)  # noqa: S106
            return self.front.address

    def put(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Create (201) or update (200) a registry; its loginServer is the shared front."""
        if not re.match(NAME_PATTERN, name):
            raise ArmError(400, "InvalidResourceName", f"registry name {name!r} must be 5-50 letters and digits")
        key = (sub, name.lower())
        with self._lock:
            clash = self.registries.get(key)
        if clash is not None and clash["_rg"].lower() != rg.lower():
            raise ArmError(409, "AlreadyInUse", f"The registry {name} is already in use.")
        server = self.login_server()
        existed = clash is not None
        registry = {
            "_rg": rg,
            "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}",
            "name": name,
            "type": "Microsoft.ContainerRegistry/registries",
            "location": str(body.get("location") or ""),
            "sku": body.get("sku") or {"name": "Basic"},
            "tags": body.get("tags") or {},
            "properties": {"loginServer": server, "provisioningState": "Succeeded", "adminUserEnabled": False},
        }
        with self._lock:
            self.registries[key] = registry
        return (200 if existed else 201), _view(registry)

    def get(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        """One registry, or ArmError 404."""
        with self._lock:
            found = self.registries.get((sub, name.lower()))
        if found is None or found["_rg"].lower() != rg.lower():
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.ContainerRegistry/registries/{name}' "
                           f"under resource group '{rg}' was not found.")
        return _view(found)

    def list(self, sub: str) -> list[dict[str, Any]]:
        """The registries of a subscription."""
        with self._lock:
            return [_view(r) for (s, _), r in sorted(self.registries.items()) if s == sub]

    def exchange(self, call: Call) -> Reply:
        """ACR's /oauth2/exchange: grant_type=access_token with a valid ARM token -> a refresh token."""
        form = {k: v[-1] for k, v in parse_qs(call.body.decode(errors="replace")).items()}
        if form.get("grant_type") != "access_token" or not form.get("service"):
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": "grant_type=access_token and service needed"}]}
        expected = self.arm_token()
        if not form.get("access_token") or (expected is not None and form["access_token"] != expected):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "the access token is invalid"}]}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.refresh_tokens.add(token)
        return 200, {"refresh_token": token}

    def authorize(self, user: str, password: str) -> bool:
        """The token endpoint's check: ACR's token user with a refresh token this emulator issued."""
        with self._lock:
            return user == TOKEN_USER and password in self.refresh_tokens

    def stop(self) -> None:
        """Stop the front and the registry (and delete its storage)."""
        if self.front is not None:
            self.front.stop()


def _view(registry: dict[str, Any]) -> dict[str, Any]:
    """A registry as ARM returns it."""
    return {k: v for k, v in registry.items() if not k.startswith("_")}
