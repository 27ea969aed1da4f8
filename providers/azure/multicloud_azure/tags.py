"""Tags on a container group: the app, the spec hash, and what ARM never returns (secret
digests, port names), kept as compact JSON split over tags of at most 256 characters."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from multicloud.resources import Sensitive

APP = "multicloud-app"
TARGET = "multicloud-target"
SPEC = "multicloud-spec"
LAYOUT = "multicloud-layout"
GROUP_META = "multicloud-meta"
CONTAINER_META = "multicloud-c-"
MAX_VALUE = 256
MAX_TAGS = 50


def container_key(container: str) -> str:
    """The tag holding a container's metadata."""
    return CONTAINER_META + container


def encode_digest(value: Sensitive) -> str:
    """A Sensitive's digest in 22 characters (URL-safe base64); never the plaintext."""
    return base64.urlsafe_b64encode(bytes.fromhex(value.digest)).decode().rstrip("=")


def decode_digest(text: str) -> Sensitive:
    """The Sensitive (digest only) that encode_digest wrote."""
    return Sensitive(digest=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex())


def put_json(tags: dict[str, str], key: str, value: Mapping[str, Any]) -> None:
    """Store value under key, key.1, key.2... in chunks of at most 256 characters."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    chunks = [text[i : i + MAX_VALUE] for i in range(0, len(text), MAX_VALUE)] or [""]
    for index, chunk in enumerate(chunks):
        tags[key if index == 0 else f"{key}.{index}"] = chunk


def get_json(tags: Mapping[str, str], key: str) -> dict[str, Any]:
    """Read what put_json stored; {} when absent or unreadable (the plan then shows drift)."""
    if key not in tags:
        return {}
    parts, index = [tags[key]], 1
    while f"{key}.{index}" in tags:
        parts.append(tags[f"{key}.{index}"])
        index += 1
    try:
        value = json.loads("".join(parts))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
