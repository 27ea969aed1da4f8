"""The planner: a pure function of desired and observed resources to an ordered Plan."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from multicloud.errors import UserError
from multicloud.resources import Resource, to_jsonable


class Action(Enum):
    """What a step does to a resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


@dataclass(frozen=True)
class FieldChange:
    """One property that differs, and whether that difference forces a replacement."""

    path: str
    before: Any
    after: Any
    forces_replace: bool = False


@dataclass(frozen=True)
class Change:
    """One step of a plan: a resource, what happens to it, and why.

    REPLACE is planned and shown as one step; the engine carries it out as a CREATE and a
    DELETE ordered by the resource's `replace_mode`, so providers only create, update and
    delete. `instance` is set on the steps that remove one of several coexisting instances
    of a key (see `Resource.instance`)."""

    action: Action
    key: str
    before: Resource | None
    after: Resource | None
    fields: tuple[FieldChange, ...] = ()
    requires: tuple[str, ...] = ()
    reason: str = ""
    instance: str = ""

    @property
    def resource(self) -> Resource:
        """The resource this step is about (the desired one unless it is a delete)."""
        found = self.after or self.before
        assert found is not None
        return found

    @property
    def id(self) -> str:
        """The step's name within a plan (what `requires` lists): the key, plus `#instance`
        for the removal of one of several instances."""
        return f"{self.key}#{self.instance}" if self.instance else self.key


KNOWN_AFTER_APPLY = "(known after apply)"
"""How a plan shows a secret value it generates (and a saved plan records it and each digest of its stand-in)."""


