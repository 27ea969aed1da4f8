"""The placeholder grammar, in one place: `${services.NAME.host|port|url[.PORT]}`, `${secrets.NAME}`,
`${secrets.NAME.file}` (resolved per target), `${resources.NAME.url[.file]|host|port|name}` (bound per
target: see multicloud.backing), `${ports.NAME[.tls]}` (what the service itself serves for its port NAME on
the target: see multicloud.fallbacks) and `${vars.NAME}`, `${env.NAME[:-DEFAULT]}` (resolved when the spec
is loaded): parse and resolve."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from multicloud.resources import Sensitive

if TYPE_CHECKING:
    from multicloud.spec.models import Service

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{([^}]*)$")
"""`$$`, `${BODY}`, or (group 2) a `${` that is never closed."""
SERVICE_ATTRIBUTES = ("host", "port", "url")
RESOURCE_ATTRIBUTES = ("url", "host", "port", "name")
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


@dataclass(frozen=True)
class ResourceRef:
    """A reference to a backing resource under top-level `resources:`: its URL (a secret; `file`: the
    path of a file holding it), host, port or database name."""

    name: str
    attribute: str
    file: bool = False


@dataclass(frozen=True)
class PortRef:
    """A reference to one of the service's own ports as the target has it served: the container port
    it serves for that port (0 when it serves none there), or (`tls`) whether it serves TLS on it."""

    name: str
    tls: bool = False


@dataclass(frozen=True)
class VarRef:
    """A reference to a variable declared under top-level `vars:`."""

    name: str


@dataclass(frozen=True)
class EnvRef:
    """A reference to an environment variable (or the `.env` beside the spec), as compose reads it:
    `default` replaces an unset variable, and an empty one too when `empty_is_unset` (`:-`)."""

    name: str
    default: str | None = None
    empty_is_unset: bool = False


Reference = ServiceRef | SecretRef | ResourceRef | PortRef | VarRef | EnvRef
_R = TypeVar("_R", ResourceRef, PortRef, SecretRef)
LoadTimeRef = VarRef | EnvRef
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_VAR_BODY = re.compile(rf"vars\.({_IDENTIFIER})")
_ENV_BODY = re.compile(rf"env\.({_IDENTIFIER})(?:(:?-)(.*))?", re.DOTALL)


class PlaceholderSyntaxError(ValueError):
    """A `${...}` that is not one of the known forms."""


def parse_reference(body: str) -> Reference:
    """Parse the inside of `${...}`; raise PlaceholderSyntaxError describing the valid forms."""
    stripped = body.strip()
    if env := _ENV_BODY.fullmatch(stripped):
        operator = env.group(2)
        return EnvRef(env.group(1), env.group(3) if operator else None, operator == ":-")
    if var := _VAR_BODY.fullmatch(stripped):
        return VarRef(var.group(1))
    parts = stripped.split(".")
    if len(parts) == 2 and parts[0] == "secrets" and parts[1]:
        return SecretRef(parts[1])
    if len(parts) == 3 and parts[0] == "secrets" and parts[1] and parts[2] == "file":
        return SecretRef(parts[1], file=True)
    if parts[0] == "services" and len(parts) in (3, 4) and parts[2] in SERVICE_ATTRIBUTES:
        if parts[2] == "host" and len(parts) == 4:
            raise PlaceholderSyntaxError(f"${{{body}}}: host takes no port name")
        return ServiceRef(parts[1], parts[2], parts[3] if len(parts) == 4 else None)
    if parts[0] == "resources" and len(parts) in (3, 4) and parts[1] and parts[2] in RESOURCE_ATTRIBUTES:
        if len(parts) == 4 and parts[2:] != ["url", "file"]:
            raise PlaceholderSyntaxError(f"${{{body}}}: only url takes .file (the path of a file holding it)")
        return ResourceRef(parts[1], parts[2], file=len(parts) == 4)
    if parts[0] == "ports" and len(parts) in (2, 3) and parts[1]:
        if len(parts) == 3 and parts[2] != "tls":
            raise PlaceholderSyntaxError(f"${{{body}}}: a port takes only .tls (whether it is served over TLS)")
        return PortRef(parts[1], tls=len(parts) == 3)
    raise PlaceholderSyntaxError(
        f"${{{body}}} is not a known placeholder; use ${{services.NAME.host}}, "
        "${services.NAME.port[.PORT]}, ${services.NAME.url[.PORT]}, ${secrets.NAME} or "
        "${secrets.NAME.file}, ${resources.NAME.url[.file]|host|port|name}, ${ports.PORT[.tls]}, ${vars.NAME}, "
        "${env.NAME} or ${env.NAME:-DEFAULT} (write $$ for a literal $)"
    )


def references(text: str) -> Iterator[Reference]:
    """Yield every reference in a string; raise PlaceholderSyntaxError on a malformed one."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(0) != "$$":
            yield parse_reference(_body(match))


