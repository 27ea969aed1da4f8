"""The spec's field types: name patterns, sizes and durations written with units, env values,
commands, and the strict immutable base every spec model shares."""

from __future__ import annotations

import shlex
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

from multicloud.spec.units import (
    DURATION_PATTERN,
    MAX_DURATION,
    MAX_MEMORY,
    MEMORY_PATTERN,
    format_memory,
    parse_duration,
    parse_memory,
)

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
IDENTIFIER_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]


def unit_schema(number: dict[str, Any], pattern: str, description: str) -> WithJsonSchema:
    """The JSON Schema of a value written as a number or as text with a unit (512Mi, 10s): the
    exported schema describes the file people write, not the parsed model."""
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description})


MemorySize = Annotated[
    int,
    BeforeValidator(parse_memory),
    PlainSerializer(format_memory, return_type=str, when_used="json"),
    Field(gt=0, le=MAX_MEMORY, json_schema_extra={"examples": ["512Mi", "1Gi"]}),
    unit_schema(
        {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_MEMORY},
        MEMORY_PATTERN,
        "bytes, or a size such as 512Mi, 1Gi, 1G",
    ),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0, le=MAX_DURATION),
    unit_schema(
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
        DURATION_PATTERN,
        "seconds, or a duration such as 10s, 1m30s, 500ms",
    ),
]
PortProtocol = Literal["http", "https", "grpc", "tcp", "udp", "mqtt", "mqtts", "mqtt-ws", "mqtt-wss"]
Exposure = Literal["public", "internal"]


def _scalar_to_str(value: Any) -> Any:
    """Render YAML scalars (8080, true) as the strings a process environment holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[
    str,
    BeforeValidator(_scalar_to_str),
    WithJsonSchema({"type": ["string", "number", "boolean"], "description": "numbers and booleans become text"}),
]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]


def _split_command(value: Any) -> Any:
    """Accept a command as a list of arguments or as one shell-quoted string."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command into arguments: {exc}") from exc
    return value


Command = Annotated[
    list[str],
    BeforeValidator(_split_command),
    Field(min_length=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "string", "minLength": 1, "description": "split into arguments like a shell"},
            ],
            "examples": [["python", "-m", "app"]],
        }
    ),
]


class Model(BaseModel):
    """Base: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
