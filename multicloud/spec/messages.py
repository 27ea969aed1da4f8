"""Plain-words messages for pydantic validation errors, with the field path they concern."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic_core import ErrorDetails

from multicloud.spec.models import Model

FieldPath = tuple[str | int, ...]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
}
_YAML_TYPES = {
    "NoneType": "null",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "str": "string",
    "list": "list",
    "dict": "mapping",
}


def describe(error: ErrorDetails, data: Any) -> tuple[FieldPath, str]:
    """Return the data path an error concerns and a message a person can act on."""
    path = data_path(error["loc"], data)
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        message = f"unknown field {path[-1]!r}" + _suggestion(path, data)
    elif kind == "missing":
        message = f"missing required field {path[-1]!r}"
    elif kind == "string_pattern_mismatch" and _is_name_field(error["loc"]):
        message = _name_message(error["loc"], error.get("input"))
    elif kind in _EXPECTED and "input" in error:
        message = f"should be {_EXPECTED[kind]} (got {describe_value(error['input'])})"
    elif kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        message = "must not be empty"
    return path, message


def describe_value(value: Any) -> str:
    """Name a value's YAML type and show it briefly: `string 'abc'`, `null`."""
    kind = _YAML_TYPES.get(type(value).__name__, type(value).__name__)
    return kind if value is None else f"{kind} {short(value)}"


def data_path(loc: Iterable[str | int], data: Any) -> FieldPath:
    """Drop pydantic's internal loc parts (union branch names) that are not in the data."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
        elif isinstance(part, str) and ("[" in part or part[:1].isupper()):
            continue
        else:
            node = None
        path.append(part)
    return tuple(path)


def short(value: Any) -> str:
    """A repr cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggestion(path: FieldPath, data: Any) -> str:
    model = _model_at(path[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(path[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(path: FieldPath) -> type[Model] | None:
    from multicloud.spec import models

    shape: dict[tuple[str, ...], type[Model]] = {
        (): models.Spec,
        ("services", "*"): models.Service,
        ("services", "*", "build"): models.Build,
        ("services", "*", "ports", "*"): models.Port,
        ("services", "*", "resources"): models.Resources,
        ("services", "*", "healthcheck"): models.HealthCheck,
        ("services", "*", "volumes", "*"): models.VolumeMount,
        ("secrets", "*"): models.Secret,
    }
    pattern = tuple("*" if (i % 2 == 1 or isinstance(p, int)) else str(p) for i, p in enumerate(path))
    return shape.get(pattern)


def _is_name_field(loc: tuple[str | int, ...]) -> bool:
    return "[key]" in loc or loc[-1:] == ("name",) or "depends_on" in loc[-2:]


def _name_message(loc: tuple[str | int, ...], value: Any) -> str:
    if "env" in loc[-3:-1]:
        return f"{short(value)} is not a valid environment variable name: use letters, digits, '_', '.' and '-'"
    if loc[:1] in (("secrets",), ("volumes",)) or "secrets" in loc[-2:] or loc[-1:] == ("source",):
        rule = "letters, digits, '_' and '-', starting with a letter"
    else:
        rule = "lowercase letters, digits and '-', starting with a letter (it becomes a DNS name)"
    return f"{short(value)} is not a valid name: use {rule}"
