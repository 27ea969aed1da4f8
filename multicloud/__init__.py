"""multicloud: deploy one container spec to ECS Fargate, ACI, Cloud Run or local Docker.

Names are imported on first use so that `multicloud --help` stays fast.
"""

from __future__ import annotations

TYPE_CHECKING = False
__version__ = "0.1.0"

_EXPORTS = {
    "load": "multicloud.spec",
    "loads": "multicloud.spec",
    "spec_from_dict": "multicloud.spec",
    "Spec": "multicloud.spec",
    "Variables": "multicloud.spec",
    "Deployment": "multicloud.api",
    "Plan": "multicloud.planner",
    "Action": "multicloud.planner",
    "ApplyResult": "multicloud.engine",
    "Resource": "multicloud.resources",
    "Provider": "multicloud.contract",
    "Capabilities": "multicloud.contract",
    "MulticloudError": "multicloud.errors",
}

if TYPE_CHECKING:
    from typing import Any

    from multicloud.api import Deployment
    from multicloud.contract import Capabilities, Provider
    from multicloud.engine import ApplyResult
    from multicloud.errors import MulticloudError
    from multicloud.planner import Action, Plan
    from multicloud.resources import Resource
    from multicloud.spec import Spec, Variables, load, loads, spec_from_dict

__all__ = [
    "Action",
    "ApplyResult",
    "Capabilities",
    "Deployment",
    "MulticloudError",
    "Plan",
    "Provider",
    "Resource",
    "Spec",
    "Variables",
    "__version__",
    "load",
    "loads",
    "spec_from_dict",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'multicloud' has no attribute {name!r}")