def _body(match: re.Match[str]) -> str:
    """The inside of a `${...}`; raise PlaceholderSyntaxError for a `${` never closed."""
    if match.group(2) is not None:
        raise PlaceholderSyntaxError(f"${{{match.group(2)} is not closed; end the placeholder with }}")
    return match.group(1)


def interpolate(text: str, lookup: Callable[[LoadTimeRef], str], *, escape: bool) -> str:
    """Substitute the load-time placeholders (`${vars.x}`, `${env.X}`) and leave the others and `$$`
    as written; with `escape`, a substituted value's `$` is doubled (for fields whose placeholders are
    resolved later, so a value is never read as one). Raise PlaceholderSyntaxError for a malformed
    `${vars...}` or `${env...}`; raise whatever `lookup` raises for an unknown or unset one."""

    def substitute(match: re.Match[str]) -> str:
        body = match.group(1)  # None for a `${` never closed: left as written, reported where it is checked
        if match.group(0) == "$$" or body is None or not body.strip().startswith(("vars.", "env.")):
            return match.group(0)
        ref = parse_reference(body)
        assert isinstance(ref, VarRef | EnvRef)  # the prefixes above parse to nothing else
        value = lookup(ref)
        return value.replace("$", "$$") if escape else value

    return _PLACEHOLDER.sub(substitute, text)


def redirect_ports(text: str, target: Callable[[ServiceRef], str | None]) -> str:
    """Rewrite each `${services.S.port|url[.P]}` for which `target` names another port of S to
    refer to that port; everything else stays as written (malformed placeholders too)."""

    def substitute(match: re.Match[str]) -> str:
        body = match.group(1)
        if match.group(0) == "$$" or body is None:
            return match.group(0)
        try:
            ref = parse_reference(body)
        except PlaceholderSyntaxError:
            return match.group(0)
        if not isinstance(ref, ServiceRef) or ref.attribute not in ("port", "url"):
            return match.group(0)
        port = target(ref)
        return match.group(0) if port is None else f"${{services.{ref.service}.{ref.attribute}.{port}}}"

    return _PLACEHOLDER.sub(substitute, text)


def bind_resources(text: str, bound: Callable[[ResourceRef], str]) -> str:
    """Rewrite each `${resources.N.ATTR}` as `bound` says (a literal, `$` already doubled, or another
    placeholder such as `${secrets.X}`); everything else stays as written (malformed placeholders too)."""
    return _rewrite(text, "resources.", ResourceRef, bound)


def bind_ports(text: str, bound: Callable[[PortRef], str]) -> str:
    """Rewrite each `${ports.P[.tls]}` as the literal `bound` gives; everything else stays as written."""
    return _rewrite(text, "ports.", PortRef, bound)


def drop_secrets(text: str, names: Collection[str]) -> str:
    """Rewrite each `${secrets.N}` and `${secrets.N.file}` of a secret in `names` as nothing; everything else
    stays as written."""
    return _rewrite(text, "secrets.", SecretRef,
                    lambda ref: "" if ref.name in names else f"${{secrets.{ref.name}{'.file' if ref.file else ''}}}")


