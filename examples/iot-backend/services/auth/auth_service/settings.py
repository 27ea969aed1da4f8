"""Configuration from environment variables; secrets may also come from NAME_FILE or /run/secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from iot_common.env import required_secret


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
            database_url=required_secret("auth", "DATABASE_URL"),
            admin_token=required_secret("auth", "ADMIN_TOKEN"),
            feed_token=required_secret("auth", "BROKER_FEED_TOKEN"),
            port=int(os.environ.get("PORT") or 8000),
            access_log=os.environ.get("ACCESS_LOG", "0") == "1",
        )
