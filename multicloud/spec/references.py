"""Checks that span fields: names that must exist, dependency cycles, placeholders, overrides."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from multicloud.spec.backing import reserved_secrets, role_problem
from multicloud.spec.certificate import PARTS, PRIVATE_PARTS, TlsGenerate, tls_parts
from multicloud.spec.messages import describe
from multicloud.spec.models import TARGET_RESERVED, Service, Spec, Target
from multicloud.spec.placeholders import (
    PlaceholderSyntaxError,
    PortRef,
    Reference,
    ResourceRef,
    SecretRef,
    ServiceRef,
    placeholder_fields,
    references,
)
from multicloud.spec.targets import MERGED_FIELDS, apply_override, merge_override

FieldPath = tuple[str | int, ...]
Finding = tuple[FieldPath, str]


def check_references(spec: Spec) -> list[Finding]:
    """Return every cross-reference problem in a shape-valid spec, with its field path."""
    findings: list[Finding] = []
    for name, service in spec.services.items():
        findings += _check_service(spec, name, service, ("services", name))
    findings += _check_cycles(spec.services, lambda name: ("services", name))
    findings += _check_resources(spec)
    base = list(findings)
    for target_name, target in spec.targets.items():
        findings += _check_target(spec, target_name, base)
        if target.provider in TARGET_RESERVED:
            findings.append((("targets", target_name, "provider"), "not a provider name"))
    return findings


def _check_service(
    spec: Spec, name: str, service: Service, at: FieldPath, services: Mapping[str, Service] | None = None
) -> list[Finding]:
    """Problems within one service; placeholders are checked against `services` (default: the spec's)."""
    found: list[Finding] = []
    for i, dep in enumerate(service.depends_on):
        if dep == name:
            found.append(((*at, "depends_on", i), "a service cannot depend on itself"))
        elif dep not in spec.services:
            found.append(((*at, "depends_on", i), f"unknown service {dep!r}{_known(spec.services)}"))
    names = [p.name for p in service.ports]
    for i, port in enumerate(service.ports):
        if port.fallback is not None and (port.fallback == port.name or port.fallback not in names):
            message = f"not another port of this service (ports: {', '.join(names)})"
            found.append(((*at, "ports", i, "fallback"), message))
    for i, secret in enumerate(service.secrets):
        if problem := _secret_problem(spec, secret, f"secret {secret!r}"):
            found.append(((*at, "secrets", i), problem))
    for i, mount in enumerate(service.volumes):
        if mount.source not in spec.volumes:
            found.append(
                ((*at, "volumes", i), f"volume {mount.source!r} is not declared under top-level volumes")
            )
    check = service.healthcheck
    if check is not None and check.http is not None and check.port is None and not service.ports:
        found.append(((*at, "healthcheck", "http"), "an http check needs a port: add ports or healthcheck.port"))
    for field_path, text in placeholder_fields(service):
        try:
            refs = list(references(text))
        except PlaceholderSyntaxError as exc:
            found.append(((*at, *field_path), str(exc)))
            continue
        known = spec.services if services is None else services
        found += [((*at, *field_path), msg) for ref in refs if (msg := _check_ref(known, spec, ref))]
        found += [((*at, *field_path), f"${{ports.{ref.name}...}}: this service has no port named {ref.name!r} "
                   f"(ports: {', '.join(names) or 'none'})")
                  for ref in refs if isinstance(ref, PortRef) and ref.name not in names]
    return found


def _check_resources(spec: Spec) -> list[Finding]:
    """A resource may not share a service's name (both are reached by name) nor its owner be a role
    a managed PostgreSQL keeps; no secret may take the name the core gives a resource's own secrets."""
    found: list[Finding] = []
    for name, resource in spec.resources.items():
        if name in spec.services:
            found.append((("resources", name), f"a service is also named {name!r}; give one of them another name"))
        problem = role_problem(resource.user_name(name))
        if problem:
            found.append((("resources", name, "user" if resource.user else "database"), problem))
    reserved = reserved_secrets(spec.resources)
    reserved.update((name, f"part {part} of the generated TLS secret {tls!r}")
                    for name, (tls, part) in tls_parts(spec.secrets).items())
    for name in spec.secrets:
        if name in reserved:
            found.append((("secrets", name), f"the name is kept for {reserved[name]}; rename this secret"))
    return found


def _check_ref(services: Mapping[str, Service], spec: Spec, ref: Reference) -> str | None:
    """What is wrong with a reference among these services and the spec's secrets and resources, or None."""
    if isinstance(ref, SecretRef):
        return _secret_problem(spec, ref.name, f"${{secrets.{ref.name}}}")
    if isinstance(ref, ResourceRef):
        if ref.name not in spec.resources:
            return f"${{resources.{ref.name}...}}: unknown resource{_known(spec.resources)}"
        return None
    if isinstance(ref, PortRef):
        return None  # the service's own ports: checked in _check_service
    if not isinstance(ref, ServiceRef):
        return f"${{vars.{ref.name}}} or ${{env.{ref.name}}} left unresolved (load the spec with multicloud.load)"
    target = services.get(ref.service)
    if target is None:
        return f"${{services.{ref.service}...}}: unknown service{_known(services)}"
    if ref.attribute in ("port", "url"):
        if not target.ports:
            return f"${{services.{ref.service}.{ref.attribute}}}: service {ref.service!r} has no ports"
        if ref.port is not None and target.port(ref.port) is None:
            names = ", ".join(p.name for p in target.ports)
            return f"service {ref.service!r} has no port named {ref.port!r} (ports: {names})"
    return None


def _secret_problem(spec: Spec, name: str, written: str) -> str | None:
    """What is wrong with a service's use of secret `name` (written as `written`), or None: unknown, a
    generated TLS secret itself (its parts are used), or a part only the secret store may hold."""
    parts = tls_parts(spec.secrets)
    if name in parts:
        tls, part = parts[name]
        if part in PRIVATE_PARTS:
            return f"{written}: the CA's private key of secrets.{tls} never leaves the target's secret store"
        return None
    if name not in spec.secrets:
        usable = {n for n, secret in spec.secrets.items() if not isinstance(secret.generate, TlsGenerate)}
        usable.update(n for n, (_, part) in parts.items() if part not in PRIVATE_PARTS)
        unknown = f"{written}: unknown secret" if written.startswith("$") else f"unknown {written}"
        return unknown + _known(usable)
    if isinstance(spec.secrets[name].generate, TlsGenerate):
        listed = ", ".join(f"{name}_{part}" for part in PARTS if part not in PRIVATE_PARTS)
        return f"{written}: secrets.{name} is a generated TLS pair: use its parts ({listed})"
    return None


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Return each dependency cycle found by a depth-first walk, as names from the start of
    the cycle back to it (`[a, b, a]`). Iterative, so long chains cannot exhaust the stack."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        trail = [root]
        stack = [iter(graph[root])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                state[trail.pop()] = 2
                stack.pop()
            elif dep not in graph or dep == trail[-1]:
                continue
            elif state.get(dep) == 1:
                cycles.append([*trail[trail.index(dep) :], dep])
            elif dep not in state:
                state[dep] = 1
                trail.append(dep)
                stack.append(iter(graph[dep]))
    return cycles


def _check_cycles(services: Mapping[str, Service], where: Callable[[str], FieldPath]) -> list[Finding]:
    """Report each dependency cycle once, at the depends_on entry that closes it."""
    found: list[Finding] = []
    for cycle in find_cycles({name: s.depends_on for name, s in services.items()}):
        last, closing = cycle[-2], cycle[-1]
        index = services[last].depends_on.index(closing)
        found.append(((*where(last), "depends_on", index), "dependency cycle: " + " -> ".join(cycle)))
    return found


def _check_target(spec: Spec, target_name: str, base_findings: list[Finding]) -> list[Finding]:
    """Check a target's exclude and overrides, and the services as that target sees them."""
    target = spec.targets[target_name]
    at: FieldPath = ("targets", target_name)
    found: list[Finding] = []
    found += _check_exclude(spec, at, target.exclude)
    for name in target.overrides:
        if name not in spec.services:
            found.append(((*at, "overrides", name), f"unknown service {name!r}{_known(spec.services)}"))
    excluded = set(target.exclude)
    view: dict[str, Service] = {}
    for name, service in spec.services.items():
        if name in excluded:
            continue
        override = target.override(name)
        place = _override_locator(at, name, target)
        try:
            merged = apply_override(service, override)
        except ValidationError as exc:
            merged_data = merge_override(service.model_dump(exclude_unset=True), override)
            wrapped = {"services": {name: merged_data}}
            for error in exc.errors():
                path, message = describe({**error, "loc": ("services", name, *error["loc"])}, wrapped)
                if (place(path[2:]), message) not in found:  # a bad default fails every service alike
                    found.append((place(path[2:]), message))
            continue
        view[name] = merged
    # services as this target sees them (excluded ones as written: refusing references to them is below)
    seen = {**spec.services, **view}
    for name, merged in view.items():
        if target.override(name):
            place = _override_locator(at, name, target)
            for path, message in _check_service(spec, name, merged, ("services", name), seen):
                finding = (place(path[2:]), _after_overrides(message, target_name))
                if finding not in base_findings:
                    found.append(finding)
    for name, service in view.items():
        place = _override_locator(at, name, target)
        for field_path, text in placeholder_fields(service):
            for ref in _safe_references(text):
                if isinstance(ref, ServiceRef | ResourceRef) and _name_of(ref) in excluded:
                    what = "service" if isinstance(ref, ServiceRef) else "resource"
                    message = (
                        f"refers to {what} {_name_of(ref)!r}, which target {target_name!r} excludes; "
                        f"override this field under targets.{target_name}.overrides.{name}"
                    )
                    found.append((place(field_path), message))
                elif isinstance(ref, ServiceRef) and ref.service in view:
                    # the target's overrides may have changed the ports this refers to
                    problem = _check_ref(view, spec, ref)
                    finding = (place(field_path), problem or "")
                    if problem and finding not in base_findings and finding not in found:
                        found.append((finding[0], f"{problem} (on target {target_name!r}, after its overrides)"))
    overrides_deps = any("depends_on" in o for o in [target.defaults, *target.overrides.values()])
    if overrides_deps and not any(m.startswith("dependency cycle") for _, m in base_findings):
        graph = {
            n: s.model_copy(update={"depends_on": [d for d in s.depends_on if d in view]})
            for n, s in view.items()
        }
        for cycle in find_cycles({n: s.depends_on for n, s in graph.items()}):
            edges = list(itertools.pairwise(cycle))
            changed = [e for e in edges if "depends_on" in target.override(e[0])]
            owner, dep = (changed or edges)[-1]
            place = _override_locator(at, owner, target)
            index = graph[owner].depends_on.index(dep)
            message = f"dependency cycle: {' -> '.join(cycle)} (on target {target_name!r})"
            found.append((place(("depends_on", index)), message))
    return found


def _after_overrides(message: str, target: str) -> str:
    """A finding about the service's own ports, said to be about the target's view of them."""
    return f"{message} (on target {target!r}, after its overrides)" if message.startswith("${ports.") else message


def _check_exclude(spec: Spec, at: FieldPath, exclude: Sequence[str]) -> list[Finding]:
    """Names a target excludes that are neither a service nor a resource."""
    what = "service or resource" if spec.resources else "service"
    known = _known([*spec.services, *spec.resources])
    return [((*at, "exclude", i), f"unknown {what} {name!r}{known}")
            for i, name in enumerate(exclude) if name not in spec.services and name not in spec.resources]


def _override_locator(at: FieldPath, name: str, target: Target) -> Callable[[FieldPath], FieldPath]:
    """Map a path inside a merged service to where the file sets it: the service's override on
    the target when that gives the field (or that key, for merged fields), else the target's
    defaults when they give it, else the base service."""
    sections = [((*at, "overrides", name), target.overrides.get(name) or {}), ((*at, "defaults"), target.defaults)]

    def place(inner: FieldPath) -> FieldPath:
        for prefix, given in sections:
            if not given:
                continue
            if not inner:
                return prefix
            head = inner[0]
            if isinstance(head, str) and head in given:
                value = given[head]
                if head not in MERGED_FIELDS or len(inner) == 1 or not isinstance(value, Mapping) or inner[1] in value:
                    return (*prefix, *inner)
        return ("services", name, *inner)

    return place


def _name_of(ref: ServiceRef | ResourceRef) -> str:
    return ref.service if isinstance(ref, ServiceRef) else ref.name


def _safe_references(text: str) -> list[Reference]:
    """The references in a text, or none when it is malformed (that is reported elsewhere)."""
    try:
        return list(references(text))
    except PlaceholderSyntaxError:
        return []


def _known(names: Any) -> str:
    listed = ", ".join(sorted(names))
    return f" (known: {listed})" if listed else " (none are declared)"
