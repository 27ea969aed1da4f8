"""Read a spec file: YAML with line numbers, pydantic validation, cross-reference checks.

Every problem becomes a `Problem` naming file, line, column and field path; nothing
escapes as a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from multicloud.errors import Problem, SpecError
from multicloud.spec.models import Mark, Model, SourceMap, Spec
from multicloud.spec.references import check_references

FieldPath = tuple[str | int, ...]
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: str | os.PathLike[str]) -> Spec:
    """Read and validate a spec file; raise SpecError listing every problem found."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(file, 1, 1, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(file, 1, 1, "", f"cannot read file: {exc}")]) from None
    return loads(text, file=file, base_dir=os.path.dirname(os.path.abspath(file)))


def loads(text: str, *, file: str = "<string>", base_dir: str = ".") -> Spec:
    """Validate spec text; raise SpecError with file:line:column for each problem."""
    data, marks = parse_yaml(text, file)
    source = SourceMap(path=file, base_dir=base_dir, marks=marks)
    if not isinstance(data, dict):
        raise SpecError([_problem(source, (), "the spec must be a mapping of fields (name, services...)")])
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_sorted([_from_pydantic(source, e, data) for e in exc.errors()])) from None
    spec._source = source
    problems = [_problem(source, p, m) for p, m in check_references(spec, data)]
    if problems:
        raise SpecError(_sorted(problems))
    return spec


def spec_from_dict(data: dict[str, Any], *, base_dir: str = ".") -> Spec:
    """Validate a spec given as Python data (deploy scripts, tests); same checks as load."""
    return loads(yaml.safe_dump(data, sort_keys=False), file="<dict>", base_dir=base_dir)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[FieldPath, Mark]]:
    """Parse YAML into plain data plus the (line, column) of every key and value."""
    loader = _Loader(text)
    marks: dict[FieldPath, Mark] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(file, 1, 1, "", "the file is empty")])
        return _to_data(loader, node, (), marks, file), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "malformed YAML"
        raise SpecError([Problem(file, line, col, "", f"YAML syntax: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 1, 1, "", f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()


def _to_data(
    loader: yaml.SafeLoader, node: yaml.Node, path: FieldPath, marks: dict[FieldPath, Mark], file: str
) -> Any:
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
                raise SpecError([Problem(file, *where, _dotted(path), "keys must be plain names")])
            name = str(key)
            if name in result:
                field = _dotted((*path, name))
                raise SpecError([Problem(file, *where, field, "key appears twice in this mapping")])
            marks[(*path, name)] = where
            result[name] = _to_data(loader, value_node, (*path, name), marks, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(loader, item, (*path, i), marks, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _from_pydantic(source: SourceMap, error: ErrorDetails, data: Any) -> Problem:
    path = _data_path(error["loc"], data)
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        message = f"unknown field {path[-1]!r}" + _suggestion(path, data)
    elif kind == "missing":
        message = f"missing required field {path[-1]!r}"
    elif kind == "string_pattern_mismatch" and _is_name_field(error["loc"]):
        message = _name_message(error["loc"], error.get("input"))
    elif "input" in error and kind.endswith("_type"):
        message = f"{message} (got {type(error['input']).__name__} {_short(error['input'])})"
    return _problem(source, path, message)


def _data_path(loc: Iterable[str | int], data: Any) -> FieldPath:
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


def _suggestion(path: FieldPath, data: Any) -> str:
    model = _model_at(path[:-1], data)
    if model is None:
        return ""
    close = difflib.get_close_matches(str(path[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(path: FieldPath, data: Any) -> type[Model] | None:
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
    if loc[:1] in (("secrets",), ("volumes",)) or "secrets" in loc[-2:] or loc[-1:] == ("source",):
        rule = "letters, digits, '_' and '-', starting with a letter"
    else:
        rule = "lowercase letters, digits and '-', starting with a letter (it becomes a DNS name)"
    return f"{_short(value)} is not a valid name: use {rule}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(source: SourceMap, path: FieldPath, message: str) -> Problem:
    line, column = source.locate(path)
    return Problem(source.path, line, column, _dotted(path), message)


def _dotted(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))
