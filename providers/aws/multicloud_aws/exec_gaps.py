"""An emulator gap filled: moto drops a service's enableExecuteCommand, which AWS keeps (create sets
it, default false; update changes it only when given) and DescribeServices returns; ECS Exec needs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    """Keep enableExecuteCommand on the service objects moto serializes."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    patch(EC2ContainerServiceResponse, "create_service", _keeping(default=False))
    patch(EC2ContainerServiceResponse, "update_service", _keeping(default=None))


def _keeping(default: bool | None) -> Callable[[Any], Any]:
    """A patch maker for a create or update response: set the flag given, else `default` (None: leave it)."""

    def make(original: Any) -> Any:
        def patched(self: Any) -> Any:
            result = original(self)
            given = self._get_param("enableExecuteCommand")
            body = getattr(result, "result", None)
            service = body.get("service") if isinstance(body, dict) else None
            value = default if given is None else bool(given)
            if service is not None and value is not None:
                service.enable_execute_command = value
            return result

        return patched

    return make
