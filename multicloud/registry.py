"""Provider discovery through the `multicloud.providers` entry-point group, loaded lazily."""

from __future__ import annotations

import difflib
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
        names = [p.name for p in available(group)]
        close = difflib.get_close_matches(name, names, n=1)
        advice = f"did you mean {close[0]!r}? " if close else ""
        raise ProviderNotFoundError(
            f"no {kind} named {name!r} is installed ({advice}installed: {', '.join(names) or 'none'})",
            hint=f"install the plugin that provides it, e.g. `pip install multicloud-{name.split('-', maxsplit=1)[0]}`",
        )
    try:
        return matches[0].load()
    except Exception as exc:
        raise PluginError(f"{kind} plugin {name!r} ({matches[0].value}) failed to load: {exc}") from exc


def create_provider(name: str, settings: Mapping[str, Any]) -> Provider:
    """Load the named provider and build it from target settings, checked first against the
    provider's settings model when it registered one (SettingsError lists every problem)."""
    from multicloud.settings import settings_model, validate_settings

    factory = load_factory(name)
    model = settings_model(name)
    checked = settings if model is None else validate_settings(model, settings, provider=name)
    try:
        provider = factory(checked)
    except MulticloudError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"provider {name!r} rejected its settings: {exc}") from exc
    if not isinstance(provider, Provider):
        raise PluginError(f"provider plugin {name!r} did not return an object following the Provider contract")
    return provider
