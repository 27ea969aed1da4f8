"""Checks that span fields: names that must exist, dependency cycles, placeholders, overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from multicloud.spec.models import TARGET_RESERVED, Service, Spec
from multicloud.spec.placeholders import (
    PlaceholderSyntaxError,
    Reference,
    SecretRef,
    ServiceRef,
    references,
)
from multicloud.spec.targets import merge_override

FieldPath = tuple[str | int, ...]
Finding = tuple[FieldPath, str]


def check_references(spec: Spec, data: dict[str, Any]) -> list[Finding]:
    """Return every cross-reference problem in a shape-valid spec, with its field path."""
    findings: list[Finding] = []
    for name, service in spec.services.items():
        findings += _check_service(spec, name, service, ("services", name))
    findings += _check_cycles(spec)
    for target_name, target in spec.targets.items():
        findings += _check_target(spec, data, target_name)
        if target.provider in TARGET_RESERVED:
            findings.append((("targets", target_name, "provider"), "not a provider name"))
    return findings


def _check_service(spec: Spec, name: str, service: Service, at: FieldPath) -> list[Finding]:
    found: list[Finding] = []
    for i, dep in enumerate(service.depends_on):
        if dep == name:
            found.append(((*at, "depends_on", i), "a service cannot depend on itself"))
        elif dep not in spec.services:
            found.append(((*at, "depends_on", i), f"unknown service {dep!r}{_known(spec.services)}"))
    for i, secret in enumerate(service.secrets):
        if secret not in spec.secrets:
            found.append(((*at, "secrets", i), f"unknown secret {secret!r}{_known(spec.secrets)}"))
    for i, mount in enumerate(service.volumes):
        if mount.source not in spec.volumes:
            found.append(
                ((*at, "volumes", i), f"volume {mount.source!r} is not declared under top-level volumes")
            )
    check = service.healthcheck
    if check is not None and check.http is not None and check.port is None and not service.ports:
        found.append(((*at, "healthcheck", "http"), "an http check needs a port: add ports or healthcheck.port"))
    for field_path, text in _placeholder_fields(service):
        try:
            refs = list(references(text))
        except PlaceholderSyntaxError as exc:
            found.append(((*at, *field_path), str(exc)))
            continue
        found += [((*at, *field_path), msg) for ref in refs if (msg := _check_ref(spec, ref))]
    return found


def _placeholder_fields(service: Service) -> Iterator[tuple[FieldPath, str]]:
    for key, value in service.env.items():
        yield ("env", key), value
    for field in ("command", "entrypoint"):
        for i, arg in enumerate(getattr(service, field) or []):
            yield (field, i), arg


def _check_ref(spec: Spec, ref: Reference) -> str | None:
    if isinstance(ref, SecretRef):
        if ref.name not in spec.secrets:
            return f"${{secrets.{ref.name}}}: unknown secret{_known(spec.secrets)}"
        return None
    target = spec.services.get(ref.service)
    if target is None:
        return f"${{services.{ref.service}...}}: unknown service{_known(spec.services)}"
    if ref.attribute in ("port", "url"):
        if not target.ports:
            return f"${{services.{ref.service}.{ref.attribute}}}: service {ref.service!r} has no ports"
        if ref.port is not None and target.port(ref.port) is None:
            names = ", ".join(p.name for p in target.ports)
            return f"service {ref.service!r} has no port named {ref.port!r} (ports: {names})"
    return None


def _check_cycles(spec: Spec) -> list[Finding]:
    state: dict[str, int] = {}
    found: list[Finding] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in spec.services[name].depends_on:
            if dep not in spec.services or dep == name:
                continue
            if state.get(dep) == 1:
                cycle = [*trail[trail.index(dep) :], dep] if dep in trail else [name, dep]
                found.append((("services", name, "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in spec.services:
        if name not in state:
            visit(name, [name])
    return found


def _check_target(spec: Spec, data: dict[str, Any], target_name: str) -> list[Finding]:
    target = spec.targets[target_name]
    at: FieldPath = ("targets", target_name)
    found: list[Finding] = []
    for i, name in enumerate(target.exclude):
        if name not in spec.services:
            found.append(((*at, "exclude", i), f"unknown service {name!r}{_known(spec.services)}"))
    for name, override in target.overrides.items():
        if name not in spec.services:
            found.append(((*at, "overrides", name), f"unknown service {name!r}{_known(spec.services)}"))
            continue
        base = data["services"][name]
        try:
            merged = Service.model_validate(merge_override(base, override))
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"]
                path = (*at, "overrides", name, *loc) if loc and loc[0] in override else ("services", name, *loc)
                found.append((path, error["msg"].removeprefix("Value error, ")))
            continue
        found += _check_service(spec, name, merged, (*at, "overrides", name))
    found += _check_excluded_refs(spec, target_name)
    return found


def _check_excluded_refs(spec: Spec, target_name: str) -> list[Finding]:
    from multicloud.spec.targets import services_for

    target = spec.targets[target_name]
    excluded = set(target.exclude)
    found: list[Finding] = []
    for name, service in services_for(spec, target_name).items():
        overridden = name in target.overrides
        where: FieldPath = ("targets", target_name, "overrides", name) if overridden else ("services", name)
        for field_path, text in _placeholder_fields(service):
            for ref in references(text):
                if isinstance(ref, ServiceRef) and ref.service in excluded:
                    found.append(
                        (
                            (*where, *field_path),
                            f"refers to service {ref.service!r}, which target {target_name!r} excludes; "
                            f"override this field under targets.{target_name}.overrides.{name}",
                        )
                    )
    return found


def _known(names: Any) -> str:
    listed = ", ".join(sorted(names))
    return f" (known: {listed})" if listed else " (none are declared)"
