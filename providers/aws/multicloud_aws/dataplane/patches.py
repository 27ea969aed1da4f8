"""What the data plane changes in moto (installed by multicloud_aws.gaps with its other patches):
ListTasks filters as ECS does, StopTask of a task the data plane runs asks its scheduler to stop it
(moto marks it STOPPED at once), NLBs are named as AWS names them, record the emulator server they
were created through and report the loopback address they listen on as their address in each zone,
and DescribeTargetHealth reports the emulated NLBs' health checks and draining targets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

Patch = Callable[[Any, str, Callable[[Any], Any]], None]
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
"""DescribeTargetHealth's State, Reason and Description of a target whose deregistration delay is not over."""


class TargetReport(Protocol):
    """What the emulated NLBs know of their targets (multicloud_aws.dataplane.nlb.Balancers)."""

    def state(self, group: str, target: str, port: int) -> str | None:
        """A registered target's health state, None when unknown."""

    def draining(self, group: str) -> frozenset[tuple[str, int]]:
        """The group's targets whose deregistration is in progress: (address, port)."""


_health: list[TargetReport] = []


def install(patch: Patch) -> None:
    """Patch moto through gaps' `patch`."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, FakeTargetGroup

    patch(EC2ContainerServiceBackend, "list_tasks", _listing)
    patch(EC2ContainerServiceBackend, "stop_task", _stopping)
    patch(ELBv2Backend, "create_load_balancer", _named)
    patch(ELBv2Backend, "create_load_balancer", _stamping)
    patch(ELBv2Backend, "describe_target_health", _listing_draining)
    patch(FakeLoadBalancer, "availability_zones", _addressed)
    patch(FakeTargetGroup, "health_for", _reporting)


def report_health(report: TargetReport | None) -> None:
    """Answer DescribeTargetHealth from `report` where it knows the target (None: moto's answers)."""
    _health[:] = [report] if report is not None else []


def _listing(original: Any) -> Any:
    """ListTasks as ECS answers it: desiredStatus RUNNING unless asked otherwise, and serviceName
    filters by the task's service (moto ignores both)."""

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        names = ("cluster_str", "container_instance", "family", "started_by", "service_name", "desiredStatus")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        service_name = given.pop("service_name", None)
        given["desiredStatus"] = given.get("desiredStatus") or "RUNNING"
        found = original(self, **given, service_name=None)
        if service_name:
            group = f"service:{service_name.rsplit('/', 1)[-1]}"
            found = [t for t in found if getattr(t, "group", None) == group]
        return found

    return patched


def _named(original: Any) -> Any:
    """A new NLB's DNS name is NAME-ID.elb.REGION.amazonaws.com, as AWS names an NLB (ID: the 16 hex digits of
    its ARN); moto gives every load balancer an ALB's NAME-1.REGION.elb.amazonaws.com."""

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        from multicloud_aws.names import load_balancer_dns

        balancer = original(self, *args, **kwargs)
        if balancer.type == "network":
            identity = str(balancer.arn).rsplit("/", 1)[-1]
            balancer.dns_name = load_balancer_dns(self.region_name).replace("*", f"{balancer.name}-{identity}", 1)
        return balancer

    return patched


def _stopping(original: Any) -> Any:
    """StopTask of a task the data plane runs, as ECS answers it: desiredStatus STOPPED with the reason
    and stopCode UserInitiated at once, lastStatus as it was (the scheduler moves it on)."""

    def patched(self: Any, cluster_str: str, task_str: str, reason: str | None) -> Any:
        from multicloud_aws.dataplane import servers
        from multicloud_aws.dataplane.tasks import EmulatedTask

        ident = task_str.rsplit("/", 1)[-1]
        tasks = self.tasks.get(self._get_cluster(cluster_str).name) or {}
        task = next((t for arn, t in tasks.items() if arn.rsplit("/", 1)[-1] == ident), None)
        if not isinstance(task, EmulatedTask):
            return original(self, cluster_str, task_str, reason)
        task.request_stop(reason or "Task stopped by user", "UserInitiated")
        answer = copy.copy(task)  # the task as it is now: the scheduler may move it on before the answer is sent
        answer.containers = [dict(c) for c in task.containers]
        runner = servers.runner_of(self.services.get(f"{task.cluster_name}:{task.service_name}"))
        if runner is not None:
            runner.wake()
        return answer

    return patched


def _stamping(original: Any) -> Any:
    """A new load balancer remembers the port of the emulator server it was created through."""

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        from multicloud_aws.dataplane import servers

        balancer = original(self, *args, **kwargs)
        if not hasattr(balancer, "multicloud_server"):
            balancer.multicloud_server = servers.calling_port()
        return balancer

    return patched


def _addressed(original: Any) -> Any:
    """An NLB run by a data plane reports the loopback address its DNS name stands for as its
    address in each zone (LoadBalancerAddresses, where AWS lists an NLB's static IPs)."""

    def zones(self: Any) -> Any:
        from multicloud_aws.dataplane import servers
        from multicloud_aws.dataplane.nlb import address_of

        found = original.fget(self)
        server = getattr(self, "multicloud_server", "")
        if self.type == "network" and server and servers.runner_of(self) is not None:
            for zone in found:
                zone.load_balancer_addresses = [{"IpAddress": address_of(self, server)}]
        return found

    return property(zones)


def _listing_draining(original: Any) -> Any:
    """DescribeTargetHealth of every target lists the draining ones too, as an NLB does until their
    deregistration delay is over (moto lists the registered ones)."""

    def patched(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        found = original(self, target_group_arn, targets)
        if targets or not _health:
            return found
        group = self.target_groups[target_group_arn]
        listed = {(str(h.instance_id), int(h.port or 0)) for h in found}
        return found + [group.health_for({"Id": a, "Port": p}, self.ec2_backend)
                        for a, p in sorted(_health[0].draining(target_group_arn)) if (a, p) not in listed]

    return patched


def _reporting(original: Any) -> Any:
    """A target's health as the emulated NLB's checks found it, or draining while its deregistration
    is in progress."""

    def patched(self: Any, target: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from moto.elbv2.models import FakeHealthStatus

        port = target.get("Port") or self.port
        if _health and (str(target["Id"]), int(port)) in _health[0].draining(self.arn):
            return FakeHealthStatus(target["Id"], port, self.health_check_port, *DRAINING)
        known = self.targets.get(target["Id"])
        state = None
        if known is not None and _health:
            state = _health[0].state(self.arn, str(known["Id"]), int(known.get("Port") or self.port))
        if state is None or state == "healthy":
            return original(self, target, *args, **kwargs)
        reason = {"initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
                  "unhealthy": ("Target.FailedHealthChecks", "Health checks failed")}[state]
        return FakeHealthStatus(known["Id"], known["Port"], self.health_check_port, state, *reason)

    return patched
