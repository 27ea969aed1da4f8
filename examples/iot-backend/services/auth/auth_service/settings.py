"""Configuration from environment variables; secrets may also come from NAME_FILE or /run/secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def secret(name: str) -> str | None:
    """Read a secret from NAME, the file named by NAME_FILE, or /run/secrets/<name in lower case>."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE") or f"/run/secrets/{name.lower()}"
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def required_secret(name: str) -> str:
    """Read a secret that must be set; exit with a message naming it (never its value)."""
    value = secret(name)
    if not value:
        raise SystemExit(f"auth: {name} (or {name}_FILE) must be set")
    return value


@dataclass(frozen=True)
class Settings:
    """What the auth service reads from its environment."""

    database_url: str
    admin_token: str
    feed_token: str
    host: str = "0.0.0.0"  # noqa: S104 (a container listens on all its interfaces)
    port: int = 8000
    access_log: bool = False

    @staticmethod
    def from_env() -> Settings:
        """Build settings from the environment."""
        return Settings(
            database_url=required_secret("DATABASE_URL"),
            admin_token=required_secret("ADMIN_TOKEN"),
            feed_token=required_secret("BROKER_FEED_TOKEN"),
            port=int(os.environ.get("PORT") or 8000),
            access_log=os.environ.get("ACCESS_LOG", "0") == "1",
        )
