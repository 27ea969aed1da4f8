"""Small HTTP helpers for tests that talk to what they deployed."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any


def get_json(url: str, timeout: float = 20.0) -> Any:
    """GET a URL and decode its JSON, retrying while the server comes up; raises the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - tests GET their own http URLs
                return json.loads(response.read())
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
