"""Plans limited to some services (`plan/apply/destroy SERVICE…`): which services and resources they take in."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from multicloud.errors import UserError
from multicloud.resources import Resource
from multicloud.spec.models import Service
from multicloud.spec.placeholders import PlaceholderSyntaxError, ServiceRef, placeholder_fields, references
from multicloud.spec.targets import TargetSpec


@dataclass(frozen=True)
class Scope:
    """The services a targeted plan acts on: those named, and the others it takes in with why."""

    named: tuple[str, ...]
    services: tuple[str, ...]
    included: Mapping[str, str]
    """Each service taken in besides the named ones -> why (e.g. "needed by web")."""

    def describe(self) -> str:
        """One line saying what the plan is limited to and what else it takes in."""
        line = f"Limited to {', '.join(self.named)}"
        if self.included:
            line += "; also included: " + ", ".join(f"{name} ({why})" for name, why in self.included.items())
        return line + "."


def needs(service: Service) -> list[str]:
    """The services one service needs: its depends_on and every service its placeholders name."""
    needed = dict.fromkeys(service.depends_on)
    for _, text in placeholder_fields(service):
        try:
            needed.update((r.service, None) for r in references(text) if isinstance(r, ServiceRef))
        except PlaceholderSyntaxError:  # reported by validation; nothing to follow
            continue
    return list(needed)


def scope(services: Mapping[str, Service], named: Sequence[str], *, destroy: bool = False) -> Scope:
    """The services a plan of `named` acts on: what they need (apply), or what needs them (destroy:
    removing a service breaks those that use it); UserError for a name the target does not run."""
    unknown = [name for name in named if name not in services]
    if unknown:
        raise UserError(f"no service {unknown[0]!r} on this target (services: {', '.join(services)})")
    graph = {name: [n for n in needs(s) if n in services] for name, s in services.items()}
    if destroy:
        graph = {name: [user for user, used in graph.items() if name in used] for name in services}
    why = "needs" if destroy else "needed by"
    included: dict[str, str] = {}
    pending = list(dict.fromkeys(named))
    while pending:
        current = pending.pop(0)
        for other in graph[current]:
            if other not in named and other not in included:
                included[other] = f"{'it ' if destroy else ''}{why} {current}"
                pending.append(other)
    chosen = set(named) | set(included)
    return Scope(tuple(dict.fromkeys(named)), tuple(n for n in services if n in chosen), included)


def limit(
    desired: Sequence[Resource], observed: Sequence[Resource], services: Sequence[str]
) -> tuple[list[Resource], list[Resource]]:
    """The desired resources of `services` and every resource they depend on, and the observed
    resources with those keys or of those services (so what a service no longer has is removed). Pure."""
    by_key = {r.key: r for r in desired}
    keys: set[str] = set()
    pending = [r.key for r in desired if r.service in services]
    while pending:
        key = pending.pop()
        if key in keys:
            continue
        keys.add(key)
        pending += [dep for dep in by_key[key].depends_on if dep in by_key] if key in by_key else []
    wanted = [r for r in desired if r.key in keys]
    found = [r for r in observed if r.key in keys or (r.service is not None and r.service in services)]
    return wanted, found


def needed_secrets(spec: TargetSpec, services: Collection[str]) -> list[str]:
    """The secrets a plan limited to `services` renders: those they use, the passwords of the resources they use,
    and every part of a TLS secret one of whose parts they use (TargetSpec.used_secrets of just them). Pure."""
    kept = {name: service for name, service in spec.services.items() if name in services}
    used = {resource for name in kept for resource in spec.uses.get(name, ())}
    resources = {name: resource for name, resource in spec.resources.items() if name in used}
    return replace(spec, services=kept, resources=resources).used_secrets()
