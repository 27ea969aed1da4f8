"""Calls AWS refuses for a while, repeated inside the provider. Deletes while what they delete is still in use:
`delete_service(force=True)` returns while the service is DRAINING (its tasks stop after the NLB's
deregistration delay), and until then the cluster (ClusterContainsTasksException), its Cloud Map
service (ResourceInUse) and the security group of its network interfaces (DependencyViolation)
cannot be deleted. Each wait is bounded by the target's `delete_timeout`, as Terraform's
resourceClusterDelete and resourceServiceDelete wait (10 and 20 minutes). Creates while what
they need has not propagated (PROPAGATING)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from multicloud.errors import NotFoundError, RetryableError
from multicloud.retry import RetryPolicy, call_with_retries, wait_for
from multicloud_aws.clients import error_code, guard
from multicloud_aws.context import Context

T = TypeVar("T")
IN_USE_CODES = frozenset({
    "ClusterContainsServicesException", "ClusterContainsTasksException", "ResourceInUse", "DependencyViolation",
})


def patience(ctx: Context) -> RetryPolicy:
    """How a destroy waits for AWS: backing off from 0.25 s to 10 s, for delete_timeout seconds."""
    return RetryPolicy.within(ctx.settings.delete_timeout, base_delay=0.25, max_delay=10.0)


class _Refused(RetryableError):
    """AWS refused a call for now (in use, not propagated yet); the refusal kept as `refusal`."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


PROPAGATING = ("Unable to assume the service linked role", "does not have an associated load balancer")
"""What ECS answers until something new has propagated: a new account's service-linked role
(created when its first service needs it), a target group's listener. Terraform's resourceServiceCreate
retries both for its propagationTimeout (2 minutes)."""
PROPAGATION_TIMEOUT = 120.0


def until_released(ctx: Context, call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run a delete call again while AWS answers that its object is still in use, for at most
    delete_timeout seconds; then its last error propagates (the object is left as it was)."""
    return _repeat(call, lambda exc: error_code(exc) in IN_USE_CODES, patience(ctx), sleep)


def until_propagated(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep,
                     timeout: float = PROPAGATION_TIMEOUT) -> T:
    """Run a create call again while ECS answers that what it needs has not propagated yet
    (PROPAGATING), for at most `timeout` seconds; then its last error propagates (nothing was created)."""
    policy = RetryPolicy.within(timeout, base_delay=0.25, max_delay=10.0)
    return _repeat(call, lambda exc: any(text in _message(exc) for text in PROPAGATING), policy, sleep)


def _repeat(call: Callable[[], T], refused: Callable[[Exception], bool], policy: RetryPolicy,
            sleep: Callable[[float], None]) -> T:
    """Call again, as the policy says, while AWS's answer is `refused`; then that answer propagates."""

    def attempt() -> T:
        try:
            return call()
        except Exception as exc:
            if refused(exc):
                raise _Refused(exc) from exc
            raise

    try:
        return call_with_retries(attempt, policy, sleep=sleep)[0]
    except _Refused as exc:
        raise exc.refusal from None


def _message(exc: BaseException) -> str:
    """The AWS error message of a botocore ClientError, or ''."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""


def until_drained(ctx: Context, cluster: str, service: str, *,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait while the ECS service is DRAINING (deleted, tasks still running), for at most
    delete_timeout seconds; raise RetryableError if it still is then (a later destroy resumes)."""

    def drained() -> bool | None:
        try:
            with guard(f"waiting for ECS service {service} to drain"):
                found = ctx.client("ecs").describe_services(cluster=cluster, services=[service])
        except NotFoundError:
            return True
        return None if any(s.get("status") == "DRAINING" for s in found.get("services", [])) else True

    wait_for(drained, patience(ctx), sleep=sleep, timed_out=lambda: RetryableError(
        f"ECS service {service} is still draining after {ctx.settings.delete_timeout}s",
        hint="its tasks stop after the load balancer's deregistration delay; "
             "run destroy again, or raise the target's `delete_timeout`"))
