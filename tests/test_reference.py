"""The generated spec reference (docs site, reference/spec-fields.md) documents every field of every
model the spec reaches and every installed provider's settings, each with a type, a default and an
example; a model added later is picked up without touching the generator. The mkdocs hooks fill
the page's markers."""

from __future__ import annotations

import importlib.util
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from multicloud.settings import settings_models
from multicloud.spec.models import Model, Spec
from multicloud.spec.reference import Reference, Section, example_sources, markdown, values_at
from multicloud.spec.schema import spec_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sections() -> dict[str, Section]:
    built = Reference(spec_schema(settings_models()), example_sources(ROOT)).build()
    return {section.title: section for section in built}


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """Every model a model's fields reach (through lists, maps, unions and Annotated), by name."""
    if model.__name__ in seen:
        return seen
    seen[model.__name__] = model
    for info in model.model_fields.values():
        pending: list[Any] = [info.annotation]
        while pending:
            kind = pending.pop()
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                _models(kind, seen)
            pending.extend(typing.get_args(kind))
            if isinstance(kind, types.UnionType):
                pending.extend(kind.__args__)
    return seen


def test_every_field_of_every_model_is_documented(sections: dict[str, Section]) -> None:
    for name, model in _models(Spec, {}).items():
        title = "multicloud.yaml" if model is Spec else name
        rows = {row.name: row for row in sections[title].rows}
        for field, info in model.model_fields.items():
            key = info.alias or field
            assert key in rows, f"{title}.{key} is missing from the reference"
            row = rows[key]
            assert row.type and row.default and row.example, f"{title}.{key}: {row}"
            if info.is_required():
                assert row.default == "required"


def test_every_provider_setting_is_documented(sections: dict[str, Section]) -> None:
    for provider, model in settings_models().items():
        section = sections[f"{provider} target settings"]
        assert section.places == [f"targets.NAME (provider: {provider})"]
        names = {row.name for row in section.rows}
        assert set(model.model_fields) - {"provider"} <= names, provider
        assert all(row.example != "``" for row in section.rows)


def test_types_defaults_and_examples_read_as_people_write_them(sections: dict[str, Section]) -> None:
    port = {row.name: row for row in sections["Port"].rows}
    assert port["protocol"].type.startswith("one of `http`, `https`") and port["protocol"].default == "`tcp`"
    assert port["port"].type == "integer (1 to 65535)" and port["port"].default == "required"
    service = {row.name: row for row in sections["Service"].rows}
    assert service["ports"].type == "list of [Port](#port)" and service["ports"].default == "`[]`"
    assert service["replicas"].example == "`2`"  # ingestion's, from the IoT example
    assert service["resources"].default == "its fields' defaults"
    memory = {row.name: row for row in sections["Resources"].rows}["memory"]
    assert "a size such as 512Mi" in memory.type and memory.example == "`512Mi`"  # auth's, from the IoT example
    health = {row.name: row for row in sections["HealthCheck"].rows}
    assert health["command"].example == '`["python", "-m", "app"]`'  # the docs elide theirs as [...]
    target = sections["Target"]
    assert target.places == ["targets.NAME"]
    assert {row.name for row in target.rows} == {"provider", "app", "defaults", "overrides", "exclude"}
    assert sections["Registry (azure-aci)"].places == ["targets.NAME (provider: azure-aci).registry"]


def test_a_model_added_later_is_picked_up_without_edits() -> None:
    class Database(Model):
        """A managed database the services use."""

        engine: typing.Literal["postgres", "mysql"] = "postgres"
        """which database server"""
        size_gb: int = Field(default=20, ge=10, le=1000)

    class Grown(Spec):
        resources: dict[str, Database] = Field(default_factory=dict)
        """managed resources, by name"""

    examples = [{"resources": {"main": {"engine": "mysql"}}}]
    built = {s.title: s for s in Reference(Grown.model_json_schema(), examples).build()}
    top = {row.name: row for row in built["multicloud.yaml"].rows}
    assert top["resources"].type == "map of NAME to [Database](#database)"
    assert top["resources"].description == "managed resources, by name"
    database = built["Database"]
    assert database.places == ["resources.NAME"] and database.description == "A managed database the services use."
    rows = {row.name: row for row in database.rows}
    assert rows["engine"].example == "`mysql`" and rows["engine"].description == "which database server"
    assert rows["size_gb"].type == "integer (10 to 1000)" and rows["size_gb"].example == "`20`"


def test_values_at_follows_maps_lists_and_providers() -> None:
    document = {"services": {"a": {"ports": [{"port": 1}, {"port": 2}]}},
                "targets": {"x": {"provider": "docker", "host": "h"}, "y": {"provider": "aws-ecs", "region": "r"}}}
    assert list(values_at(document, ("services", "*", "ports", "[]", "port"))) == [1, 2]
    assert list(values_at(document, ("targets", ("provider", "aws-ecs"), "region"))) == ["r"]
    assert list(values_at(document, ("targets", ("provider", "docker"), "region"))) == []


def test_markdown_tables_escape_pipes(sections: dict[str, Section]) -> None:
    text = markdown(list(sections.values()))
    for line in text.splitlines():
        if line.startswith("| `"):
            outside_code = re.sub(r"`[^`]*`", "code", line)
            assert len(re.split(r"(?<!\\)\|", outside_code)[1:-1]) == 5, line


def _hooks() -> Any:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_hooks_fill_every_marker_of_the_docs() -> None:
    hooks = _hooks()
    pages = {p.relative_to(ROOT / "docs").as_posix(): p.read_text() for p in (ROOT / "docs").rglob("*.md")}
    marked = {name: text for name, text in pages.items() if "<!-- multicloud:" in text}
    assert set(marked) == {"index.md", "reference/spec-fields.md", "providers/docker.md", "providers/aws.md",
                           "providers/azure.md", "providers/gcp.md"}
    aws = hooks.fill(marked["providers/aws.md"])
    assert "<!-- multicloud:" not in aws and "```mermaid\nflowchart LR\n" in aws
    assert '["+ load-balancer/iot-backend"]:::create' in aws
    reference = hooks.fill(marked["reference/spec-fields.md"])
    assert "## Service {#service}" in reference and "## gcp-cloudrun target settings" in reference
    index = hooks.fill(marked["index.md"])
    assert index.startswith("# multicloud\n") and "## The two commands" in index and "## Where to go next" in index
    with pytest.raises(RuntimeError, match="no-such-target"):
        hooks.fill("<!-- multicloud: graph no-such-target -->")