def _rewrite(text: str, prefix: str, kind: type[_R], bound: Callable[[_R], str]) -> str:
    """Rewrite each placeholder of one kind (its body starting with `prefix`) as `bound` says."""

    def substitute(match: re.Match[str]) -> str:
        body = match.group(1)
        if match.group(0) == "$$" or body is None or not body.strip().startswith(prefix):
            return match.group(0)
        try:
            ref = parse_reference(body)
        except PlaceholderSyntaxError:
            return match.group(0)
        return bound(ref) if isinstance(ref, kind) else match.group(0)

    return _PLACEHOLDER.sub(substitute, text)


def whole_secret(text: str) -> SecretRef | None:
    """The secret reference a text consists of entirely (`${secrets.x}` or `${secrets.x.file}`), else None."""
    match = _PLACEHOLDER.fullmatch(text.strip())
    if match is None or match.group(0) == "$$":
        return None
    try:
        ref = parse_reference(_body(match))
    except PlaceholderSyntaxError:
        return None
    return ref if isinstance(ref, SecretRef) else None


def takes_secret_value(text: str) -> bool:
    """Whether a text takes in some secret's value (a `${secrets.x.file}` path does not; `$${...}`
    is a literal); raise PlaceholderSyntaxError on a malformed placeholder."""
    return any(isinstance(r, SecretRef) and not r.file for r in references(text))


def default_secret_file(name: str) -> str:
    """The path `${secrets.NAME.file}` resolves to where secrets are files under SECRETS_DIR."""
    return f"{SECRETS_DIR}/{name}"


PLACEHOLDER_FIELDS = ("env", "command", "entrypoint")
"""The service fields whose placeholders are resolved per target (everything else only takes vars and env)."""


def placeholder_fields(service: Service) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (field path, text) for every service field that may hold placeholders."""
    for key, value in service.env.items():
        yield ("env", key), value
    for field in PLACEHOLDER_FIELDS[1:]:
        for i, arg in enumerate(getattr(service, field) or []):
            yield (field, i), arg


def rewrite_service(service: Service, rewrite: Callable[[str], str]) -> Service:
    """The service with `rewrite` applied to every field that may hold placeholders (env, command,
    entrypoint); the same service when nothing changes."""
    update: dict[str, object] = {}
    env = {key: rewrite(value) for key, value in service.env.items()}
    if env != service.env:
        update["env"] = env
    for field in PLACEHOLDER_FIELDS[1:]:
        args = getattr(service, field)
        if args is not None and (changed := [rewrite(arg) for arg in args]) != args:
            update[field] = changed
    return service.model_copy(update=update) if update else service


def secret_files(service: Service) -> list[str]:
    """Names of the secrets a service gets as files: its `secrets:` list and every
    `${secrets.NAME.file}` it uses, in that order, each once."""
    names = dict.fromkeys(service.secrets)
    for _, text in placeholder_fields(service):
        names.update((r.name, None) for r in references(text) if isinstance(r, SecretRef) and r.file)
    return list(names)


def service_secrets(service: Service) -> list[str]:
    """Names of every secret a service uses: its `secrets:` list and every `${secrets.NAME...}`, each once."""
    names = dict.fromkeys(service.secrets)
    for _, text in placeholder_fields(service):
        names.update((r.name, None) for r in references(text) if isinstance(r, SecretRef))
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
        ref = parse_reference(_body(match))
        if isinstance(ref, SecretRef) and ref.file:
            return secret_file(ref.name)
        if isinstance(ref, SecretRef):
            used_secret = True
            return secrets(ref.name)
        if isinstance(ref, VarRef | EnvRef):
            raise PlaceholderSyntaxError(f"${{{match.group(1)}}} is resolved when the spec is loaded, not here")
        if isinstance(ref, ResourceRef):
            raise PlaceholderSyntaxError(
                f"${{{match.group(1)}}} is bound to the target's resource first (multicloud.backing.bind; "
                "Deployment does it)"
            )
        if isinstance(ref, PortRef):
            raise PlaceholderSyntaxError(
                f"${{{match.group(1)}}} is bound to what the target serves first (multicloud.fallbacks.as_served; "
                "Deployment does it)"
            )
        return address(ref)

    value = _PLACEHOLDER.sub(substitute, text)
    return Sensitive.of(value, app=app) if used_secret else value
