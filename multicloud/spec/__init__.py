"""The declarative spec: models, loading with precise errors, per-target views."""

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
