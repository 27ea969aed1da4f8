"""Variables: `vars:` defaults, `--var-file`, `MULTICLOUD_VAR_name`, `--var`, and `${env.NAME}` from
the environment or the `.env` beside the spec, substituted into the parsed spec before validation."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicloud import inputs
from multicloud.errors import Problem, UserError
from multicloud.spec.dotenv import DotenvError, parse_dotenv
from multicloud.spec.messages import dotted
from multicloud.spec.models import SourceMap
from multicloud.spec.placeholders import (
    PLACEHOLDER_FIELDS,
    EnvRef,
    LoadTimeRef,
    PlaceholderSyntaxError,
    VarRef,
    interpolate,
)

FieldPath = tuple[str | int, ...]
ENV_PREFIX = "MULTICLOUD_VAR_"
DOTENV = ".env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Variables:
    """Where variable values come from besides the spec's `vars:` defaults; later sources win:
    defaults, then `MULTICLOUD_VAR_name`, then each var file in order, then `values` (`--var`).
    `environ` (default: the process environment) also answers `${env.NAME}` before the `.env` file."""

    values: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[str | os.PathLike[str]] = ()
    environ: Mapping[str, str] | None = None


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a `--var name=value` argument; raise UserError when it is not one."""
    name, sep, value = text.partition("=")
    if not sep or not _NAME.fullmatch(name):
        raise UserError(f"--var {text!r}: expected name=value (a name of letters, digits and '_')")
    return name, value


class _Lookup:
    """Answers `${vars.x}` and `${env.X}` for one spec, remembering what it could not answer."""

    def __init__(self, values: dict[str, str | None], environ: Mapping[str, str], dotenv: Path) -> None:
        self.values = values
        self.environ = environ
        self.dotenv_path = dotenv
        self.dotenv: dict[str, str] | None = None
        self.problems: list[Problem] = []

    def __call__(self, ref: LoadTimeRef) -> str:
        if isinstance(ref, VarRef):
            if ref.name not in self.values:
                known = ", ".join(sorted(self.values)) or "none are declared under vars:"
                raise LookupError(f"${{vars.{ref.name}}}: unknown variable (known: {known})")
            value = self.values[ref.name]
            if value is None:
                raise LookupError(
                    f"${{vars.{ref.name}}}: variable is not set and has no default "
                    f"(--var {ref.name}=..., --var-file, or {ENV_PREFIX}{ref.name})"
                )
            return value
        return self._env(ref)

    def _env(self, ref: EnvRef) -> str:
        value = self.environ.get(ref.name)
        if value is None:
            value = self._read_dotenv().get(ref.name)
        if ref.default is not None and (value is None or (ref.empty_is_unset and value == "")):
            return ref.default
        if value is None and self.problems:
            return ""  # the unreadable .env is the problem reported
        if value is None:
            raise LookupError(
                f"${{env.{ref.name}}}: environment variable {ref.name} is not set (nor in {self.dotenv_path}); "
                f"set it or give a default: ${{env.{ref.name}:-DEFAULT}}"
            )
        return value

    def _read_dotenv(self) -> dict[str, str]:
        """The `.env` beside the spec, read once and only when `${env...}` needs it; a bad line is a
        problem at its line (and the file then counts as empty)."""
        if self.dotenv is None:
            self.dotenv = {}
            try:
                data = self.dotenv_path.read_bytes()
                inputs.note_file(self.dotenv_path, data)
                text = data.decode("utf-8")
            except FileNotFoundError:
                inputs.note_file(self.dotenv_path, None)
                return self.dotenv
            except (OSError, UnicodeDecodeError) as exc:
                self.problems.append(Problem(str(self.dotenv_path), 1, 1, "", f"cannot read: {exc}"))
                return self.dotenv
            try:
                self.dotenv = parse_dotenv(text, self.environ)
            except DotenvError as exc:
                self.problems.append(Problem(str(self.dotenv_path), exc.line, 1, "", str(exc)))
        return self.dotenv


