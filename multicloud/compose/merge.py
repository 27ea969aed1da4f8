"""Merge compose files the way `docker compose -f a.yaml -f b.yaml` does, keeping where each value came from.

Mappings merge key by key; `environment` (list or map) merges by variable; the lists compose appends
(ports, expose, volumes, secrets, env_file, profiles, depends_on) keep earlier items and add new ones;
any other list or scalar given by a later file replaces the earlier one.
"""

from __future__ import annotations

from typing import Any

FieldPath = tuple[str | int, ...]
Located = tuple[str, int, int]
APPENDED = ("ports", "expose", "volumes", "secrets", "env_file", "profiles", "depends_on")


def environment_as_map(document: Any, at: dict[FieldPath, Located]) -> None:
    """Rewrite each service's list-form `environment` (KEY=VALUE, or KEY alone: None) as a map, in place,
    moving each item's location to its key."""
    services = document.get("services") if isinstance(document, dict) else None
    for name, service in (services or {}).items() if isinstance(services, dict) else ():
        env = service.get("environment") if isinstance(service, dict) else None
        if not isinstance(env, list):
            continue
        mapping: dict[str, Any] = {}
        for index, item in enumerate(env):
            key, sep, value = str(item).partition("=")
            mapping[key] = value if sep else None
            where = at.get(("services", name, "environment", index))
            if where is not None:
                at[("services", name, "environment", key)] = where
        service["environment"] = mapping


def merge(base: Any, base_at: dict[FieldPath, Located], over: Any, over_at: dict[FieldPath, Located]
          ) -> tuple[Any, dict[FieldPath, Located]]:
    """`over` merged onto `base` as compose merges files, and where each merged value came from."""
    merger = _Merger(base_at, over_at)
    return merger.merge(base, over, ()), merger.out


class _Merger:
    """One merge of two files: their locations in, the merged locations out."""

    def __init__(self, base_at: dict[FieldPath, Located], over_at: dict[FieldPath, Located]) -> None:
        self.base_at = base_at
        self.over_at = over_at
        self.out: dict[FieldPath, Located] = {}

    def copy(self, value: Any, path: FieldPath, src: FieldPath, at: dict[FieldPath, Located]) -> Any:
        """Record where value (found at `src`) and its parts are, now placed at `path`."""
        for key, where in at.items():
            if key[: len(src)] == src:
                self.out[(*path, *key[len(src):])] = where
        return value

    def merge(self, base: Any, over: Any, path: FieldPath) -> Any:
        """One level of the merge: maps by key, appended lists by item, anything else replaced."""
        if isinstance(base, dict) and isinstance(over, dict):
            if path in self.base_at:
                self.out[path] = self.base_at[path]
            merged: dict[str, Any] = {}
            for key in {**base, **over}:
                child = (*path, key)
                if key not in over:
                    merged[key] = self.copy(base[key], child, child, self.base_at)
                elif key not in base:
                    merged[key] = self.copy(over[key], child, child, self.over_at)
                else:
                    merged[key] = self.merge(base[key], over[key], child)
                    self.out[child] = self.over_at.get(child) or self.base_at.get(child) or ("", 1, 1)
            return merged
        if isinstance(base, list) and isinstance(over, list) and path and path[-1] in APPENDED:
            items = list(self.copy(base, path, path, self.base_at))
            for index, item in enumerate(over):
                if item not in items:
                    items.append(self.copy(item, (*path, len(items)), (*path, index), self.over_at))
            return items
        for key in [k for k in self.out if k[: len(path)] == path]:
            del self.out[key]
        return self.copy(over, path, path, self.over_at)
