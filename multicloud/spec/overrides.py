"""Merge override files onto a spec the way compose merges `-f a.yaml -f b.yaml`, keeping where each value came from.

Mappings merge key by key; a scalar or a list given by a later file replaces the earlier one, except the
lists compose merges by identity (ports by name, volumes by mount path, secrets and depends_on by value),
where a later item replaces the earlier item with the same identity and new items are appended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FieldPath = tuple[str | int, ...]
Located = tuple[str, int, int]
"""(file, line, column) of a field."""

MERGED_LISTS: dict[str, Callable[[Any], Any]] = {
    "ports": lambda item: item.get("name") if isinstance(item, dict) else item,
    "volumes": lambda item: (
        item.get("target") if isinstance(item, dict) else str(item).split(":")[1] if ":" in str(item) else item
    ),
    "secrets": lambda item: item,
    "depends_on": lambda item: item,
}
"""Lists merged item by item under a service (key name -> the identity of an item)."""


def locate_all(file: str, marks: dict[FieldPath, tuple[int, int]]) -> dict[FieldPath, Located]:
    """Every mark of one file with the file's name."""
    return {path: (file, line, column) for path, (line, column) in marks.items()}


def merge(
    base: Any, base_at: dict[FieldPath, Located], over: Any, over_at: dict[FieldPath, Located]
) -> tuple[Any, dict[FieldPath, Located]]:
    """The override `over` merged onto `base` (neither is changed) and where each merged value came from."""
    merger = _Merger(base_at, over_at)
    return merger.merge(base, over, (), (), ()), merger.out


class _Merger:
    """One merge of two documents; `out` collects the location of every field of the result."""

    def __init__(self, base_at: dict[FieldPath, Located], over_at: dict[FieldPath, Located]) -> None:
        self.base_at = base_at
        self.over_at = over_at
        self.out: dict[FieldPath, Located] = {}

    def merge(self, base: Any, over: Any, out: FieldPath, at_base: FieldPath, at_over: FieldPath) -> Any:
        """The merged value at `out`, from the base at `at_base` and the override at `at_over`."""
        if isinstance(base, dict) and isinstance(over, dict):
            self._mark(out, self.base_at.get(at_base) or self.over_at.get(at_over))
            result: dict[str, Any] = {}
            for key, value in base.items():
                if key in over:
                    result[key] = self.merge(value, over[key], (*out, key), (*at_base, key), (*at_over, key))
                else:
                    result[key] = self.copy(value, self.base_at, (*at_base, key), (*out, key))
            for key, value in over.items():
                if key not in base:
                    result[key] = self.copy(value, self.over_at, (*at_over, key), (*out, key))
            return result
        identity = MERGED_LISTS.get(str(out[-1])) if len(out) == 3 and out[0] == "services" else None
        if identity is not None and isinstance(base, list) and isinstance(over, list):
            return self._merge_list(base, over, identity, out=out, at_base=at_base, at_over=at_over)
        return self.copy(over, self.over_at, at_over, out)

    def _merge_list(
        self, base: list[Any], over: list[Any], identity: Callable[[Any], Any], *,
        out: FieldPath, at_base: FieldPath, at_over: FieldPath,
    ) -> list[Any]:
        """Items of `base`, each replaced by the override's item of the same identity, then the new items."""
        self._mark(out, self.over_at.get(at_over))
        taken: dict[Any, int] = {}
        for index, item in enumerate(over):
            taken.setdefault(_hashable(identity(item)), index)
        result: list[Any] = []
        used: set[int] = set()
        for index, item in enumerate(base):
            replacement = taken.get(_hashable(identity(item)))
            if replacement is None:
                result.append(self.copy(item, self.base_at, (*at_base, index), (*out, len(result))))
            else:
                used.add(replacement)
                result.append(self.copy(over[replacement], self.over_at, (*at_over, replacement), (*out, len(result))))
        for index, item in enumerate(over):
            if index not in used:
                result.append(self.copy(item, self.over_at, (*at_over, index), (*out, len(result))))
        return result

    def copy(self, value: Any, marks: dict[FieldPath, Located], at: FieldPath, out: FieldPath) -> Any:
        """`value` as it is, its locations (found at `at` in `marks`) recorded at `out`."""
        self._mark(out, marks.get(at))
        if isinstance(value, dict):
            return {key: self.copy(child, marks, (*at, key), (*out, key)) for key, child in value.items()}
        if isinstance(value, list):
            return [self.copy(child, marks, (*at, i), (*out, i)) for i, child in enumerate(value)]
        return value

    def _mark(self, out: FieldPath, where: Located | None) -> None:
        if where is not None:
            self.out[out] = where


def _hashable(value: Any) -> Any:
    """An identity usable as a dict key (a malformed item is its own identity; validation reports it later)."""
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value
