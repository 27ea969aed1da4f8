"""The spec reference page, generated from the spec's JSON Schema (so from the models): every field
with its type, default, description and an example, and each installed provider's target settings.

Examples are the first value found at the field's place in the example specs and the docs' YAML
(`example_sources`), else the schema's own example, else its default, else one made from its type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from multicloud.spec.models import IDENTIFIER_PATTERN, NAME_PATTERN, TARGET_RESERVED, VOLUME_SHORT_FORM
from multicloud.spec.units import DURATION_PATTERN, MEMORY_PATTERN

PATTERNS = {  # pattern -> (what it means, an example)
    NAME_PATTERN: ("a name: a-z, 0-9 and -, starting with a letter", "web"),
    IDENTIFIER_PATTERN: ("letters, digits, _ and -, starting with a letter", "data"),
    MEMORY_PATTERN: ("a size such as 512Mi", "512Mi"),
    DURATION_PATTERN: ("a duration such as 10s", "10s"),
    VOLUME_SHORT_FORM: ("NAME:/path or NAME:/path:ro", "data:/var/lib/data"),
    r"^/": ("an absolute path", "/data"),
}

Path_ = tuple[Any, ...]
"""A field's place: keys, "*" for any key of a map, "[]" for any item of a list, and
("provider", NAME) for a target of that provider."""


@dataclass(frozen=True)
class Row:
    """One documented field."""

    name: str
    type: str
    default: str
    description: str
    example: str


@dataclass
class Section:
    """The fields of one object (a model), found at one or more places in the file."""

    anchor: str
    title: str
    places: list[str]
    description: str
    rows: list[Row] = field(default_factory=list)


class Reference:
    """Walks a schema into sections; examples come from `examples` (parsed spec documents)."""

    def __init__(self, schema: Mapping[str, Any], examples: Sequence[Any] = ()) -> None:
        self.schema = schema
        self.defs: Mapping[str, Any] = schema.get("$defs", {})
        self.examples = examples
        self.sections: dict[str, Section] = {}

    def build(self) -> list[Section]:
        """Every section, the file's top level first, then in the order the fields lead to them."""
        self._section("spec", "multicloud.yaml", (), self.schema, top=True)
        return list(self.sections.values())

    def _resolve(self, schema: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
        """A schema with its $ref followed: (the definition's name or None, the schema)."""
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return name, self.defs[name]
        return None, schema

    def _section(self, name: str, title: str, path: Path_, schema: Mapping[str, Any], *, top: bool = False) -> str:
        """Document an object's properties once (later places are added to its section); its anchor."""
        anchor = _anchor(name)
        place = "(top level)" if top else _place(path)
        if anchor in self.sections:
            if place not in self.sections[anchor].places:
                self.sections[anchor].places.append(place)
            return anchor
        section = Section(anchor, title, [place], str(schema.get("description", "")))
        self.sections[anchor] = section
        required = set(schema.get("required", ()))
        for key, prop in schema.get("properties", {}).items():
            if prop is True:  # the core's target keys, re-allowed by a provider's settings rule
                continue
            section.rows.append(self._row(key, (*path, key), prop, key in required))
        for provider, settings in _provider_rules(schema):
            rule_path = (*path[:-1], ("provider", provider))
            self._section(f"settings-{provider}", f"{provider} target settings", rule_path, settings)
        return anchor

    def _row(self, key: str, path: Path_, prop: Mapping[str, Any], required: bool) -> Row:
        _, resolved = self._resolve(prop)
        description = str(prop.get("description") or resolved.get("description") or "")
        kind = self._type(prop, path)
        if required:
            default = "required"
        elif "default" in prop:
            default = _code(prop["default"])
        else:
            default = _empty_default(resolved)
        return Row(key, kind, default, description, _code(self._example(path, prop)))

    def _type(self, schema: Mapping[str, Any], path: Path_) -> str:
        """A short type for people, linking to the section of each object it holds."""
        name, schema = self._resolve(schema)
        if name is not None and "properties" in schema:
            return f"[{_title(name)}](#{self._section(name, _title(name), path, schema)})"
        if _variants(schema):
            parts = [self._type(part, path) for part in _variants(schema) if part.get("type") != "null"]
            return " or ".join(dict.fromkeys(parts))
        if "const" in schema:
            return _code(schema["const"])
        if "enum" in schema:
            return "one of " + ", ".join(_code(v) for v in schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " or ".join(str(k) for k in kind if k != "null")
        if kind == "array":
            return "list of " + self._type(schema.get("items", {}), (*path, "[]"))
        if kind == "object" or "patternProperties" in schema:
            values = _map_values(schema)
            if values is None:
                return "mapping"
            return "map of NAME to " + self._type(values, (*path, "*"))
        if kind in ("string", "integer", "number"):
            return str(kind) + _bounds(schema)
        return str(kind or "any")

    def _example(self, path: Path_, prop: Mapping[str, Any]) -> Any:
        """The first value at path in the example documents, else the schema's example, default or type's."""
        for document in self.examples:
            for value in values_at(document, path):
                if "..." not in json.dumps(value):  # an elided value in the docs is no example
                    return value
        _, resolved = self._resolve(prop)
        for schema in (prop, resolved, *_variants(prop)):
            if schema.get("examples"):
                return schema["examples"][0]
        if prop.get("default") not in (None, [], {}):
            return prop["default"]
        return _made_up(prop, self._resolve)


def values_at(document: Any, path: Path_) -> Iterator[Any]:
    """Every value at path in a parsed document ("*" any map key, "[]" any list item,
    ("provider", NAME) any map value whose provider is NAME)."""
    if not path:
        yield document
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        children = document if isinstance(document, list) else []
    elif not isinstance(document, dict):
        children = []
    elif head == "*":
        children = list(document.values())
    elif isinstance(head, tuple):
        children = [v for v in document.values() if isinstance(v, dict) and v.get(head[0]) == head[1]]
    else:
        children = [document[head]] if head in document and document[head] is not None else []
    for child in children:
        yield from values_at(child, rest)


def _provider_rules(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The (provider, settings schema) of each `if provider == NAME then …` rule of a target."""
    for rule in schema.get("allOf", ()):
        const = rule.get("if", {}).get("properties", {}).get("provider", {}).get("const")
        if const is not None:
            then = dict(rule["then"])
            then["properties"] = {k: v for k, v in then.get("properties", {}).items() if k not in TARGET_RESERVED}
            yield str(const), then


def _variants(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The alternatives of a union (anyOf, oneOf, or a lone allOf wrapping a $ref), [] for none."""
    if "anyOf" in schema or "oneOf" in schema:
        return list(schema.get("anyOf") or schema.get("oneOf") or ())
    every: list[Mapping[str, Any]] = list(schema.get("allOf") or [])
    return every if len(every) == 1 and "$ref" in every[0] else []


def _map_values(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of a map's values, None for an open mapping of anything."""
    patterns = schema.get("patternProperties") or {}
    if patterns:
        return next(iter(patterns.values()))  # type: ignore[no-any-return]
    values = schema.get("additionalProperties")
    return values if isinstance(values, dict) else None


def _bounds(schema: Mapping[str, Any]) -> str:
    """Limits of a number or string, e.g. " (0 to 1000)", " (> 0, at most 64)", " (pattern `…`)"."""
    low = schema.get("minimum")
    above = schema.get("exclusiveMinimum")
    high = schema.get("maximum")
    if low is not None and high is not None:
        return f" ({low} to {high})"
    parts = [f"> {above}" if above is not None else "", f"at least {low}" if low is not None else "",
             f"at most {high}" if high is not None else ""]
    pattern = schema.get("pattern")
    if pattern:
        parts.append(PATTERNS[pattern][0] if pattern in PATTERNS else f"matching `{pattern}`")
    if schema.get("minLength"):
        parts.append("not empty")
    shown = [p for p in parts if p]
    return f" ({', '.join(shown)})" if shown else ""


def _empty_default(schema: Mapping[str, Any]) -> str:
    """What an omitted field without a schema default holds: empty, or its own fields' defaults."""
    if "properties" in schema:
        return "its fields' defaults"
    if schema.get("type") == "array":
        return "`[]`"
    if schema.get("type") == "object":
        return "`{}`"
    return "none"


def _made_up(schema: Mapping[str, Any], resolve: Any) -> Any:
    """A value of the schema's type, for a field no example document shows."""
    _, schema = resolve(schema)
    if _variants(schema):
        return _made_up(next(p for p in _variants(schema) if p.get("type") != "null"), resolve)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("pattern") in PATTERNS:
        return PATTERNS[schema["pattern"]][1]
    if "items" in schema:
        return [_made_up(schema["items"], resolve)]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    made: dict[str, Any] = {"boolean": True, "integer": schema.get("minimum", 1), "number": 1.0,
                            "array": [], "object": {}}
    return made.get(str(kind), "…")


def _code(value: Any) -> str:
    """A value as inline code, written as YAML flow reads it; long values are shortened."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) or value else '""'
    if isinstance(value, str) and value and re.fullmatch(r"[\w./:${}@-]+", value) and not _ambiguous(value):
        text = value
    if len(text) > 60:
        text = text[:57] + "…"
    return "`" + text.replace("`", "'") + "`"


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: one line, its pipes escaped outside code (inside code a table
    row does not split, and a backslash there would show)."""
    parts = re.split(r"(`[^`]*`)", text.replace("\n", " "))
    return "".join(part if part.startswith("`") else part.replace("|", "\\|") for part in parts)


def _ambiguous(text: str) -> bool:
    """True where YAML would read plain text as something else (a number, a bool, null)."""
    return not isinstance(yaml.safe_load(text), str)


def _place(path: Path_) -> str:
    """A field's place as people write it: services.NAME.ports[], targets.NAME (provider: aws-ecs)."""
    text = ""
    for part in path:
        if part == "[]":
            text += "[]"
        elif part == "*":
            text += ".NAME"
        elif isinstance(part, tuple):
            text += f".NAME (provider: {part[1]})"
        else:
            text += f".{part}"
    return text.lstrip(".")


def _title(name: str) -> str:
    """A definition's title: its model's name (a provider's own models: "Registry (azure-aci)")."""
    if name.startswith("settings."):
        provider, _, model = name.removeprefix("settings.").rpartition(".")
        return f"{model} ({provider})"
    return name


def _anchor(name: str) -> str:
    """A heading anchor as mkdocs' toc makes it from a plain word."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


def example_sources(root: Path) -> list[Any]:
    """The example specs, then every YAML block of the docs that parses to a mapping."""
    found: list[Any] = []
    for path in sorted(root.glob("examples/*/multicloud*.yaml")):
        found.append(yaml.safe_load(path.read_text(encoding="utf-8")))
    for path in sorted(root.glob("docs/**/*.md")):
        for block in re.findall(r"```ya?ml\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            try:
                document = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(document, dict) and document and all(
                isinstance(v, dict) and "provider" in v for v in document.values()
            ):
                document = {"targets": document}  # a fragment of target entries
            found.append(document)
    return [document for document in found if isinstance(document, dict)]


def markdown(sections: Sequence[Section]) -> str:
    """The reference as Markdown: one heading and table per section."""
    lines: list[str] = []
    for section in sections:
        lines += [f"## {section.title} {{#{section.anchor}}}", ""]
        lines += [f"At: {', '.join(f'`{p}`' for p in section.places)}.", ""]
        if section.description:
            lines += [section.description, ""]
        if not section.rows:
            lines += ["No fields of its own.", ""]
            continue
        lines += ["| field | type | default | description | example |", "|---|---|---|---|---|"]
        for row in section.rows:
            cells = [f"`{row.name}`", row.type, row.default, row.description, row.example]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def reference_markdown(root: Path) -> str:
    """The whole reference for the installed providers, examples drawn from the repository at root."""
    from multicloud.settings import settings_models
    from multicloud.spec.schema import spec_schema

    return markdown(Reference(spec_schema(settings_models()), example_sources(root)).build())
