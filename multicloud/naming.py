"""Names for cloud objects whose names are global or long-lived (a flexible server's fqdn, a Cloud
SQL instance ID): readable, and apart for every place that makes one."""

from __future__ import annotations

import hashlib
import re


def placed_name(readable: str, where: str, *, limit: int) -> str:
    """`readable` in lowercase letters, digits and hyphens (cut to fit `limit`), then a hyphen and
    an 8-digit digest of `where` (what tells apart two makers of the same readable name: account,
    region, target); it starts with a letter."""
    stem = re.sub(r"[^a-z0-9-]+", "-", readable.lower()).strip("-")
    stem = stem if stem[:1].isalpha() else f"x-{stem}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return f"{stem[: limit - len(digest) - 1].strip('-')}-{digest}"
