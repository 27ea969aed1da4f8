"""Secrets from the environment: NAME, the file NAME_FILE names, or /run/secrets/<name in lower case>."""

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
