"""An ECS service's deployments as the emulator's scheduler keeps them: a new revision starts a PRIMARY
deployment (the previous one turns ACTIVE until its tasks stop), tasks that fail to start count against
it until the circuit breaker fails it and rolls back, and it completes once its tasks run and no older
one is left; the counts and events DescribeServices reports come from here."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from multicloud_aws import rollbacks

if TYPE_CHECKING:
    from multicloud_aws.dataplane.tasks import EmulatedTask

PENDING = ("PROVISIONING", "PENDING", "ACTIVATING")
"""The lastStatus of a task that pendingCount counts: started, not yet RUNNING."""


def roll_out(backend: Any, service: Any) -> None:
    """CreateService or UpdateService took effect: a new revision starts a new PRIMARY deployment
    (the previous one turns ACTIVE until its tasks stop); a count change updates it."""
    from moto.core.utils import utcnow

    primary = next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)
    desired = int(service.desired_count or 0)
    ours = primary is not None and bool(primary.get("multicloud_started"))
    if ours and primary is not None and primary.get("taskDefinition") == service.task_definition:
        primary.update(desiredCount=desired, updatedAt=utcnow())
        return
    kept = [d for d in service.deployments if d.get("multicloud_started")]
    for old in kept:
        old["status"] = "ACTIVE"
    ident = str(primary["id"]) if primary is not None and not ours else f"ecs-svc/{time.time_ns()}"
    now = utcnow()
    service.deployments = [{
        "id": ident, "status": "PRIMARY", "taskDefinition": service.task_definition,
        "desiredCount": desired, "runningCount": 0, "pendingCount": 0, "failedTasks": 0,
        "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {ident} in progress.",
        "createdAt": now, "updatedAt": now, "launchType": service.launch_type or "FARGATE",
        "multicloud_started": True}, *kept]
    if not rollbacks.failed(backend, service) and \
            service.deployments[0].get("taskDefinition") != service.task_definition:
        roll_out(backend, service)  # fail_image: rolled back to the previous revision


def record_failure(task: EmulatedTask, rolled_back: Callable[[], None]) -> None:
    """Count a task that failed on its deployment; trip the circuit breaker at ECS's threshold, calling
    `rolled_back` when that rolled the service back."""
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[task.account_id][task.region_name]
    service = backend.services.get(f"{task.cluster_name}:{task.service_name}")
    if service is None:
        return
    deployment: dict[str, Any] | None = next((d for d in service.deployments if d.get("id") == task.started_by),
                                             None)
    if deployment is None or deployment.get("rolloutState") != "IN_PROGRESS":
        return
    deployment["failedTasks"] = int(deployment.get("failedTasks") or 0) + 1
    threshold = min(200, max(3, math.ceil(0.5 * int(service.desired_count or 0))))
    if deployment["failedTasks"] >= threshold and _trip(backend, service, deployment):
        rolled_back()


def _trip(backend: Any, service: Any, deployment: dict[str, Any]) -> bool:
    """The circuit breaker fails the deployment and rolls back to the previous revision, if any
    (whether it did)."""
    if rollbacks.trip(service, deployment) is None:
        return False
    roll_out(backend, service)
    return True


def count(service: Any, primary: dict[str, Any], tasks: list[EmulatedTask], ready: int, desired: int) -> None:
    """runningCount (tasks RUNNING: not those on their way out) and pendingCount (not yet RUNNING) of the
    service and its deployments; completion, once no task of an older revision is left (STOPPED)."""
    from moto.core.utils import utcnow

    live = [t for t in tasks if t.last_status != "STOPPED"]
    service.running_count = sum(t.last_status == "RUNNING" for t in live)
    service.pending_count = sum(t.last_status in PENDING for t in live)
    for deployment in service.deployments:
        mine = [t for t in live if t.started_by == deployment.get("id")]
        deployment.update(runningCount=sum(t.last_status == "RUNNING" for t in mine),
                          pendingCount=sum(t.last_status in PENDING for t in mine))
    older = [t for t in live if t.task_definition_arn != service.task_definition]
    if primary.get("rolloutState") == "IN_PROGRESS" and ready >= desired and not older:
        primary.update(rolloutState="COMPLETED", updatedAt=utcnow(),
                       rolloutStateReason=f"ECS deployment {primary.get('id')} completed.")
        service.deployments = [primary]
        service.multicloud_completed = primary.get("id")
        event(service, f"(service {service.name}) (deployment {primary.get('id')}) deployment completed.")
        event(service, f"(service {service.name}) has reached a steady state.")


def event(service: Any, message: str) -> None:
    """Add a service event (newest first, the last 20 kept)."""
    from moto.core.utils import utcnow

    service.events.insert(0, {"id": f"{time.time_ns()}", "createdAt": utcnow(), "message": message})
    del service.events[20:]
