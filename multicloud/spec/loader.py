"""Read a spec file: YAML with line numbers, pydantic validation, cross-reference checks.

Every problem becomes a `Problem` naming file, line, column and field path; nothing
escapes as a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from multicloud import inputs
from multicloud.compiled import Cache
from multicloud.errors import Problem, SpecError
from multicloud.spec.files import MAX_SPEC_BYTES, UnreadableFileError, decode, read_limited
from multicloud.spec.messages import describe, dotted
from multicloud.spec.models import Mark, SourceMap, Spec
from multicloud.spec.overrides import Located, locate_all, merge
from multicloud.spec.references import check_references
from multicloud.spec.variables import Variables, substitute_variables

FieldPath = tuple[str | int, ...]
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], variables: Variables | None = None
) -> Spec:
    """Read and validate a spec file, its variables substituted; raise SpecError listing every problem found.
    Given several files, later ones override earlier ones as compose's override files do (relative paths
    stay relative to the first file's directory) and each problem names the file its field came from.
    A valid spec is kept compiled (multicloud.compiled) and reused while every file and variable it was
    read from is unchanged; a spec with problems is never kept, so errors always come from a fresh read."""
    files = [os.fspath(path)] if isinstance(path, str | os.PathLike) else [os.fspath(p) for p in path]
    if not files:
        raise SpecError([Problem("<none>", 1, 1, "", "no spec file given")])
    cache = Cache.open() if variables is None or variables.environ is None else None
    if cache is None:
        return _load_files(files, variables)
    given = variables or Variables()
    var_files = [os.path.abspath(f) for f in given.files]
    name = cache.name("spec", os.getcwd(), files, sorted(given.values.items()), var_files)
    spec = cache.get(name)
    if isinstance(spec, Spec):
        return spec
    with inputs.recording(cache.key) as recorder:
        spec = _load_files(files, variables)
    cache.put(name, recorder.inputs, spec)
    return spec


def _load_files(files: list[str], variables: Variables | None) -> Spec:
    """Read and validate spec files (see load), with no cache."""
    base_dir = os.path.dirname(os.path.abspath(files[0]))
    if len(files) == 1:
        return loads(read_spec_text(files[0]), file=files[0], base_dir=base_dir, variables=variables)
    data, located = merge_spec_files(files)
    source = source_map(files[0], located)
    return validate_data(data, source, variables)


def merge_spec_files(
    files: Sequence[str], data: Any = None, located: dict[FieldPath, Located] | None = None
) -> tuple[Any, dict[FieldPath, Located]]:
    """Spec files read in order, each overriding what came before it (`data`, when given) as compose's
    override files do, and the file, line and column each field was written at; SpecError at a file that
    is not a mapping."""
    located = located or {}
    for file in files:
        document, marks = parse_yaml(read_spec_text(file), file)
        if not isinstance(document, dict):
            raise SpecError([Problem(file, 1, 1, "", "the spec must be a mapping of fields (name, services...)")])
        if data is None:
            data, located = document, locate_all(file, marks)
        else:
            data, located = merge(data, located, document, locate_all(file, marks))
    return data, located


def source_map(first: str, located: dict[FieldPath, Located]) -> SourceMap:
    """Where each field of merged spec data was written: paths relative to the first file's directory,
    and the file of each field another file wrote."""
    return SourceMap(
        path=first, base_dir=os.path.dirname(os.path.abspath(first)),
        marks={p: (line, col) for p, (_, line, col) in located.items()},
        files={p: f for p, (f, _, _) in located.items() if f != first},
    )


def read_spec_text(file: str) -> str:
    """The text of a spec (or compose) file; SpecError at the file if it is missing or unreadable."""
    try:
        return decode(read_limited(file, MAX_SPEC_BYTES))
    except FileNotFoundError:
        raise SpecError([Problem(file, 1, 1, "", "file not found")]) from None
    except UnreadableFileError as exc:
        raise SpecError([Problem(file, exc.line, exc.column, "", str(exc))]) from None


def loads(text: str, *, file: str = "<string>", base_dir: str = ".", variables: Variables | None = None) -> Spec:
    """Validate spec text, its `${vars...}` and `${env...}` substituted first (from `variables`, the
    process environment and the `.env` in base_dir); raise SpecError with file:line:column for each problem."""
    data, marks = parse_yaml(text, file)
    source = SourceMap(path=file, base_dir=base_dir, marks=marks)
    if data is None:
        raise SpecError([Problem(file, 1, 1, "", "the file is empty")])
    return validate_data(data, source, variables)


def validate_data(data: Any, source: SourceMap, variables: Variables | None) -> Spec:
    """The spec of parsed data, variables substituted; SpecError with each problem's file:line:column
    (the source map says where each field was written: a spec file, or the compose file it came from)."""
    if not isinstance(data, dict):
        raise SpecError([_problem(source, (), "the spec must be a mapping of fields (name, services...)")])
    unresolved = substitute_variables(data, source, variables or Variables())
    if unresolved:
        raise SpecError(_sorted(unresolved))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_sorted([_from_pydantic(source, e, data) for e in exc.errors()])) from None
    spec._source = source
    problems = [_problem(source, p, m) for p, m in check_references(spec)]
    if problems:
        raise SpecError(_sorted(problems))
    return spec


def spec_from_dict(data: dict[str, Any], *, base_dir: str = ".", variables: Variables | None = None) -> Spec:
    """Validate a spec given as Python data (deploy scripts, tests); same checks as load."""
    return loads(yaml.safe_dump(data, sort_keys=False), file="<dict>", base_dir=base_dir, variables=variables)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[FieldPath, Mark]]:
    """Parse YAML into plain data plus the (line, column) of every key and value."""
    marks: dict[FieldPath, Mark] = {}
    loader: yaml.SafeLoader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(file, 1, 1, "", "the file is empty")])
        return _Builder(loader, marks, file).build(node, ()), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "malformed YAML"
        raise SpecError([Problem(file, line, col, "", f"YAML syntax: {problem}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML refuses, by its offset in the text
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        message = f"character {code} is not allowed in YAML ({exc.reason})"
        raise SpecError([Problem(file, line, column, "", message)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 1, 1, "", f"YAML syntax: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


MAX_DEPTH = 64
"""Deeper nesting than any spec needs is refused (it can only be a mistake or an attack)."""
MAX_NODES = 200_000
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
"""Aliases may repeat a node; a document that expands past this many values is refused."""


class _Builder:
    """Turns YAML nodes into plain data, recording where each key and value is."""

    def __init__(self, loader: yaml.SafeLoader, marks: dict[FieldPath, Mark], file: str) -> None:
        self.loader = loader
        self.marks = marks
        self.file = file
        self.open: set[int] = set()
        self.nodes = 0

    def fail(self, node: yaml.Node, path: FieldPath, message: str) -> SpecError:
        """A SpecError at a node."""
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        return SpecError([Problem(self.file, *where, dotted(path), message)])

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        """Return the data of a node; raise SpecError for what a spec cannot contain."""
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"the document expands to more than {MAX_NODES} values (aliases?)")
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            raise self.fail(node, path, f"the YAML tag {node.tag} is not supported in a spec")
        if len(path) >= MAX_DEPTH:
            raise self.fail(node, path, f"nested more than {MAX_DEPTH} levels deep")
        if id(node) in self.open:
            raise self.fail(node, path, "an alias refers to a mapping or list that contains it")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.open.discard(id(node))

    def scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        """Construct a scalar; a tag that cannot read its text (`!!int abc`) is a problem."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # PyYAML's constructors raise whatever int(), b64decode()... raise
            raise self.fail(node, path, f"cannot read {node.tag} value {node.value!r}: {exc}") from None

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        """A mapping's data; keys merged in with `<<:` give way to the mapping's own keys (and
        to earlier merges), as YAML's merge key says; a key written twice is an error."""
        own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)
        merged = len(node.value) - own
        own_names: set[str] = set()
        result: dict[str, Any] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "keys must be plain names")
            key = self.scalar(key_node, path)
            if not isinstance(key, str | int | float) or isinstance(key, bool):
                raise self.fail(key_node, path, "keys must be plain names")
            name = str(key)
            if index >= merged:
                if name in own_names:
                    raise self.fail(key_node, (*path, name), "key appears twice in this mapping")
                own_names.add(name)
            if name in result:  # an override: forget where the value it replaces was
                prefix = (*path, name)
                for stale in [m for m in self.marks if m[: len(prefix)] == prefix]:
                    del self.marks[stale]
            self.marks[(*path, name)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[name] = self.build(value_node, (*path, name))
        return result


def _from_pydantic(source: SourceMap, error: ErrorDetails, data: Any) -> Problem:
    path, message = describe(error, data)
    return _problem(source, path, message)


def _problem(source: SourceMap, path: FieldPath, message: str) -> Problem:
    return Problem(*source.where(path), dotted(path), message)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line, p.column, p.field))
