"""A spec as one target sees it: overrides applied, excluded services and resources removed."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicloud.errors import TargetError
from multicloud.spec.backing import Address, Postgres, password_secret, url_secret
from multicloud.spec.certificate import CA_PARTS, PARTS, TlsGenerate, part_name, tls_parts
from multicloud.spec.files import MAX_SECRET_BYTES, UnreadableFileError, decode, read_limited
from multicloud.spec.models import DerivedSecret, Secret, Service, Spec, TlsPart, Volume

MERGED_FIELDS = ("env", "resources", "build")


def merge_override(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return base with override applied: env, resources and build merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if key in MERGED_FIELDS and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def apply_override(service: Service, override: Mapping[str, Any]) -> Service:
    """Return a service with a target's override applied; raise pydantic's ValidationError
    when the result is not a valid service. Short forms in the base (`build: ./dir`) merge
    as their long form."""
    if not override:
        return service
    return Service.model_validate(merge_override(service.model_dump(exclude_unset=True), override))


def services_for(spec: Spec, target: str) -> dict[str, Service]:
    """Return the services that run on a target, with its overrides applied."""
    config = spec.targets[target]
    excluded = set(config.exclude)
    services: dict[str, Service] = {}
    for name, base in spec.services.items():
        if name in excluded:
            continue
        service = apply_override(base, config.override(name))
        if any(dep in excluded for dep in service.depends_on):
            deps = [d for d in service.depends_on if d not in excluded]
            service = service.model_copy(update={"depends_on": deps})
        services[name] = service
    return services


@dataclass(frozen=True)
class TargetSpec:
    """Everything a provider needs to render desired resources for one target."""

    app: str
    target: str
    provider: str
    settings: Mapping[str, Any]
    services: Mapping[str, Service]
    secrets: Mapping[str, Secret]
    volumes: Mapping[str, Volume]
    base_dir: str = "."
    excluded: frozenset[str] = field(default_factory=frozenset)
    resources: Mapping[str, Postgres] = field(default_factory=dict)
    """The backing resources this target provides (see multicloud.backing)."""
    uses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Service -> the resources its placeholders refer to (kept when they are bound)."""
    addresses: Mapping[str, Address] = field(default_factory=dict)
    """Resource -> its multicloud.backing.Address on this target, once bound; empty before."""
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Service -> what the core changed for this target (a port's fallback, TLS served plain); plans show them."""

    def resource_keys(self, service: str) -> tuple[str, ...]:
        """Keys (`postgres/NAME`) of the resources a service refers to: its resource depends on them."""
        return tuple(f"{self.resources[name].type}/{name}" for name in self.uses.get(service, ()))

    def has_public_port(self) -> bool:
        """Whether some service on this target exposes a port publicly."""
        return any(p.expose == "public" for s in self.services.values() for p in s.ports)

    def used_secrets(self) -> list[str]:
        """Names of the secrets some service on this target uses, each resource's password, and every part
        of a generated TLS secret one of whose parts a service uses (its store keeps them all), in spec order."""
        from multicloud.spec.placeholders import service_secrets

        used: set[str] = {password_secret(name) for name in self.resources}
        for service in self.services.values():
            used.update(service_secrets(service))
        parts = tls_parts(self.secrets)
        used.update(part_name(parts[name][0], part) for name in used & parts.keys() for part in PARTS)
        return [name for name in self.secrets if name in used]

    def generated_secrets(self) -> list[str]:
        """Names of the used secrets whose values are random (`generate: true`)."""
        return [name for name in self.used_secrets() if self.secrets[name].generate is True]

    def password_logins(self) -> dict[str, str]:
        """Each resource's generated password secret -> the login it belongs to (which the password must
        not contain: Azure's flexible server refuses it)."""
        return {password_secret(name): resource.user_name(name) for name, resource in self.resources.items()}

    def tls_secrets(self) -> dict[str, TlsGenerate]:
        """The generated TLS secrets whose parts this target uses, by name."""
        used = set(self.used_secrets())
        return {name: generate for name, secret in self.secrets.items()
                if isinstance(generate := secret.generate, TlsGenerate) and part_name(name, "cert") in used}

    def store_only_secrets(self) -> list[str]:
        """The used secrets no service reads but the target's secret store must hold (each used TLS
        secret's CA certificate and key, unless a service reads the certificate)."""
        from multicloud.spec.placeholders import service_secrets

        read = {name for service in self.services.values() for name in service_secrets(service)}
        return [part_name(name, part) for name in self.tls_secrets() for part in CA_PARTS
                if part_name(name, part) not in read]


def target_spec(spec: Spec, target: str) -> TargetSpec:
    """Resolve a spec for one named target; raise TargetError for an unknown name."""
    if target not in spec.targets:
        known = ", ".join(spec.targets) or "none; add a `targets:` section"
        close = difflib.get_close_matches(target, list(spec.targets), n=1)
        advice = f"did you mean {close[0]!r}? " if close else ""
        raise TargetError(f"unknown target {target!r} ({advice}targets in {spec.source.path}: {known})")
    config = spec.targets[target]
    services = services_for(spec, target)
    resources = {name: r for name, r in spec.resources.items() if name not in config.exclude}
    own: dict[str, Secret] = {name: TlsPart(of=tls, part=part) for name, (tls, part) in tls_parts(spec.secrets).items()}
    for name in resources:
        own[password_secret(name)] = Secret(generate=True)
        own[url_secret(name)] = DerivedSecret()
    return TargetSpec(
        app=config.app or spec.name,
        target=target,
        provider=config.provider,
        settings=config.settings,
        services=services,
        secrets={**spec.secrets, **own},
        volumes=spec.volumes,
        base_dir=spec.source.base_dir,
        excluded=frozenset(config.exclude),
        resources=resources,
        uses={name: uses for name, service in services.items() if (uses := resources_used(service))},
    )


def resources_used(service: Service) -> tuple[str, ...]:
    """The resources a service's placeholders refer to, in the order they first appear."""
    from multicloud.spec.placeholders import PlaceholderSyntaxError, ResourceRef, placeholder_fields, references

    names: dict[str, None] = {}
    for _, text in placeholder_fields(service):
        try:
            names.update((ref.name, None) for ref in references(text) if isinstance(ref, ResourceRef))
        except PlaceholderSyntaxError:  # reported when the spec is validated
            continue
    return tuple(names)


def read_secrets(spec: TargetSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """Read the values of the secrets this target uses (generated ones are the secret store's, not
    read here); raise TargetError naming what is missing."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in spec.used_secrets():
        secret = spec.secrets[name]
        if secret.from_env is not None:
            if secret.from_env in environ:
                values[name] = environ[secret.from_env]
            else:
                missing.append(f"secret {name!r}: environment variable {secret.from_env} is not set")
        elif secret.from_file is not None:
            path = Path(spec.base_dir, secret.from_file)
            try:
                values[name] = decode(read_limited(str(path), MAX_SECRET_BYTES)).rstrip("\n")
            except FileNotFoundError:
                missing.append(f"secret {name!r}: cannot read {path}: No such file or directory")
            except UnreadableFileError as exc:
                missing.append(f"secret {name!r}: cannot read {path}: {exc}")
    if missing:
        raise TargetError("missing secret values:\n  " + "\n  ".join(missing))
    return values
