"""Deployments that fail, in the emulator (installed by multicloud_aws.gaps), as ECS's
deployment circuit breaker ends them on AWS: tasks of an image marked with fail_image() never
turn healthy; the breaker fails the deployment and, with rollback on, rolls the service back to
the revision it ran before: that rollback becomes the PRIMARY deployment and completes, the
failure is only in the events. A first deployment has nothing to go back to: it stays FAILED."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

_failing: set[str] = set()


def fail_image(image: str | None) -> None:
    """Make tasks of `image` fail to start (None: every image starts again)."""
    if image is None:
        _failing.clear()
    else:
        _failing.add(image)


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None]) -> None:
    """Remember each service's revision before an update (what a rollback goes back to)."""
    from moto.ecs.models import EC2ContainerServiceBackend

    patch(EC2ContainerServiceBackend, "update_service", _remembering)


def uninstall() -> None:
    """Forget the failing images."""
    _failing.clear()


def _remembering(original: Any) -> Any:
    def patched(self: Any, properties: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):  # moto raises its own error for an unknown service below
            before = self._get_service(properties.get("cluster", "default"), str(properties.get("service")))
            before.multicloud_previous = before.task_definition  # read when the new deployment ends
        return original(self, properties, *args, **kwargs)

    return patched


def failed(backend: Any, service: Any) -> bool:
    """Whether the deployment that is reaching its end fails; a failed one is rolled back to the
    previous revision (False: that rollback now completes) or, with none, left FAILED (True)."""
    try:
        image = backend.describe_task_definition(service.task_definition).container_definitions[0].get("image")
    except Exception:
        return False
    if image not in _failing:
        return False
    from moto.core.utils import utcnow

    deployment = service.deployments[0] if service.deployments else {"id": "ecs-svc/0", "createdAt": utcnow()}
    reason = f"ECS deployment {deployment['id']} failed: tasks failed to start."
    previous = getattr(service, "multicloud_previous", None)
    previous = previous if previous != service.task_definition else None
    messages = [f"(service {service.name}) deployment {deployment['id']} deployment failed: tasks failed to start."]
    if previous:
        messages.insert(0, f"(service {service.name}) rolling back to {previous}.")
        service.task_definition, service.multicloud_previous = previous, None
    for message in reversed(messages):
        service.events.insert(0, {"id": f"{time.time_ns()}", "createdAt": utcnow(), "message": message})
    if previous:
        return False
    service.running_count = 0
    deployment.update({"status": "PRIMARY", "runningCount": 0, "rolloutState": "FAILED",
                       "rolloutStateReason": reason, "taskDefinition": service.task_definition})
    service.deployments = [deployment]
    return True
