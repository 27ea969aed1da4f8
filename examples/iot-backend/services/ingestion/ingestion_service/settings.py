"""Configuration from environment variables; secrets may also come from NAME_FILE or /run/secrets."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from iot_common.env import secret


def number(name: str, default: float) -> float:
    """Read a numeric setting."""
    return float(os.environ.get(name) or default)


@dataclass(frozen=True)
class Settings:
    """What ingestion reads from its environment."""

    mqtt_url: str
    mqtt_username: str
    mqtt_password: str
    client_id: str
    share_group: str
    topic: str
    session_expiry: int
    receive_maximum: int
    ca_file: str | None
    database_url: str
    batch_max_rows: int
    batch_max_seconds: float
    db_writers: int
    store_slow_seconds: float
    drain_seconds: float
    port: int
    dead_letter_max_rows: int = 1_000_000
    adopt_sessions: bool = True
    adopt_seconds: float = 60.0
    read_coalesce_seconds: float = 0.003

    @property
    def subscription(self) -> str:
        """The shared subscription filter."""
        return f"$share/{self.share_group}/{self.topic}"

    @property
    def will_topic(self) -> str:
        """This client id's will: where the broker announces, retained, that its connection died (emptied by
        the next connection with this id); `wills` matches those of every replica of the share group."""
        return f"services/ingestion/{self.share_group}/gone/{self.client_id}"

    @property
    def wills(self) -> str:
        """The filter matching the wills of every replica of this share group."""
        return f"services/ingestion/{self.share_group}/gone/+"

    @staticmethod
    def from_env() -> Settings:
        """Build settings from the environment; exit naming (never printing) a missing secret."""
        mqtt_url, password, database_url = os.environ.get("MQTT_URL"), secret("INGESTION_MQTT_PASSWORD"), secret(
            "DATABASE_URL"
        )
        if not (mqtt_url and password and database_url):
            raise SystemExit("ingestion: MQTT_URL, INGESTION_MQTT_PASSWORD and DATABASE_URL must be set")
        username = os.environ.get("MQTT_USERNAME", "_ingestion")
        client_id = os.environ.get("MQTT_CLIENT_ID") or f"{username}-{socket.gethostname()}"
        if not client_id.startswith(f"{username}-") or len(client_id) > 128 or set(client_id) & set("+#/"):
            raise SystemExit(f"ingestion: MQTT_CLIENT_ID must start with '{username}-' (the broker binds client ids "
                             f"to accounts), have at most 128 characters and no '+', '#' or '/' (it ends the "
                             f"replica's will topic); it is {client_id[:80]!r}")
        return Settings(
            mqtt_url=mqtt_url,
            mqtt_username=username,
            mqtt_password=password,
            client_id=client_id,
            share_group=os.environ.get("MQTT_SHARE_GROUP", "ingestion"),
            topic=os.environ.get("MQTT_TOPIC", "devices/+/telemetry"),
            session_expiry=int(number("MQTT_SESSION_EXPIRY", 3600)),
            receive_maximum=int(number("MQTT_RECEIVE_MAXIMUM", 10000)),
            ca_file=os.environ.get("MQTT_CA_FILE") or None,
            database_url=database_url,
            batch_max_rows=int(number("BATCH_MAX_ROWS", 2000)),
            batch_max_seconds=number("BATCH_MAX_MS", 10) / 1000,
            db_writers=max(1, int(number("DB_WRITERS", 2))),
            store_slow_seconds=number("STORE_SLOW_MS", 25) / 1000,
            drain_seconds=number("DRAIN_SECONDS", 8),
            port=int(number("PORT", 8000)),
            dead_letter_max_rows=max(1, int(number("DEAD_LETTER_MAX_ROWS", 1_000_000))),
            adopt_sessions=os.environ.get("ADOPT_SESSIONS", "1").lower() not in ("0", "false", "no", "off"),
            adopt_seconds=number("ADOPT_SECONDS", 60),
            read_coalesce_seconds=max(0.0, number("MQTT_READ_COALESCE_MS", 3)) / 1000,
        )
