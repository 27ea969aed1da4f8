"""Deletes AWS refuses while what they delete is still in use, waited out inside the provider:
`delete_service(force=True)` returns while the service is DRAINING (its tasks stop after the NLB's
deregistration delay), and until then the cluster (ClusterContainsTasksException), its Cloud Map
service (ResourceInUse) and the security group of its network interfaces (DependencyViolation)
cannot be deleted. Each wait is bounded by the target's `delete_timeout`, as Terraform's
resourceClusterDelete and resourceServiceDelete wait (10 and 20 minutes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from multicloud.errors import NotFoundError, RetryableError
from multicloud_aws.clients import error_code, guard
from multicloud_aws.context import Context

T = TypeVar("T")
IN_USE_CODES = frozenset({
    "ClusterContainsServicesException", "ClusterContainsTasksException", "ResourceInUse", "DependencyViolation",
})
FIRST_DELAY, MAX_DELAY = 0.25, 10.0


def until_released(ctx: Context, call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run a delete call again while AWS answers that its object is still in use, for at most
    delete_timeout seconds; then its last error propagates (the object is left as it was)."""
    deadline = time.monotonic() + ctx.settings.delete_timeout
    delay = FIRST_DELAY
    while True:
        try:
            return call()
        except Exception as exc:
            if error_code(exc) not in IN_USE_CODES or time.monotonic() + delay > deadline:
                raise
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY)


def until_drained(ctx: Context, cluster: str, service: str, *,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait while the ECS service is DRAINING (deleted, tasks still running), for at most
    delete_timeout seconds; raise RetryableError if it still is then (a later destroy resumes)."""
    deadline = time.monotonic() + ctx.settings.delete_timeout
    delay = FIRST_DELAY
    while True:
        try:
            with guard(f"waiting for ECS service {service} to drain"):
                found = ctx.client("ecs").describe_services(cluster=cluster, services=[service])
        except NotFoundError:
            return
        if not any(s.get("status") == "DRAINING" for s in found.get("services", [])):
            return
        if time.monotonic() + delay > deadline:
            raise RetryableError(f"ECS service {service} is still draining after {ctx.settings.delete_timeout}s",
                                 hint="its tasks stop after the load balancer's deregistration delay; "
                                      "run destroy again, or raise the target's `delete_timeout`")
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY)

