"""`${services.NAME.host|port|url[.PORT]}` and `${secrets.NAME}` placeholders: parse and resolve."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multicloud.resources import Sensitive

if TYPE_CHECKING:
    from multicloud.spec.models import Service

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}")
SERVICE_ATTRIBUTES = ("host", "port", "url")


@dataclass(frozen=True)
class ServiceRef:
    """A reference to where another service is reached; `port` None means its first port."""

    service: str
    attribute: str
    port: str | None = None


@dataclass(frozen=True)
class SecretRef:
    """A reference to a top-level secret's value."""

    name: str


Reference = ServiceRef | SecretRef


class PlaceholderSyntaxError(ValueError):
    """A `${...}` that is not one of the known forms."""


def parse_reference(body: str) -> Reference:
    """Parse the inside of `${...}`; raise PlaceholderSyntaxError describing the valid forms."""
    parts = body.strip().split(".")
    if len(parts) == 2 and parts[0] == "secrets" and parts[1]:
        return SecretRef(parts[1])
    if parts[0] == "services" and len(parts) in (3, 4) and parts[2] in SERVICE_ATTRIBUTES:
        if parts[2] == "host" and len(parts) == 4:
            raise PlaceholderSyntaxError(f"${{{body}}}: host takes no port name")
        return ServiceRef(parts[1], parts[2], parts[3] if len(parts) == 4 else None)
    raise PlaceholderSyntaxError(
        f"${{{body}}} is not a known placeholder; use ${{services.NAME.host}}, "
        "${services.NAME.port[.PORT]}, ${services.NAME.url[.PORT]} or ${secrets.NAME} "
        "(write $$ for a literal $)"
    )


def references(text: str) -> Iterator[Reference]:
    """Yield every reference in a string; raise PlaceholderSyntaxError on a malformed one."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(0) != "$$":
            yield parse_reference(match.group(1))


def placeholder_fields(service: Service) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (field path, text) for every service field that may hold placeholders."""
    for key, value in service.env.items():
        yield ("env", key), value
    for field in ("command", "entrypoint"):
        for i, arg in enumerate(getattr(service, field) or []):
            yield (field, i), arg


def resolve(
    text: str, address: Callable[[ServiceRef], str], secrets: Callable[[str], str]
) -> str | Sensitive:
    """Substitute every placeholder; a string that took in a secret comes back Sensitive."""
    used_secret = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal used_secret
        if match.group(0) == "$$":
            return "$"
        ref = parse_reference(match.group(1))
        if isinstance(ref, SecretRef):
            used_secret = True
            return secrets(ref.name)
        return address(ref)

    value = _PLACEHOLDER.sub(substitute, text)
    return Sensitive.of(value) if used_secret else value