def substitute_variables(data: dict[str, Any], source: SourceMap, variables: Variables) -> list[Problem]:
    """Replace `${vars.x}` and `${env.X}` in every string value of a parsed spec, in place; return
    the problems (unknown or unset variables, bad var files or `.env` lines) with file and line.
    Raise UserError for a `--var` the spec does not declare."""
    problems: list[Problem] = []

    def at(path: FieldPath, message: str) -> None:
        problems.append(Problem(*source.where(path), dotted(path), message))

    declared = _declared(data.get("vars"), at)
    environ = inputs.environ() if variables.environ is None else variables.environ
    values: dict[str, str | None] = dict(declared)
    values.update({n: environ[ENV_PREFIX + n] for n in declared if ENV_PREFIX + n in environ})
    for var_file in variables.files:
        problems += _read_var_file(os.fspath(var_file), declared, values)
    for name, value in variables.values.items():
        if name not in declared:
            raise UserError(f"--var {name}: {source.path} declares no such variable under vars:{_known(declared)}")
        values[name] = value
    lookup = _Lookup(values, environ, Path(source.base_dir, DOTENV))

    def walk(node: Any, path: FieldPath) -> Any:
        if isinstance(node, dict):
            for key, child in node.items():
                if path or key != "vars":
                    node[key] = walk(child, (*path, key))
        elif isinstance(node, list):
            node[:] = [walk(child, (*path, i)) for i, child in enumerate(node)]
        elif isinstance(node, str) and "${" in node:
            try:
                return interpolate(node, lookup, escape=_resolved_later(path))
            except (PlaceholderSyntaxError, LookupError) as exc:
                at(path, str(exc))
        return node

    walk(data, ())
    return problems + lookup.problems


def _declared(section: Any, at: Any) -> dict[str, str | None]:
    """The `vars:` section as name -> default text (None: no default); shape problems reported."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        at(("vars",), "vars must be a mapping of names to default values")
        return {}
    declared: dict[str, str | None] = {}
    for name, value in section.items():
        if not _NAME.fullmatch(name):
            at(("vars", name), "a variable name is letters, digits and '_', not starting with a digit")
        elif isinstance(value, dict | list):
            at(("vars", name), "a default must be a single value (text, number or true/false), or empty for none")
        else:
            declared[name] = _text(value)
    return declared


def _read_var_file(path: str, declared: Mapping[str, Any], values: dict[str, str | None]) -> list[Problem]:
    """Read a var file (a YAML mapping of names to values) into values; return its problems."""
    from multicloud.errors import SpecError
    from multicloud.spec.loader import parse_yaml

    try:
        raw = Path(path).read_bytes()
        inputs.note_file(path, raw)
        data, marks = parse_yaml(raw.decode("utf-8"), path)
    except SpecError as exc:
        return exc.problems
    except FileNotFoundError:
        inputs.note_file(path, None)
        return [Problem(path, 1, 1, "", "var file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, 1, 1, "", f"cannot read var file: {exc}")]
    if not isinstance(data, dict):
        return [Problem(path, 1, 1, "", "a var file is a mapping of variable names to values")]
    problems: list[Problem] = []
    for name, value in data.items():
        line, column = marks.get((name,), (1, 1))
        if name not in declared:
            message = f"variable {name!r} is not declared under vars:{_known(declared)}"
            problems.append(Problem(path, line, column, name, message))
        elif isinstance(value, dict | list) or value is None:
            message = "a variable's value is a single value (text, number or true/false)"
            problems.append(Problem(path, line, column, name, message))
        else:
            values[name] = _text(value)
    return problems


def _resolved_later(path: FieldPath) -> bool:
    """Whether a field's placeholders are resolved per target later (service env, command, entrypoint)."""
    if len(path) >= 3 and path[0] == "services":
        return path[2] in PLACEHOLDER_FIELDS
    return len(path) >= 5 and path[0] == "targets" and path[2] == "overrides" and path[4] in PLACEHOLDER_FIELDS


def _text(value: Any) -> str | None:
    """A YAML scalar as variable text: true/false for booleans, None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _known(names: Mapping[str, Any]) -> str:
    listed = ", ".join(sorted(names))
    return f" (declared: {listed})" if listed else " (none are declared)"
