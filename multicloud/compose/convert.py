"""A compose project (its files merged) as spec data, with where each field came from and what was not carried."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multicloud.compose.context import Context, FieldPath, Located
from multicloud.compose.services import convert_service
from multicloud.errors import Problem
from multicloud.spec.models import IDENTIFIER_PATTERN, NAME_PATTERN

DEFAULT_TARGET = {"local": {"provider": "docker"}}
"""The target an imported project gets: the local Docker engine, where compose ran it."""
TOP_LEVEL_WHY = {
    "version": "obsolete in compose itself",
    "networks": "the services of an app share one network on every target",
    "configs": "build the files into the image, or use secrets",
    "include": "list the included files with -f instead",
}


@dataclass
class Converted:
    """Spec data from a compose project, the location of its fields, the notes and the errors."""

    data: dict[str, Any]
    at: dict[FieldPath, Located]
    notes: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


def convert(document: dict[str, Any], at: dict[FieldPath, Located], directory: str,
            environ: Mapping[str, str], profiles: Sequence[str] = ()) -> Converted:
    """Convert a merged compose document; services outside the active profiles are left out (noted)."""
    ctx = Context(at, directory, environ)
    services: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for key in document:
        if key in ("services", "volumes", "secrets", "name") or key.startswith("x-"):
            continue
        why = f": {TOP_LEVEL_WHY[key]}" if key in TOP_LEVEL_WHY else ""
        ctx.note((key,), f"the spec has no top-level `{key}`{why}")
    compose_services = document.get("services")
    if not isinstance(compose_services, dict) or not compose_services:
        ctx.error(("services",), "a compose file needs services: a mapping of service names")
        compose_services = {}
    for name, service in compose_services.items():
        if not isinstance(service, dict):
            ctx.error(("services", name), "a service is a mapping (image, build, ports...)")
            continue
        active = service.get("profiles")
        if active is not None and not (isinstance(active, list) and all(isinstance(p, str) for p in active)):
            ctx.error(("services", name, "profiles"), "profiles is a list of names")
            continue
        if active and not set(active) & set(profiles):
            ctx.note(("services", name, "profiles"), f"in profiles {', '.join(active)}, none active "
                     f"(--profile {active[0]} to include it)")
            continue
        spec_name = _spec_name(name)
        if spec_name is None:
            ctx.error(("services", name), f"service name {name!r} cannot be a spec name (letters, digits, '-')")
            continue
        if spec_name != name:
            ctx.note(("services", name), f"renamed {spec_name!r}: spec names are lowercase letters, digits and '-'")
        renamed[name] = spec_name
        ctx.service = ("services", spec_name)
        ctx.spec_at[ctx.service] = ctx.where(("services", name))
        out: dict[str, Any] = {}
        convert_service(ctx, name, service, out)
        for key in out:
            ctx.spec_at.setdefault((*ctx.service, key), ctx.where(("services", name, key)))
        services[spec_name] = out
    _fix_depends(ctx, services, renamed)
    data: dict[str, Any] = {"name": _project_name(document, directory), "services": services}
    data["volumes"] = _volumes(ctx, document.get("volumes"))
    data["secrets"] = _secrets(ctx, document.get("secrets"))
    data["targets"] = {name: dict(target) for name, target in DEFAULT_TARGET.items()}
    for key in ("name", "services", "volumes", "secrets"):
        ctx.spec_at.setdefault((key,), ctx.where((key,)))
    return Converted(data, ctx.spec_at, ctx.notes, ctx.errors)


def _fix_depends(ctx: Context, services: dict[str, Any], renamed: dict[str, str]) -> None:
    """depends_on by the spec's names; a dependency left out (by its profile) is dropped with a note."""
    for path, name in ctx.depends:
        if name not in renamed:
            ctx.note((*path, name), f"{name} is not part of the spec (not active, or not defined)")
    for out in services.values():
        if "depends_on" in out:
            kept = [renamed[d] for d in out["depends_on"] if d in renamed]
            out["depends_on"] = kept
            if not kept:
                del out["depends_on"]


def _volumes(ctx: Context, section: Any) -> dict[str, Any]:
    """Top-level named volumes as spec volumes (their driver options are noted, not carried)."""
    volumes: dict[str, Any] = {}
    if section is not None and not isinstance(section, dict):
        ctx.error(("volumes",), "volumes is a mapping of volume names")
    for name, options in (section or {}).items() if isinstance(section, dict) else ():
        if options is not None and not isinstance(options, dict):
            ctx.error(("volumes", name), "a volume is empty or a mapping (driver, external, name...)")
            continue
        for key in options or {}:
            if not str(key).startswith("x-"):
                ctx.note(("volumes", name, key), f"spec volumes have no `{key}`: each target provides its own storage")
        if re.fullmatch(IDENTIFIER_PATTERN, str(name)):
            volumes[str(name)] = {}
            ctx.spec_at[("volumes", str(name))] = ctx.where(("volumes", name))
    return volumes


def _secrets(ctx: Context, section: Any) -> dict[str, Any]:
    """Top-level secrets: `file` as from_file, `environment` as from_env; others noted."""
    secrets: dict[str, Any] = {}
    if section is not None and not isinstance(section, dict):
        ctx.error(("secrets",), "secrets is a mapping of secret names")
    for name, given in (section or {}).items() if isinstance(section, dict) else ():
        path = ("secrets", name)
        options = given if isinstance(given, dict) else {}
        if "file" in options:
            secrets[name] = {"from_file": ctx.resolve((*path, "file"), str(options["file"]))}
        elif "environment" in options:
            secrets[name] = {"from_env": str(options["environment"])}
        else:
            ctx.error(path, "only file: and environment: secrets can be carried (external secrets live "
                      "in one engine; declare the value's source)")
            continue
        if not re.fullmatch(IDENTIFIER_PATTERN, str(name)):
            ctx.error(path, f"secret name {name!r}: a spec secret is letters, digits, '_' and '-'")
        for key in options:
            if key not in ("file", "environment") and not str(key).startswith("x-"):
                ctx.note((*path, key), f"spec secrets have no `{key}`")
        ctx.spec_at[path] = ctx.where(path)
    return secrets


def _spec_name(name: str) -> str | None:
    """A compose name as a spec name (lowercase, '_' and '.' as '-'), or None when it cannot be one."""
    candidate = re.sub(r"[_.]", "-", name.lower())
    return candidate if re.fullmatch(NAME_PATTERN, candidate) else None


def _project_name(document: dict[str, Any], directory: str) -> str:
    """The project's name (compose's `name:`, else its directory's name) as a spec name."""
    given = document.get("name")
    raw = str(given) if given else os.path.basename(os.path.abspath(directory))
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"app-{cleaned}".strip("-")
    return cleaned[:63].rstrip("-")
