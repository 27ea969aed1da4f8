"""Deployments that fail, in the emulator (installed by multicloud_aws.gaps), as ECS's
deployment circuit breaker ends them on AWS: tasks of an image marked with fail_image() never
turn healthy; the breaker fails the deployment and, with rollback on, rolls the service back to
the revision it ran before: that rollback becomes the PRIMARY deployment and completes, the
failure is only in the events. A first deployment has nothing to go back to: it stays FAILED."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

_failing: set[str] = set()
FAILED_REASON = "ECS deployment circuit breaker: tasks failed to start."
"""The rolloutStateReason of a deployment the circuit breaker failed."""


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
    if trip(service, deployment):
        return False
    service.running_count = 0
    deployment.update({"status": "PRIMARY", "runningCount": 0, "taskDefinition": service.task_definition})
    service.deployments = [deployment]
    return True


def trip(service: Any, deployment: dict[str, Any]) -> str | None:
    """Fail `deployment` as the circuit breaker does (rolloutState, reason, service event) and, when the
    service ran another revision before, point the service back at it, the event naming the deployment
    that last ran it (a new deployment of it is the caller's); that revision, or None."""
    from multicloud_aws.dataplane.deployments import event

    deployment.update(rolloutState="FAILED", rolloutStateReason=FAILED_REASON)
    event(service, f"(service {service.name}) (deployment {deployment['id']}) deployment failed: "
                   "tasks failed to start.")
    previous = getattr(service, "multicloud_previous", None)
    if not previous or previous == service.task_definition:
        return None
    back_to = next((d["id"] for d in service.deployments
                    if d is not deployment and d.get("taskDefinition") == previous),
                   getattr(service, "multicloud_completed", None))
    service.task_definition, service.multicloud_previous = previous, None
    event(service, f"(service {service.name}) rolling back to deployment {back_to or deployment['id']}.")
    return str(previous)
