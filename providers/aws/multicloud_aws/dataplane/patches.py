"""What the data plane changes in moto (installed by multicloud_aws.gaps with its other patches):
ListTasks filters as ECS does, NLBs are named as AWS names them, record the emulator server they were
created through and report the loopback address they listen on as their address in each zone, and
DescribeTargetHealth reports the emulated NLBs' health checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Patch = Callable[[Any, str, Callable[[Any], Any]], None]
_health: list[Callable[[str, str, int], str | None]] = []


def install(patch: Patch) -> None:
    """Patch moto through gaps' `patch`."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, FakeTargetGroup

    patch(EC2ContainerServiceBackend, "list_tasks", _listing)
    patch(ELBv2Backend, "create_load_balancer", _named)
    patch(ELBv2Backend, "create_load_balancer", _stamping)
    patch(FakeLoadBalancer, "availability_zones", _addressed)
    patch(FakeTargetGroup, "health_for", _reporting)


def report_health(state: Callable[[str, str, int], str | None] | None) -> None:
    """Answer DescribeTargetHealth with `state(group ARN, target id, port)` where it knows the target."""
    _health[:] = [state] if state is not None else []


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


def _reporting(original: Any) -> Any:
    """A registered target's health as the emulated NLB's checks found it."""

    def patched(self: Any, target: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from moto.elbv2.models import FakeHealthStatus

        known = self.targets.get(target["Id"])
        state = None
        if known is not None and _health:
            state = _health[0](self.arn, str(known["Id"]), int(known.get("Port") or self.port))
        if state is None or state == "healthy":
            return original(self, target, *args, **kwargs)
        reason = {"initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
                  "unhealthy": ("Target.FailedHealthChecks", "Health checks failed")}[state]
        return FakeHealthStatus(known["Id"], known["Port"], self.health_check_port, state, *reason)

    return patched
