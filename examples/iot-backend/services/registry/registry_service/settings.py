"""Configuration from environment variables; secrets may also come from NAME_FILE or /run/secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from iot_common.env import secret


def max_body_bytes() -> int:
    """MAX_BODY_BYTES: the largest request body accepted (64 KiB by default); exit naming it when malformed."""
    raw = os.environ.get("MAX_BODY_BYTES", "").strip() or "65536"
    if not raw.isdigit() or not 1024 <= int(raw) <= 64 * 1024 * 1024:
        raise SystemExit(f"registry: MAX_BODY_BYTES must be a number of bytes, 1024 to 67108864, not {raw[:40]!r}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """What the registry reads from its environment."""

    database_url: str
    auth_url: str
    mqtt_url: str | None
    mqtt_password: str | None
    token_cache_seconds: float = 5.0
    host: str = "0.0.0.0"  # noqa: S104 (a container listens on all its interfaces)
    port: int = 8000
    access_log: bool = False

    @staticmethod
    def from_env() -> Settings:
        """Build settings from the environment; exit naming (never printing) a missing secret."""
        database_url = secret("DATABASE_URL")
        auth_url = os.environ.get("AUTH_URL", "").rstrip("/")
        if not database_url or not auth_url.startswith(("http://", "https://")):
            raise SystemExit("registry: DATABASE_URL and AUTH_URL (http[s]://...) must be set")
        return Settings(
            database_url=database_url,
            auth_url=auth_url,
            mqtt_url=os.environ.get("MQTT_URL") or None,
            mqtt_password=secret("REGISTRY_MQTT_PASSWORD"),
            token_cache_seconds=float(os.environ.get("TOKEN_CACHE_SECONDS", "5")),
            port=int(os.environ.get("PORT") or 8000),
            access_log=os.environ.get("ACCESS_LOG", "0") == "1",
        )
