"""Plain-words messages for pydantic validation errors, with the field path they concern."""

from __future__ import annotations

import difflib
import re
import types
from collections import abc
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

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


def describe(error: ErrorDetails, data: Any, root: type[BaseModel] | None = None) -> tuple[FieldPath, str]:
    """Return the data path an error concerns and a message a person can act on; unknown
    fields get a did-you-mean from the model (root: the spec's unless given) at their place."""
    path = data_path(error["loc"], data)
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        message = f"unknown field {path[-1]!r}" + _suggestion(path, root)
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


def _suggestion(path: FieldPath, root: type[BaseModel] | None) -> str:
    if root is None:
        from multicloud.spec.models import Spec

        root = Spec
    model = model_at(root, path[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(path[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def model_at(root: type[BaseModel], path: FieldPath) -> type[BaseModel] | None:
    """The model that describes the mapping at a data path, found by walking field types
    (lists and dicts by their items); None where the path leaves the models."""
    node: Any = root
    for part in path:
        model = _model_in(node)
        if model is not None:
            field = model.model_fields.get(str(part))
            if field is None:
                return None
            node = field.annotation
            continue
        container = _container_in(node)
        if container is None:
            return None
        node = container
    return _model_in(node)


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of a type: Annotated and Optional/union stripped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model among a type's alternatives, if one is."""
    for option in _unwrap(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _container_in(annotation: Any) -> Any:
    """The item type of a list or the value type of a dict among a type's alternatives."""
    for option in _unwrap(annotation):
        if get_origin(option) in (list, dict, tuple, abc.Mapping, abc.Sequence):
            args = get_args(option)
            return args[-1] if args else None
    return None


_PLAIN_KEY = re.compile(r"^[^\s.\[\]'\"]+$")


def dotted(path: FieldPath) -> str:
    """A field path as people write it: services.web.ports[0]; odd keys quoted: env['A B']."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            text += f"[{part!r}]" if text else repr(part)
        else:
            text += f".{part}" if text else part
    return text


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
