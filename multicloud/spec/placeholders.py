"""`${services.NAME.host|port|url[.PORT]}`, `${secrets.NAME}` and `${secrets.NAME.file}` placeholders:
parse and resolve."""

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
SECRETS_DIR = "/run/secrets"
"""Where a target that mounts secret files puts them by default: one file per secret, named after it."""


@dataclass(frozen=True)
class ServiceRef:
    """A reference to where another service is reached; `port` None means its first port."""

    service: str
    attribute: str
    port: str | None = None


@dataclass(frozen=True)
class SecretRef:
    """A reference to a top-level secret: its value, or (`file`) the path of a file holding it."""

    name: str
    file: bool = False


Reference = ServiceRef | SecretRef


class PlaceholderSyntaxError(ValueError):
    """A `${...}` that is not one of the known forms."""


def parse_reference(body: str) -> Reference:
    """Parse the inside of `${...}`; raise PlaceholderSyntaxError describing the valid forms."""
    parts = body.strip().split(".")
    if len(parts) == 2 and parts[0] == "secrets" and parts[1]:
        return SecretRef(parts[1])
    if len(parts) == 3 and parts[0] == "secrets" and parts[1] and parts[2] == "file":
        return SecretRef(parts[1], file=True)
    if parts[0] == "services" and len(parts) in (3, 4) and parts[2] in SERVICE_ATTRIBUTES:
        if parts[2] == "host" and len(parts) == 4:
            raise PlaceholderSyntaxError(f"${{{body}}}: host takes no port name")
        return ServiceRef(parts[1], parts[2], parts[3] if len(parts) == 4 else None)
    raise PlaceholderSyntaxError(
        f"${{{body}}} is not a known placeholder; use ${{services.NAME.host}}, "
        "${services.NAME.port[.PORT]}, ${services.NAME.url[.PORT]}, ${secrets.NAME} or "
        "${secrets.NAME.file} (write $$ for a literal $)"
    )


def references(text: str) -> Iterator[Reference]:
    """Yield every reference in a string; raise PlaceholderSyntaxError on a malformed one."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(0) != "$$":
            yield parse_reference(match.group(1))


def whole_secret(text: str) -> SecretRef | None:
    """The secret reference a text consists of entirely (`${secrets.x}` or `${secrets.x.file}`), else None."""
    match = _PLACEHOLDER.fullmatch(text.strip())
    if match is None or match.group(0) == "$$":
        return None
    try:
        ref = parse_reference(match.group(1))
    except PlaceholderSyntaxError:
        return None
    return ref if isinstance(ref, SecretRef) else None


def default_secret_file(name: str) -> str:
    """The path `${secrets.NAME.file}` resolves to where secrets are files under SECRETS_DIR."""
    return f"{SECRETS_DIR}/{name}"


def placeholder_fields(service: Service) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (field path, text) for every service field that may hold placeholders."""
    for key, value in service.env.items():
        yield ("env", key), value
    for field in ("command", "entrypoint"):
        for i, arg in enumerate(getattr(service, field) or []):
            yield (field, i), arg


def secret_files(service: Service) -> list[str]:
    """Names of the secrets a service gets as files: its `secrets:` list and every
    `${secrets.NAME.file}` it uses, in that order, each once."""
    names = dict.fromkeys(service.secrets)
    for _, text in placeholder_fields(service):
        names.update((r.name, None) for r in references(text) if isinstance(r, SecretRef) and r.file)
    return list(names)


def resolve(
    text: str,
    address: Callable[[ServiceRef], str],
    secrets: Callable[[str], str],
    secret_file: Callable[[str], str] = default_secret_file,
    *,
    app: str,
) -> str | Sensitive:
    """Substitute every placeholder; a string that took in a secret's value comes back
    Sensitive, its digest keyed by the app (a secret's file path is not secret)."""
    used_secret = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal used_secret
        if match.group(0) == "$$":
            return "$"
        ref = parse_reference(match.group(1))
        if isinstance(ref, SecretRef) and ref.file:
            return secret_file(ref.name)
        if isinstance(ref, SecretRef):
            used_secret = True
            return secrets(ref.name)
        return address(ref)

    value = _PLACEHOLDER.sub(substitute, text)
    return Sensitive.of(value, app=app) if used_secret else value