@dataclass(frozen=True)
class Plan:
    """Ordered steps to take an app on a target from what exists to what is desired."""

    app: str
    target: str
    changes: tuple[Change, ...]
    kept: tuple[Resource, ...] = field(default=())
    generated: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Secret name -> digest of the value this plan generated for it, which no store holds yet (applying this
    plan keeps it; any other plan draws another): shown as known after apply."""

    @property
    def has_changes(self) -> bool:
        """True when applying would change anything."""
        return any(c.action is not Action.NOOP for c in self.changes)

    def counts(self) -> dict[str, int]:
        """Number of steps per action."""
        result = {a.value: 0 for a in Action}
        for change in self.changes:
            result[change.action.value] += 1
        return result


def diff(desired: Resource | None, observed: Resource | None) -> Change:
    """Compare one desired resource with what exists; both None is an error. An observed
    resource with faults is replaced even when its properties match."""
    if desired is None and observed is None:
        raise ValueError("diff needs a desired or an observed resource")
    if observed is None:
        assert desired is not None
        return Change(Action.CREATE, desired.key, None, desired, reason="does not exist")
    if desired is None:
        return Change(Action.DELETE, observed.key, observed, None, reason="no longer in the spec")
    fields = tuple(field_changes(desired, observed))
    forced = [f.path for f in fields if f.forces_replace]
    if forced:
        reason = f"{', '.join(forced)} cannot change in place ({desired.replace_mode})"
        return Change(Action.REPLACE, desired.key, observed, desired, fields, reason=reason)
    if observed.faults:
        return Change(Action.REPLACE, desired.key, observed, desired, fields, reason="; ".join(observed.faults))
    if not fields:
        return Change(Action.NOOP, desired.key, observed, desired)
    return Change(Action.UPDATE, desired.key, observed, desired, fields, reason="changed in place")


def field_changes(desired: Resource, observed: Resource) -> Iterator[FieldChange]:
    """The leaf properties in which observed differs from desired, each saying whether it
    forces a replacement."""
    return _field_changes(desired.properties, observed.properties, desired.replace_on)


def choose(desired: Resource | None, instances: Sequence[Resource]) -> tuple[Resource | None, list[Resource]]:
    """Split the instances of one key into the one a plan keeps (without faults, closest to
    desired, newest on ties: providers list oldest first) and the stale rest. Pure."""
    if not instances:
        return None, []
    if desired is None:
        return instances[0], list(instances[1:])

    def distance(i: int) -> tuple[bool, bool, int, int]:
        fields = list(field_changes(desired, instances[i]))
        return bool(instances[i].faults), any(f.forces_replace for f in fields), len(fields), -i

    best = min(range(len(instances)), key=distance)
    return instances[best], [r for i, r in enumerate(instances) if i != best]


def plan(
    app: str,
    target: str,
    desired: Sequence[Resource],
    observed: Sequence[Resource],
    *,
    delete_persistent: bool = False,
) -> Plan:
    """Return the ordered plan from observed to desired; persistent resources are kept
    unless `delete_persistent`, which also allows replacing them (otherwise that raises
    UserError). Several observed instances of a key: one is diffed (see `choose`), each
    other one gets its own delete step. Pure: raises ValueError on duplicate desired keys,
    duplicate instances, dangling keys and desired cycles."""
    wanted = _index(desired, "desired")
    current: dict[str, Resource] = {}
    stale: dict[str, list[Resource]] = {}
    for key, found in _instances(observed).items():
        kept_one, others = choose(wanted.get(key), found)
        assert kept_one is not None
        current[key], stale[key] = kept_one, others
    for resource in desired:
        for dep in resource.depends_on:
            if dep not in wanted:
                raise ValueError(f"{resource.key} depends on {dep}, which is not desired")
    changes: dict[str, Change] = {}
    for key in _topological(wanted):
        changes[key] = diff(wanted[key], current.get(key))
        for extra in stale.get(key, ()):
            changes[f"{key}#{extra.instance}"] = _remove_stale(extra)
    if not delete_persistent:
        _refuse_replacing_persistent(changes.values())
    kept: list[Resource] = []
    removed = {k: r for k, r in current.items() if k not in wanted}
    # Observed dependencies may be stale or even circular; deletes follow one fixed order.
    delete_order = list(reversed(_topological(removed, strict=False)))
    for key in delete_order:
        if removed[key].persistent and not delete_persistent:
            kept += [removed[key], *stale[key]]
            continue
        changes[key] = diff(None, removed[key])
        for extra in stale[key]:
            changes[f"{key}#{extra.instance}"] = _remove_stale(extra)
    position = {key: i for i, key in enumerate(delete_order)}
    users: dict[str, list[str]] = {}
    for key, resource in current.items():
        for instance in (resource, *stale[key]):
            step = f"{key}#{instance.instance}" if instance is not resource else key
            for dep in instance.depends_on:
                users.setdefault(dep, []).append(step)

    extras = {key: [f"{key}#{r.instance}" for r in found] for key, found in stale.items()}
    acting = {k for k, c in changes.items() if c.action is not Action.NOOP}
    order = Order(wanted, dependents(wanted.values()), users, extras, position, acting)
    ordered = [_with_requires(c, changes, order) for c in changes.values()]
    return Plan(app, target, tuple(ordered), tuple(kept))


def _remove_stale(instance: Resource) -> Change:
    """The step that removes one instance beside the one a plan keeps."""
    reason = "; ".join(instance.faults) or "a second instance (an interrupted replace left it)"
    return Change(Action.DELETE, instance.key, instance, None, reason=reason, instance=instance.instance)


def _refuse_replacing_persistent(changes: Iterable[Change]) -> None:
    """A replacement deletes what a persistent resource holds: refuse it unless asked."""
    doomed = [
        c
        for c in changes
        if c.action is Action.REPLACE and (c.resource.persistent or (c.before is not None and c.before.persistent))
    ]
    if doomed:
        lines = "; ".join(f"{c.key} ({c.reason})" for c in doomed)
        raise UserError(
            f"persistent resources would be replaced, deleting their data: {lines}",
            hint="revert the change, or destroy with volumes and apply again to start them empty",
        )


@dataclass(frozen=True)
class Order:
    """What ordering the steps of a plan needs: desired resources, the desired keys that use
    each key, the steps of the instances that use each key, the stale-instance steps of each
    key, each removed key's place in the delete order, the steps that act."""

    wanted: Mapping[str, Resource]
    dependents: Mapping[str, list[str]]
    users: Mapping[str, list[str]]
    stale: Mapping[str, list[str]]
    position: Mapping[str, int]
    acting: set[str]


