"""Emulator gaps filled: service fields moto drops, which AWS keeps and DescribeServices returns.

- enableExecuteCommand (create sets it, default false; update changes it only when given): ECS Exec needs it.
- healthCheckGracePeriodSeconds (create keeps what was sent, returned only when sent; moto's update
  already sets it): the data plane's scheduler ignores failed health checks for that long after a
  task starts (default 0, as ECS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KEPT = (("enableExecuteCommand", "enable_execute_command", bool), ("healthCheckGracePeriodSeconds",
                                                                   "health_check_grace_period_seconds", int))
"""(request parameter, the attribute moto serializes it from, its type) of each field kept."""


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    """Keep the fields on the service objects moto serializes."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    patch(EC2ContainerServiceResponse, "create_service", _keeping({"enableExecuteCommand": False}))
    patch(EC2ContainerServiceResponse, "update_service", _keeping({}))


def grace_seconds(service: Any) -> float:
    """A service's health check grace period (0 when none was sent, as ECS)."""
    return float(getattr(service, "health_check_grace_period_seconds", None) or 0)


def _keeping(defaults: dict[str, bool]) -> Callable[[Any], Any]:
    """A patch maker for a create or update response: set each field given, else its default (if any)."""

    def make(original: Any) -> Any:
        def patched(self: Any) -> Any:
            result = original(self)
            body = getattr(result, "result", None)
            service = body.get("service") if isinstance(body, dict) else None
            for param, attribute, kind in KEPT if service is not None else ():
                given = self._get_param(param)
                value = defaults.get(param) if given is None else kind(given)
                if value is not None:
                    setattr(service, attribute, value)
            return result

        return patched

    return make
