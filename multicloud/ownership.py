"""Which target a resource belongs to: desired resources are stamped with it, and an app's
resources that another target of the same name made are never planned against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from multicloud.errors import UserError
from multicloud.resources import Resource


def stamped(resources: Sequence[Resource], target: str) -> list[Resource]:
    """The desired resources, each marked as the target's (providers label what they create with it)."""
    return [replace(r, target=target) for r in resources]


def refuse_foreign(app: str, target: str, observed: Sequence[Resource]) -> None:
    """Raise UserError when another target made any of the app's observed resources (unlabelled
    ones count as this target's); touches nothing."""
    others = sorted({r.target for r in observed if r.target and r.target != target})
    if not others:
        return
    theirs = [r.key for r in observed if r.target in others]
    raise UserError(
        f"app {app!r} here belongs to target {others[0]!r} ({len(theirs)} resources, e.g. {theirs[0]}), "
        f"not to target {target!r}",
        hint=f"give target {target!r} an app name of its own (targets.{target}.app) so both can coexist",
    )