def _with_requires(change: Change, changes: Mapping[str, Change], order: Order) -> Change:
    """Set what a step waits for. A delete waits for the deletes of what used it (earlier in
    the delete order) and for the changes of desired resources that used it until now. The
    removal of a stale instance of a desired key runs after that key's step and the steps of
    what uses it when the key is replaced create-before-delete, before it otherwise."""
    wanted, acting, position = order.wanted, order.acting, order.position
    mine = wanted.get(change.key)
    if change.instance and mine is not None:
        if mine.replace_mode == "create-before-delete":  # and after what uses the key has moved
            users = list(order.dependents.get(change.key, ()))
            users += [step for user in users for step in order.stale.get(user, ())]
            requires: tuple[str, ...] = tuple(s for s in (change.key, *sorted(users)) if s in acting)
        else:
            requires = ()
    elif change.action is Action.DELETE:
        here = position[change.key]
        requires = tuple(
            sorted(
                user
                for user in order.users.get(change.key, ())
                if user in acting and (changes[user].key in wanted or position[changes[user].key] < here)
            )
        )
    else:
        assert mine is not None
        requires = tuple(d for d in mine.depends_on if d in acting)
        if mine.replace_mode == "delete-before-create":
            requires += tuple(step for step in order.stale.get(change.key, ()) if step in acting)
    if requires == change.requires:
        return change
    return replace(change, requires=requires)


def dependents(resources: Iterable[Resource]) -> dict[str, list[str]]:
    """The keys of the resources that depend on each key, in the order given. The one ordering
    rule of old instances: the old instance of a key goes only after those of what used it
    (a plan's stale instances, an apply's sweep). Pure."""
    found: dict[str, list[str]] = {}
    for resource in resources:
        for dep in resource.depends_on:
            found.setdefault(dep, []).append(resource.key)
    return found


def retire_order(acting: Iterable[Change]) -> list[Change]:
    """The sweep steps of the keys an apply created or changed, each waiting for the sweeps of
    the keys that depend on it (see `dependents`). Pure."""
    kept = [c for c in acting if c.after is not None and not c.instance]
    users = dependents(c.after for c in kept if c.after is not None)
    return [replace(c, requires=tuple(sorted(users.get(c.key, ())))) for c in kept]


def _index(resources: Sequence[Resource], what: str) -> dict[str, Resource]:
    index: dict[str, Resource] = {}
    for resource in resources:
        if resource.key in index:
            raise ValueError(f"{what} resources contain {resource.key} twice")
        index[resource.key] = resource
    return index


def _instances(resources: Sequence[Resource]) -> dict[str, list[Resource]]:
    """Observed resources by key, in the provider's order; instances of a key must differ."""
    found: dict[str, list[Resource]] = {}
    for resource in resources:
        same = found.setdefault(resource.key, [])
        if any(r.instance == resource.instance for r in same):
            raise ValueError(f"observed resources contain {resource.key} twice (instance {resource.instance!r})")
        same.append(resource)
    return found


def _topological(resources: Mapping[str, Resource], *, strict: bool = True) -> list[str]:
    """Order keys so dependencies come first; ties keep a stable, sorted order. A cycle raises
    ValueError when `strict`, else the edge that closes it is ignored. Iterative, so long
    dependency chains cannot exhaust the stack."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()
    for root in sorted(resources):
        if root in done:
            continue
        visiting.add(root)
        stack = [(root, iter(sorted(resources[root].depends_on)))]
        while stack:
            key, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                visiting.discard(key)
                done.add(key)
                order.append(key)
            elif dep in visiting:
                if strict:
                    raise ValueError(f"dependency cycle through {dep}")
            elif dep in resources and dep not in done:
                visiting.add(dep)
                stack.append((dep, iter(sorted(resources[dep].depends_on))))
    return order


def _same(before: Any, after: Any) -> bool:
    """Equal as JSON would store them: a tuple equals a list, secrets compare by digest."""
    return bool(before == after) or to_jsonable(before) == to_jsonable(after)


def _field_changes(
    desired: Mapping[str, Any], observed: Mapping[str, Any], replace_on: frozenset[str]
) -> Iterator[FieldChange]:
    for name in sorted(set(desired) | set(observed)):
        before, after = observed.get(name), desired.get(name)
        if not _same(before, after):
            forces = name in replace_on
            for path, old, new in _leaf_diffs(name, before, after):
                yield FieldChange(path, old, new, forces)


def _leaf_diffs(path: str, before: Any, after: Any) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            if not _same(before.get(key), after.get(key)):
                yield from _leaf_diffs(f"{path}.{key}", before.get(key), after.get(key))
    elif isinstance(before, list | tuple) and isinstance(after, list | tuple) and len(before) == len(after):
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            if not _same(old, new):
                yield from _leaf_diffs(f"{path}[{i}]", old, new)
    else:
        yield path, before, after
