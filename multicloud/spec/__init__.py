"""The declarative spec: models, loading with precise errors, per-target views.

Names are imported on first use: the package's light modules (files, units) load without pydantic.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from multicloud.spec.backing import Postgres
    from multicloud.spec.loader import load, loads, spec_from_dict
    from multicloud.spec.models import (
        Build,
        HealthCheck,
        Port,
        Resources,
        Secret,
        Service,
        Spec,
        Target,
        Volume,
        VolumeMount,
    )
    from multicloud.spec.targets import TargetSpec, read_secrets, target_spec
    from multicloud.spec.variables import Variables

_EXPORTS = {
    **dict.fromkeys(("load", "loads", "spec_from_dict"), "multicloud.spec.loader"),
    **dict.fromkeys(
        ("Build", "HealthCheck", "Port", "Resources", "Secret", "Service", "Spec", "Target", "Volume", "VolumeMount"),
        "multicloud.spec.models",
    ),
    **dict.fromkeys(("TargetSpec", "read_secrets", "target_spec"), "multicloud.spec.targets"),
    "Variables": "multicloud.spec.variables",
    "Postgres": "multicloud.spec.backing",
}

__all__ = [
    "Build",
    "HealthCheck",
    "Port",
    "Postgres",
    "Resources",
    "Secret",
    "Service",
    "Spec",
    "Target",
    "TargetSpec",
    "Variables",
    "Volume",
    "VolumeMount",
    "load",
    "loads",
    "read_secrets",
    "spec_from_dict",
    "target_spec",
]


def __getattr__(name: str) -> object:
    """Import an exported name's module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'multicloud.spec' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
