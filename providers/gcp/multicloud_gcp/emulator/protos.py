"""Protobuf conversion for the emulator's front ends: messages ⇄ camelCase JSON, via the SDK's types."""

from __future__ import annotations

from functools import cache
from typing import Any

from multicloud_gcp.client import proto_modules
from multicloud_gcp.emulator.dispatch import METHODS
from multicloud_gcp.emulator.faults import ApiError


@cache
def message_class(path: str) -> Any:
    """The raw protobuf class for 'run_v2.Service' or 'operations_pb2.Operation'."""
    module, _, name = path.partition(".")
    found = getattr(proto_modules()[module], name)
    return found.pb() if hasattr(found, "pb") else found


def request_class(method: str) -> Any:
    """The protobuf request class of an API method."""
    return message_class(METHODS[method][1])


def response_class(method: str) -> Any:
    """The protobuf response class of an API method."""
    return message_class(METHODS[method][2])


def to_json(message: Any) -> dict[str, Any]:
    """A protobuf message as camelCase JSON with enum names (the REST wire form)."""
    result: dict[str, Any] = proto_modules()["json_format"].MessageToDict(message)
    return result


def normalize_request(method: str, request: dict[str, Any]) -> dict[str, Any]:
    """Parse REST input through the request message (enum numbers to names, unknown fields refused)."""
    json_format = proto_modules()["json_format"]
    try:
        message = json_format.ParseDict(request, request_class(method)())
    except json_format.ParseError as exc:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}") from exc
    return to_json(message)


def from_json(method: str, value: dict[str, Any]) -> Any:
    """Build the protobuf response of a method from the model's JSON."""
    json_format = proto_modules()["json_format"]
    return json_format.ParseDict(value, response_class(method)(), ignore_unknown_fields=True)


def status_details(error: ApiError) -> bytes:
    """A serialized google.rpc.Status with the error's details, for grpc-status-details-bin."""
    modules = proto_modules()
    status = modules["json_format"].ParseDict(error.status_json(), modules["status_pb2"].Status())
    data: bytes = status.SerializeToString()
    return data
