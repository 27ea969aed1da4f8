"""The spec's JSON Schema for editors, with each installed provider's target settings merged in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from multicloud.spec.models import TARGET_RESERVED, Spec

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_schema(settings: Mapping[str, type[BaseModel]] | None = None) -> dict[str, Any]:
    """The JSON Schema of a spec file; a target whose provider has a settings model must hold
    exactly that model's settings (others stay open, as the spec itself does not know them)."""
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = DIALECT
    schema["title"] = "multicloud spec (multicloud.yaml)"
    target = schema["$defs"]["Target"]
    rules = []
    for provider, model in (settings or {}).items():
        prefix = f"settings.{provider}."
        part = model.model_json_schema(mode="validation", ref_template="#/$defs/" + prefix + "{model}")
        for name, definition in part.pop("$defs", {}).items():
            schema["$defs"][prefix + name] = definition
        properties = {**part.get("properties", {}), **{key: True for key in TARGET_RESERVED}}
        then: dict[str, Any] = {"properties": properties, "additionalProperties": False}
        if part.get("required"):
            then["required"] = part["required"]
        if part.get("description"):
            then["description"] = part["description"]
        rules.append({"if": {"properties": {"provider": {"const": provider}}, "required": ["provider"]}, "then": then})
    if rules:
        target["allOf"] = rules
        known = ", ".join(settings or {})
        target["properties"]["provider"]["description"] = f"the provider plugin (installed: {known})"
        target["properties"]["provider"]["examples"] = list(settings or {})
    return schema
