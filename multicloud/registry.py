"""Provider discovery through the `multicloud.providers` entry-point group, loaded lazily."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from multicloud.contract import Provider
from multicloud.errors import MulticloudError, PluginError, ProviderNotFoundError, UserError

PROVIDERS_GROUP = "multicloud.providers"
EMULATORS_GROUP = "multicloud.emulators"


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin as its metadata describes it; nothing is imported to list it."""

    name: str
    value: str
    distribution: str
    version: str


def available(group: str = PROVIDERS_GROUP) -> list[PluginInfo]:
    """List installed plugins of a group from package metadata alone."""
    found: dict[str, PluginInfo] = {}
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        found.setdefault(
            ep.name,
            PluginInfo(ep.name, ep.value, dist.name if dist else "?", dist.version if dist else "?"),
        )
    return sorted(found.values(), key=lambda p: p.name)


def load_factory(name: str, group: str = PROVIDERS_GROUP) -> Any:
    """Import the plugin registered under `name`; raise by name if missing or broken."""
    kind = "emulator" if group == EMULATORS_GROUP else "provider"
    matches = [ep for ep in metadata.entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(p.name for p in available(group)) or "none"
        raise ProviderNotFoundError(
            f"no {kind} named {name!r} is installed (installed: {known})",
            hint=f"install the plugin that provides it, e.g. `pip install multicloud-{name.split('-', maxsplit=1)[0]}`",
        )
    try:
        return matches[0].load()
    except Exception as exc:
        raise PluginError(f"{kind} plugin {name!r} ({matches[0].value}) failed to load: {exc}") from exc


def create_provider(name: str, settings: Mapping[str, Any]) -> Provider:
    """Load the named provider and build it from target settings."""
    factory = load_factory(name)
    try:
        provider = factory(settings)
    except MulticloudError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"provider {name!r} rejected its settings: {exc}") from exc
    if not isinstance(provider, Provider):
        raise PluginError(f"provider plugin {name!r} did not return an object following the Provider contract")
    return provider
