"""Provider-neutral resources, the unit that plans diff and the engine applies."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ReplaceMode = Literal["create-before-delete", "delete-before-create"]


@dataclass(frozen=True, eq=False)
class Sensitive:
    """A secret-bearing value: compared and shown by digest, its value never printed."""

    digest: str
    value: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, value: str, *, app: str) -> Sensitive:
        """Wrap a plaintext value of one app; the digest (keyed by the app's name) is what plans
        compare and labels may carry, so equal secrets in two apps carry different digests."""
        return cls(digest=_slow_digest(value, app), value=value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sensitive) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __str__(self) -> str:
        return "(sensitive)"

    def reveal(self) -> str:
        """Return the plaintext; raise if this value was read back (digest only)."""
        if self.value is None:
            raise ValueError("this sensitive value was observed, not given; its value is unknown")
        return self.value


@functools.lru_cache(maxsize=4096)
def _slow_digest(value: str, app: str) -> str:
    """A stretched digest salted per app (PBKDF2-SHA256, 20,000 rounds, about 10 ms): labels and
    tags are readable by anyone with access to the platform, so guessing a weak secret from its
    digest must cost far more than one hash per guess, and one guess must not test every app at
    once (nor show that two apps share a secret). Cached: values repeat across services."""
    salt = b"multicloud-sensitive-v2\0" + app.encode()
    derived = hashlib.pbkdf2_hmac("sha256", value.encode(), salt, 20_000, dklen=16)
    return derived.hex()


SENSITIVE_KEY = "$sensitive"


def to_jsonable(value: Any) -> Any:
    """Return a JSON-ready copy of a property value, secrets replaced by their digests."""
    if isinstance(value, Sensitive):
        return {SENSITIVE_KEY: value.digest}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def map_leaves(value: Any, change: Callable[[Any], Any]) -> Any:
    """A copy of a property value with `change` applied to each leaf (each value that is neither a mapping
    nor a list), lists and tuples as lists."""
    if isinstance(value, Mapping):
        return {key: map_leaves(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [map_leaves(item, change) for item in value]
    return change(value)


def from_jsonable(value: Any) -> Any:
    """Invert to_jsonable: digests come back as Sensitive values without plaintext."""
    if isinstance(value, dict):
        if set(value) == {SENSITIVE_KEY}:
            return Sensitive(digest=str(value[SENSITIVE_KEY]))
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def fingerprint(properties: Mapping[str, Any]) -> str:
    """Return a short stable hash of properties (secrets by digest), for labels and tags."""
    canonical = json.dumps(to_jsonable(properties), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Resource:
    """One provider-native thing an app owns, as desired or as observed.

    `properties` is what plans compare and show (JSON-like, secrets as Sensitive).
    `replace_on` names the top-level properties whose change needs a new resource.
    `payload` carries provider data for apply (never compared, printed or serialised).
    `update_effect` says what an in-place update does beyond the change itself (e.g. that
    every container of a group restarts); plans show it.
    Observed only: `instance` tells apart coexisting instances of one key (an interrupted
    create-before-delete leaves two; each is planned on its own), and `faults` says what is
    broken in an instance whose properties match (e.g. "replica 2 exited (137)"); a faulty
    instance is planned for replacement; `healthy` says the provider saw it healthy while
    observing, so an apply that leaves it alone need not wait for it (False: not known).
    `notes` says what the provider or the core chose for the target beyond the spec (e.g. cpu raised
    to what the platform requires, a port served by its fallback); plans show them.
    `target` is the spec target a resource belongs to: the core sets it on desired resources,
    providers label or tag what they create with it and report it when they observe ("" where
    there is no such label: made before targets were labelled, or by a provider that keeps none).
    """

    kind: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    replace_on: frozenset[str] = frozenset()
    replace_mode: ReplaceMode = "delete-before-create"
    persistent: bool = False
    service: str | None = None
    payload: Any = field(default=None, compare=False, repr=False)
    update_effect: str = field(default="", compare=False)
    instance: str = field(default="", compare=False)
    faults: tuple[str, ...] = field(default=(), compare=False)
    healthy: bool = field(default=False, compare=False)
    target: str = field(default="", compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """The resource's identity within an app: `kind/name`."""
        return f"{self.kind}/{self.name}"
