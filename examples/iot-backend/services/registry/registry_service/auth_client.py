"""Calls to the auth service, forwarding the operator's token; token checks cached briefly."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
from fastapi import HTTPException

# auth's uvicorn closes a connection after 5 s idle; dropping ours at 2 s means a request never goes out on a
# connection the server is closing at that moment (that race answered 503 "RemoteProtocolError" now and then)
KEEPALIVE_SECONDS = 2.0


class AuthClient:
    """The registry's view of auth: verify tokens, issue and revoke device credentials."""

    def __init__(self, base_url: str, cache_seconds: float) -> None:
        limits = httpx.Limits(max_connections=32, keepalive_expiry=KEEPALIVE_SECONDS)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits)
        self.cache_seconds = cache_seconds
        self._valid: dict[str, tuple[float, dict[str, Any]]] = {}

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def _call(self, method: str, path: str, token: str, idempotent: bool = False, **kwargs: Any) -> Any:
        """One call to auth; a dropped connection is retried once when the call is idempotent; 503 if auth is away."""
        headers = {"Authorization": f"Bearer {token}"}
        try:
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)
            except httpx.RemoteProtocolError:
                if not idempotent:
                    raise
                response = await self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise HTTPException(503, f"auth service unavailable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            status = response.status_code if response.status_code < 500 else 502
            raise HTTPException(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        return response.json()

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the token's principal; valid answers are cached for `cache_seconds`."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._valid.get(key)
        if hit and hit[0] > now:
            return hit[1]
        principal: dict[str, Any] = await self._call("POST", "/v1/tokens/verify", token, idempotent=True)
        if len(self._valid) > 10_000:
            self._valid.clear()
        self._valid[key] = (now + self.cache_seconds, principal)
        return principal

    async def issue(self, device_id: str, token: str) -> dict[str, Any]:
        """Create a device's credentials (the password comes back once)."""
        credentials: dict[str, Any] = await self._call("POST", f"/v1/devices/{device_id}/credentials", token)
        return credentials

    async def issue_many(self, device_ids: list[str], token: str) -> list[dict[str, Any]]:
        """Create credentials for many devices at once (all or none)."""
        result: Any = await self._call("POST", "/v1/devices/credentials", token, json={"device_ids": device_ids})
        return list(result)

    async def revoke(self, device_id: str, token: str) -> dict[str, Any]:
        """Revoke a device's credentials."""
        revoked: dict[str, Any] = await self._call("DELETE", f"/v1/devices/{device_id}/credentials", token)
        return revoked

    async def broker_status(self, token: str, min_applied: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """Return the latest credential version and the broker's loaded one, waiting if asked."""
        params = {"min_applied": min_applied, "wait": wait}
        status: dict[str, Any] = await self._call("GET", "/v1/broker/status", token, idempotent=True, params=params,
                                                  timeout=wait + 10.0)
        return status
