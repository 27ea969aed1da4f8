"""A small client for the registry's HTTP API (stdlib only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    """The API answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class RegistryClient:
    """Calls the registry with an operator token."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0, ca_file: str | None = None) -> None:
        """`ca_file`: the CA bundle an https:// registry's certificate must chain to (default: the system's)."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must be http(s)://..., not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if base_url.startswith("https://") else None

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Send one request and return its decoded JSON; raise ApiError on 4xx/5xx."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            f"{self.base_url}{path}{'?' + query if query else ''}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("detail", "")
            except ValueError:
                detail = exc.reason
            raise ApiError(exc.code, str(detail)) from exc

    def register(self, device_id: str | None = None, name: str = "", wait_active: float = 0.0) -> dict[str, Any]:
        """Register a device; the answer holds its MQTT password (shown once)."""
        body = {"id": device_id, "name": name} if device_id else {"name": name}
        result: dict[str, Any] = self.call("POST", "/devices", body, wait_active=wait_active or None)
        return result

    def register_many(
        self, device_ids: list[str], name: str = "", wait_active: float = 0.0
    ) -> list[dict[str, Any]]:
        """Register up to 1,000 devices in one call (all or none); answers hold their passwords."""
        body = {"devices": [{"id": device_id, "name": name} for device_id in device_ids]}
        result: list[dict[str, Any]] = self.call("POST", "/devices/bulk", body, wait_active=wait_active or None)
        return result

    def device(self, device_id: str) -> dict[str, Any]:
        """Get one device (status, last seen)."""
        result: dict[str, Any] = self.call("GET", f"/devices/{device_id}")
        return result

    def devices(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """List devices."""
        result: list[dict[str, Any]] = self.call("GET", "/devices", status=status, limit=limit)
        return result

    def readings(
        self, device_id: str | None = None, since: float | None = None, until: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Recent readings (of one device or all), newest first; since/until are Unix seconds."""
        path = f"/devices/{device_id}/readings" if device_id else "/readings"
        result: list[dict[str, Any]] = self.call("GET", path, since=since, until=until, limit=limit)
        return result

    def decommission(self, device_id: str, wait: float = 5.0) -> dict[str, Any]:
        """Decommission a device (its credentials are revoked)."""
        result: dict[str, Any] = self.call("DELETE", f"/devices/{device_id}", wait=wait)
        return result

    def broker_status(self) -> dict[str, Any]:
        """Latest credential version and the one the broker has loaded."""
        result: dict[str, Any] = self.call("GET", "/broker/status")
        return result
