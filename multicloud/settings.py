"""Provider settings: the pydantic models providers declare, checked by the core like the spec.

A provider declares its target settings as a `ProviderSettings` model in a module that imports
no cloud SDK, and registers it under the entry-point group `multicloud.settings` with the
provider's name. The core validates a target's settings against it (every problem at once,
did-you-mean, file:line:col), puts it in `multicloud schema`, and hands the provider the model.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from importlib import metadata
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from multicloud.errors import FieldPath, PluginError, Problem, SettingsError
from multicloud.registry import available
from multicloud.spec.messages import describe, dotted
from multicloud.spec.models import TARGET_RESERVED, SourceMap, Spec

SETTINGS_GROUP = "multicloud.settings"
RESERVED = TARGET_RESERVED
"""Keys of a target that belong to the core, not to the provider's settings."""

SettingsT = TypeVar("SettingsT", bound="ProviderSettings")


class ProviderSettings(BaseModel):
    """Base of every provider's settings: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_settings(
    model: type[SettingsT],
    raw: Mapping[str, Any] | SettingsT,
    *,
    provider: str,
    context: Mapping[str, Any] | None = None,
) -> SettingsT:
    """Return raw settings as the provider's model (a model instance passes through); raise
    SettingsError listing every problem, each as (field path, message). `context` reaches the
    model's validators (e.g. an environment to read defaults from)."""
    if isinstance(raw, model):
        return raw
    data = dict(raw)
    try:
        return model.model_validate(data, context=dict(context) if context is not None else None)
    except ValidationError as exc:
        problems = [_problem(model, provider, error, data) for error in exc.errors()]
        raise SettingsError.of(sorted(set(problems), key=lambda p: dotted(p[0]))) from None


def _problem(model: type[BaseModel], provider: str, error: Any, data: Mapping[str, Any]) -> tuple[FieldPath, str]:
    """(field path, message) for one pydantic error; an unknown top-level setting names the
    close match or, failing one, every setting there is."""
    path, message = describe(error, data, root=model)
    if error["type"] == "extra_forbidden" and len(path) == 1:
        known = list(model.model_fields)
        close = difflib.get_close_matches(str(path[0]), known, n=1)
        advice = f"did you mean {close[0]!r}?" if close else f"known settings: {', '.join(known)}"
        message = f"unknown setting {path[0]!r} for {provider}; {advice}"
    return path, message


@functools.cache
def settings_model(provider: str) -> type[ProviderSettings] | None:
    """The settings model a provider registered under `multicloud.settings`, or None; importing
    it imports no SDK. Raise PluginError when the registered object is not a ProviderSettings.
    Cached: installed plugins do not change while a process runs."""
    for ep in metadata.entry_points(group=SETTINGS_GROUP):
        if ep.name == provider:
            try:
                model = ep.load()
            except Exception as exc:
                raise PluginError(f"settings of provider {provider!r} ({ep.value}) failed to load: {exc}") from exc
            if not (isinstance(model, type) and issubclass(model, ProviderSettings)):
                raise PluginError(f"settings of provider {provider!r} ({ep.value}) is not a ProviderSettings model")
            return model
    return None


def settings_models() -> dict[str, type[ProviderSettings]]:
    """Every installed provider's settings model, by provider name (for `multicloud schema`)."""
    found: dict[str, type[ProviderSettings]] = {}
    for ep in metadata.entry_points(group=SETTINGS_GROUP):
        model = settings_model(ep.name)
        if model is not None:
            found.setdefault(ep.name, model)
    return dict(sorted(found.items()))


def locate(source: SourceMap, base: FieldPath, problems: list[tuple[FieldPath, str]]) -> list[Problem]:
    """Spec problems at the line of each (field path, message) under `base` (e.g. a target)."""
    located = []
    for field, message in problems:
        path = (*base, *field)
        located.append(Problem(*source.where(path), dotted(path), message))
    return sorted(located, key=lambda p: (p.line, p.column, p.field))


def target_problems(spec: Spec) -> list[Problem]:
    """Every problem with the settings of every target whose provider declares a settings
    model, at its line; targets of providers not installed are not checked."""
    problems: list[Problem] = []
    installed = [p.name for p in available()]
    for name, target in spec.targets.items():
        model = settings_model(target.provider)
        if model is None:
            close = difflib.get_close_matches(target.provider, installed, n=1)
            if close and target.provider not in installed:
                problems += locate(spec.source, ("targets", name, "provider"),
                                   [((), f"no provider {target.provider!r} is installed; did you mean {close[0]!r}?")])
            continue
        try:
            validate_settings(model, target.settings, provider=target.provider)
        except SettingsError as exc:
            problems += locate(spec.source, ("targets", name), exc.problems)
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))
