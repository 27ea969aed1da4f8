"""Names and labels of what the provider creates; labels are its only record of ownership."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from multicloud.resources import fingerprint, from_jsonable, to_jsonable

PREFIX = "multicloud."
APP = "multicloud.app"
TARGET = "multicloud.target"
"""The spec target that made an object (see multicloud.ownership)."""
SERVICE = "multicloud.service"
REPLICA = "multicloud.replica"
RESOURCE = "multicloud.resource"
SPEC_HASH = "multicloud.spec-hash"
GENERATION = "multicloud.generation"
"""Set on every replica one create made: the instance of the service those replicas form."""
CREATED_NS = "multicloud.created-ns"
"""When the provider created a replica (nanoseconds since the epoch, its own clock): orders two
generations made within one second, which the engine's `Created` (whole seconds) cannot tell apart."""
PROPERTIES = "multicloud.properties"
DEPENDS_ON = "multicloud.depends-on"

DATA_VOLUME = "postgres."
"""The name of a database's data volume is this and the database's name (spec volumes hold no `.`)."""

SCALE_PROPERTY = "replicas"
"""The one service property that changes in place (scaling); it is not part of the spec hash."""


def network_name(app: str) -> str:
    """Docker name of the app's network (`_` cannot occur in app names, so names never clash)."""
    return f"{app}_net"


def volume_name(app: str, volume: str) -> str:
    """Docker name of one of the app's named volumes."""
    return f"{app}_{volume}"


def image_repository(app: str, service: str) -> str:
    """Repository that built images of a service are tagged in (never pushed)."""
    return f"multicloud/{app}/{service}"


def container_name(app: str, service: str, index: int, generation: str) -> str:
    """Docker name of one replica; the generation in it makes a duplicate replica impossible
    while letting a new generation start beside the old one."""
    return f"{app}_{service}_{index}_{generation[:8]}"


def spec_hash(properties: Mapping[str, Any]) -> str:
    """Fingerprint of what a replica runs: every property except the replica count."""
    return fingerprint({k: v for k, v in properties.items() if k != SCALE_PROPERTY})


def encode(properties: Mapping[str, Any]) -> str:
    """JSON for the properties label; secrets appear as digests only."""
    return json.dumps(to_jsonable(dict(properties)), sort_keys=True, separators=(",", ":"))


def decode(text: str | None) -> dict[str, Any]:
    """Invert encode; a missing or damaged label reads as no properties."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return from_jsonable(value) if isinstance(value, dict) else {}


def owned(app: str, key: str, properties: Mapping[str, Any], target: str = "", **extra: str) -> dict[str, str]:
    """The labels of one owned object: app, target (when known), resource key, properties and any extras."""
    labels = {APP: app, RESOURCE: key, PROPERTIES: encode(properties)}
    if target:
        labels[TARGET] = target
    labels.update(extra)
    return labels


def selector(app: str, key: str | None = None) -> dict[str, list[str]]:
    """An engine list filter for the app's objects, or for one resource of it."""
    wanted = [f"{APP}={app}"]
    if key is not None:
        wanted.append(f"{RESOURCE}={key}")
    return {"label": wanted}
