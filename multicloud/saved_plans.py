"""Saved plans (`plan --out FILE`, `apply FILE`): a plan with the fingerprint of what existed when it was made.

The file holds no secret value: properties carry secrets as digests, and the secrets the plan
needs are listed by digest only. Applying re-resolves them and re-reads what exists; any difference
from the file refuses the apply before anything is touched.

A secret the plan generates (`generate:`, made because the target's store holds none that fits yet) is
"known after apply", as terraform says: a plan stores nothing, so the value it drew is never used. The
file records that the secret will be generated, its steps are rendered with a fixed stand-in in its place
(each digest of it written KNOWN_AFTER_APPLY), and `apply FILE` generates the value then. A secret the
store held when the plan was made is recorded by digest, so a change to it still refuses the apply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multicloud.backing import connection_urls
from multicloud.errors import UserError
from multicloud.planner import KNOWN_AFTER_APPLY, Plan
from multicloud.resources import Resource, Sensitive, map_leaves, to_jsonable

if TYPE_CHECKING:
    from multicloud.spec.targets import TargetSpec

FORMAT = "multicloud-plan/1"
MAX_PLAN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SavedPlan:
    """What `plan --out` writes: the plan's scope and options, its steps, what it was made against."""

    app: str
    target: str
    services: tuple[str, ...]
    destroy: bool
    volumes: bool
    observed: str
    """Fingerprint of every resource the plan was made against (as observed)."""
    steps: list[dict[str, Any]]
    secrets: dict[str, str] = field(default_factory=dict)
    """Each secret the plan renders -> its digest, or KNOWN_AFTER_APPLY for one generated at apply."""
    plan: Plan = field(default=Plan("", "", ()), compare=False)
    """The plan itself, with what applying needs (not written: `apply FILE` plans again and compares)."""
    desired: tuple[Resource, ...] = field(default=(), compare=False)
    """The desired resources it was made from, within its scope (not written)."""


def observed_fingerprint(observed: Sequence[Resource]) -> str:
    """A hash of what exists (each instance's identity, properties, faults and owner), in a stable order."""
    entries = sorted(
        (r.key, r.instance, to_jsonable(dict(r.properties)), list(r.faults), r.target, r.persistent)
        for r in observed
    )
    return hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()


def pending_stand_ins(spec: TargetSpec, secrets: Mapping[str, str], fresh: Collection[str]) -> dict[str, str]:
    """The fixed value standing in, where a saved plan renders it, for each secret among `secrets` generated
    at apply (those in `fresh`: no store holds them yet) and each composed from one (a database's URL)."""
    stand_in = {name: f"known-after-apply-{name}" for name in fresh if name in secrets}
    if not stand_in:
        return {}
    composed = connection_urls(spec, {**secrets, **stand_in})
    return {**stand_in, **{n: url for n, url in composed.items() if n in secrets and url != secrets[n]}}


def with_stand_ins_marked(resources: Sequence[Resource], app: str, stand_ins: Mapping[str, str]) -> list[Resource]:
    """The resources without payload, each digest of a value in `stand_ins` among their properties (a Sensitive,
    or text such as a digest a provider copies into a label) replaced by KNOWN_AFTER_APPLY."""
    digests = {Sensitive.of(value, app=app).digest for value in stand_ins.values()}

    def mark(leaf: Any) -> Any:
        if isinstance(leaf, Sensitive):
            return Sensitive(KNOWN_AFTER_APPLY) if leaf.digest in digests else leaf
        return KNOWN_AFTER_APPLY if isinstance(leaf, str) and leaf in digests else leaf

    return [dataclasses.replace(r, properties=map_leaves(r.properties, mark), payload=None) for r in resources]


def plan_steps(planned: Plan) -> list[dict[str, Any]]:
    """The plan's steps in order, as JSON data (secrets by digest): what `apply FILE` must find again."""
    return [
        {
            "id": c.id,
            "action": c.action.value,
            "requires": list(c.requires),
            "before": to_jsonable(dict(c.before.properties)) if c.before is not None else None,
            "after": to_jsonable(dict(c.after.properties)) if c.after is not None else None,
        }
        for c in planned.changes
    ]


def write(path: str, saved: SavedPlan) -> None:
    """Write a saved plan (mode 0600, replaced whole); a failure leaves any earlier file as it was."""
    data = {"format": FORMAT, **saved.__dict__, "services": list(saved.services)}
    del data["plan"], data["desired"]
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except OSError as exc:
        raise UserError(f"cannot write the plan to {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def read(path: str) -> SavedPlan:
    """Read a saved plan; UserError naming the file if it is missing, too big or not one."""
    try:
        if os.path.getsize(path) > MAX_PLAN_BYTES:
            raise UserError(f"{path}: larger than any saved plan ({MAX_PLAN_BYTES} bytes)")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the saved plan {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not a saved plan (JSON: {exc.msg})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a saved plan (format is not {FORMAT!r}); write one with plan --out FILE")
    try:
        return SavedPlan(
            app=_typed(data, "app", str), target=_typed(data, "target", str),
            services=tuple(_typed(data, "services", list)), destroy=_typed(data, "destroy", bool),
            volumes=_typed(data, "volumes", bool), observed=_typed(data, "observed", str),
            steps=_typed(data, "steps", list), secrets=_typed(data, "secrets", dict),
        )
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a saved plan ({exc.args[0]})") from None


def _typed(data: Mapping[str, Any], key: str, kind: type) -> Any:
    """`data[key]`, or TypeError/KeyError naming the field when it is missing or of another type."""
    if key not in data:
        raise KeyError(f"field {key!r} is missing")
    if not isinstance(data[key], kind):
        raise TypeError(f"field {key!r} is not a {kind.__name__}")
    return data[key]


def refuse_if_changed(path: str, saved: SavedPlan, now: SavedPlan) -> None:
    """Raise UserError saying what differs when the situation the plan was made in no longer holds."""
    if (saved.app, saved.target) != (now.app, now.target):
        raise UserError(f"{path} is a plan for app {saved.app!r} on target {saved.target!r}, "
                        f"not for {now.app!r} on {now.target!r}")
    changed = sorted(n for n in saved.secrets.keys() | now.secrets.keys() if saved.secrets.get(n) != now.secrets.get(n))
    made = [n for n in changed if saved.secrets.get(n) == KNOWN_AFTER_APPLY and n in now.secrets]
    if made:
        raise UserError(f"secret(s) {', '.join(made)} were generated since {path} was saved (by another apply), "
                        "which the plan would generate; nothing was applied",
                        hint="run plan --out again and review the new plan")
    if changed:
        raise UserError(f"secret(s) {', '.join(changed)} changed since {path} was saved (compared by digest); "
                        "nothing was applied", hint="run plan --out again and review the new plan")
    if saved.observed != now.observed:
        raise UserError(f"what exists on target {saved.target!r} changed since {path} was saved; nothing was applied",
                        hint="run plan --out again and review the new plan")
    if saved.steps != now.steps:
        raise UserError(f"the spec no longer gives the plan saved in {path} (it changed since); nothing was applied",
                        hint="run plan --out again and review the new plan")
