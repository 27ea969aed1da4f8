"""What AWS refuses, or refuses for a while, that moto accepts at once (installed by multicloud_aws.gaps):

- an NLB with two subnets in one Availability Zone (ELBv2 InvalidConfigurationRequest);
- DeleteTaskDefinitions of more than 10 revisions in one call (ECS takes up to 10);
- a new account's first use of ECS: the service-linked role AWSServiceRoleForECS is created when the
  first service needs it and, for a while after (`set_linked_role_seconds`, IAM propagating), CreateService
  answers "Unable to assume the service linked role" (Terraform's resourceServiceCreate retries it);
- CreateService with a target group that no load balancer forwards to, and, for a while after the
  listener that attaches it was created (`set_attach_seconds`), with one that does: "The target group
  … does not have an associated load balancer" (ELBv2 is eventually consistent; Terraform retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

Patch = Callable[[Any, str, Callable[[Any], Any]], None]
LINKED_ROLE = "Unable to assume the service linked role. Please verify that the ECS service linked role exists."
MAX_TASK_DEFINITIONS = 10
_lock = threading.Lock()
_state: dict[str, float] = {"linked_role_seconds": 0.0, "attach_seconds": 0.0}
_linked_role_ready: dict[str, float] = {}
"""account -> when its service-linked role works (absent: not created yet)."""
_attached_at: dict[str, float] = {}
"""target group ARN -> when a listener forwarding to it was created."""


def set_linked_role_seconds(seconds: float) -> None:
    """Make every account new to ECS: its service-linked role is created by its next CreateService,
    which is refused, as every one is until `seconds` later (0: the role always exists)."""
    with _lock:
        _state["linked_role_seconds"] = max(0.0, seconds)
        _linked_role_ready.clear()


def set_attach_seconds(seconds: float) -> None:
    """Make a target group count as attached `seconds` after the listener forwarding to it was created."""
    with _lock:
        _state["attach_seconds"] = max(0.0, seconds)


def install(patch: Patch) -> None:
    """Patch moto through gaps' `patch`."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend

    patch(ELBv2Backend, "create_load_balancer", _one_subnet_per_zone)
    patch(ELBv2Backend, "create_listener", _recording_attachments)
    patch(ELBv2Backend, "modify_listener", _recording_attachments)
    patch(EC2ContainerServiceBackend, "delete_task_definitions", _at_most_ten)
    patch(EC2ContainerServiceBackend, "create_service", _refusing_until_ready)


def uninstall() -> None:
    """Back to moto's behaviour."""
    with _lock:
        _state["linked_role_seconds"] = _state["attach_seconds"] = 0.0
        _linked_role_ready.clear()
        _attached_at.clear()


def _one_subnet_per_zone(original: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.ec2.models import ec2_backends
        from moto.elbv2.exceptions import InvalidConfigurationRequest

        ec2 = ec2_backends[self.account_id][self.region_name]
        zones: dict[str, str] = {}
        for subnet_id in kwargs.get("subnet_ids") or []:
            zone = ec2.get_subnet(subnet_id).availability_zone
            if zone in zones:
                raise InvalidConfigurationRequest(
                    "A load balancer cannot be attached to multiple subnets in the same Availability Zone "
                    f"({zones[zone]} and {subnet_id} are both in {zone})")
            zones[zone] = subnet_id
        return original(self, *args, **kwargs)

    return patched


def _recording_attachments(original: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        listener = original(self, *args, **kwargs)
        now = time.monotonic()
        with _lock:
            for action in getattr(listener, "default_actions", None) or []:
                arn = _target_group_of(action)
                if arn:
                    _attached_at[arn] = now
        return listener

    return patched


def _target_group_of(action: Any) -> str:
    """The target group ARN a listener action forwards to ('' for none)."""
    data = action.data if hasattr(action, "data") else action
    if not isinstance(data, Mapping):
        return ""
    return str(data.get("TargetGroupArn") or data.get("target_group_arn") or "")


def _at_most_ten(original: Any) -> Any:
    def patched(self: Any, task_definitions: list[str], *args: Any, **kwargs: Any) -> Any:
        from moto.ecs.exceptions import InvalidParameterException

        if len(task_definitions) > MAX_TASK_DEFINITIONS:
            raise InvalidParameterException(
                f"You can specify up to {MAX_TASK_DEFINITIONS} task definitions ({len(task_definitions)} given).")
        return original(self, task_definitions, *args, **kwargs)

    return patched


def _refusing_until_ready(original: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.ecs.exceptions import InvalidParameterException

        now = time.monotonic()
        with _lock:
            if _state["linked_role_seconds"] and self.account_id not in _linked_role_ready:
                _linked_role_ready[self.account_id] = now + _state["linked_role_seconds"]  # created now
            ready = _linked_role_ready.get(self.account_id, 0.0)
            window = _state["attach_seconds"]
            attached = dict(_attached_at)
        if _state["linked_role_seconds"] and now < ready:
            raise InvalidParameterException(LINKED_ROLE)
        balancers = kwargs.get("load_balancers", args[4] if len(args) > 4 else None)
        for balancer in balancers or []:
            arn = str(balancer.get("targetGroupArn") or "")
            if arn and (arn not in attached or now < attached[arn] + window):
                raise InvalidParameterException(
                    f"The target group with targetGroupArn {arn} does not have an associated load balancer.")
        return original(self, *args, **kwargs)

    return patched
