"""Plans and results for people (terraform-style + ~ -/+ -) and for machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from multicloud.planner import Action, Change, Plan
from multicloud.resources import Sensitive, to_jsonable

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


def show_value(value: Any, *, digest: bool = False) -> str:
    """Format a property value for a person; secrets show as (sensitive value), with their
    digest when `digest` (to tell two secrets apart without showing either)."""
    if value is None:
        return "(none)"
    if isinstance(value, Sensitive):
        return f"(sensitive value, digest {value.digest[:12]})" if digest else "(sensitive value)"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(to_jsonable(value), sort_keys=True)


def plan_text(plan: Plan, *, verbose: bool = False) -> str:
    """Render a plan the way terraform does, with the field-level reasons."""
    lines: list[str] = []
    for change in plan.changes:
        if change.action is Action.NOOP:
            continue
        lines.extend(_change_lines(change, verbose))
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


def _change_lines(change: Change, verbose: bool) -> list[str]:
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
            lines.append(f"      + {name}: {show_value(value)}")
    for field in change.fields:
        mark = "  # forces replacement" if field.forces_replace else ""
        lines.append(f"      ~ {field.path}: {show_value(field.before)} -> {show_value(field.after)}{mark}")
    if change.after is not None:
        lines += [f"      # {note}" for note in change.after.notes]
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    """Return a plan as JSON-ready data (secrets as digests, never values)."""
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
                        "before": to_jsonable(f.before),
                        "after": to_jsonable(f.after),
                        "forces_replacement": f.forces_replace,
                    }
                    for f in c.fields
                ],
            }
            for c in plan.changes
            if c.action is not Action.NOOP
        ],
        "kept": [r.key for r in plan.kept],
    }
