"""Plans and results for people (terraform-style + ~ -/+ -) and for machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from multicloud.planner import KNOWN_AFTER_APPLY, Action, Change, Plan
from multicloud.resources import Sensitive, map_leaves, to_jsonable

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.NOOP: " ",
}
VERBS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
}


def show_value(value: Any, *, digest: bool = False, generated: Collection[str] = ()) -> str:
    """Format a property value for a person; secrets show as (sensitive value), with their
    digest when `digest` (to tell two secrets apart without showing either), and those whose digest
    is among `generated` (values the plan generates) as (known after apply)."""
    value = _marked(value, generated)
    if value is None:
        return "(none)"
    if isinstance(value, Sensitive):
        if value.digest == KNOWN_AFTER_APPLY:
            return KNOWN_AFTER_APPLY
        return f"(sensitive value, digest {value.digest[:12]})" if digest else "(sensitive value)"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(to_jsonable(value), sort_keys=True)


def _marked(value: Any, generated: Collection[str]) -> Any:
    """The value with each secret among it whose digest is in `generated` standing as known after apply."""
    if not generated:
        return value
    return map_leaves(value, lambda leaf: Sensitive(KNOWN_AFTER_APPLY)
                      if isinstance(leaf, Sensitive) and leaf.digest in generated else leaf)


def plan_text(plan: Plan, *, verbose: bool = False) -> str:
    """Render a plan the way terraform does, with the field-level reasons."""
    lines: list[str] = []
    generated = set(plan.generated.values())
    for change in plan.changes:
        if change.action is Action.NOOP:
            continue
        lines.extend(_change_lines(change, verbose, generated))
    if plan.generated:
        lines.append(f"  + secret(s) {', '.join(sorted(plan.generated))} will be generated at apply "
                     f"{KNOWN_AFTER_APPLY}")
    for resource in plan.kept:
        lines.append(f"  = {resource.key} is kept (persistent; destroy --volumes removes it)")
    counts = plan.counts()
    if not plan.has_changes:
        lines.append(f"No changes. {plan.app} on {plan.target} matches the spec.")
    else:
        lines.append(
            f"Plan for {plan.app} on {plan.target}: {counts['create']} to add, "
            f"{counts['update']} to change, {counts['replace']} to replace, "
            f"{counts['delete']} to destroy."
        )
    return "\n".join(lines)


def _change_lines(change: Change, verbose: bool, generated: Collection[str]) -> list[str]:
    symbol = SYMBOLS[change.action]
    head = f"{symbol:>3} {change.key} {VERBS[change.action]}"
    broken = change.before.faults if change.before is not None else ()
    if change.action is Action.REPLACE and broken and not any(f.forces_replace for f in change.fields):
        head = f"{symbol:>3} {change.key} {'; '.join(broken)}"  # e.g. -/+ service/x replica 2 exited (137)
    elif change.instance:
        head = f"{symbol:>3} {change.key} instance {change.instance} {VERBS[change.action]} ({change.reason})"
    elif change.action is Action.REPLACE and change.reason:
        head += f" ({change.reason})"
    elif change.action is Action.UPDATE and change.after is not None and change.after.update_effect:
        head += f" ({change.after.update_effect})"
    lines = [head]
    if change.action is Action.CREATE and verbose:
        assert change.after is not None
        for name, value in sorted(change.after.properties.items()):
            lines.append(f"      + {name}: {show_value(value, generated=generated)}")
    for field in change.fields:
        mark = "  # forces replacement" if field.forces_replace else ""
        before, after = (show_value(v, generated=generated) for v in (field.before, field.after))
        lines.append(f"      ~ {field.path}: {before} -> {after}{mark}")
    if change.after is not None:
        lines += [f"      # {note}" for note in change.after.notes]
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    """Return a plan as JSON-ready data (secrets as digests, never values; those the plan generates as
    known after apply)."""
    generated = set(plan.generated.values())
    return {
        "app": plan.app,
        "target": plan.target,
        "has_changes": plan.has_changes,
        "summary": plan.counts(),
        "changes": [
            {
                "action": c.action.value,
                "resource": c.key,
                "instance": c.instance,
                "kind": c.resource.kind,
                "name": c.resource.name,
                "service": c.resource.service,
                "reason": c.reason,
                "effect": c.after.update_effect if c.after is not None and c.action is Action.UPDATE else "",
                "requires": list(c.requires),
                "notes": list(c.after.notes) if c.after is not None else [],
                "fields": [
                    {
                        "path": f.path,
                        "before": to_jsonable(_marked(f.before, generated)),
                        "after": to_jsonable(_marked(f.after, generated)),
                        "forces_replacement": f.forces_replace,
                    }
                    for f in c.fields
                ],
            }
            for c in plan.changes
            if c.action is not Action.NOOP
        ],
        "kept": [r.key for r in plan.kept],
        "generated": sorted(plan.generated),
    }
