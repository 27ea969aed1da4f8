"""Secrets from the environment: NAME, the file NAME_FILE names, or /run/secrets/<name in lower case>;
and on/off flags (multicloud's ${ports.NAME.tls} gives true or false)."""

from __future__ import annotations

import os
from pathlib import Path


def secret(name: str) -> str | None:
    """Read a secret from NAME, the file named by NAME_FILE, or /run/secrets/<name in lower case>; None if unset."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE") or f"/run/secrets/{name.lower()}"
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def required_secret(service: str, name: str) -> str:
    """Read a secret that must be set; exit with a message naming it (never its value)."""
    value = secret(name)
    if not value:
        raise SystemExit(f"{service}: {name} (or {name}_FILE) must be set")
    return value


def flag(name: str, default: bool) -> bool:
    """Read an on/off variable (true/false, 1/0, yes/no, on/off; unset or empty: `default`); exit naming
    it when it is something else."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, not {raw[:20]!r}")
