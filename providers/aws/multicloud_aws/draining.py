"""What deleting takes on AWS, in the emulator (installed by multicloud_aws.gaps):

- `delete_service(force=True)` returns while the service is DRAINING; its tasks stay registered
  in its target groups and Cloud Map service until they stop (the NLB's deregistration delay),
  set_seconds() later; then the service is gone;
- meanwhile `DeleteCluster` raises ClusterContainsTasksException (ClusterContainsServicesException
  while a service is ACTIVE), Cloud Map `DeleteService` ResourceInUse (its instances are the
  tasks) and EC2 `DeleteSecurityGroup` DependencyViolation (the tasks' network interfaces), and
  `CreateService` of its name InvalidParameterException ("not idempotent");
- the same two refusals hold while an ACTIVE service's tasks use the group or registry (a replace
  must move the services before it deletes the old one);
- a deleted cluster stays INACTIVE, still listed by the tagging API (for days on AWS), and
  `CreateService` in it raises ClusterNotFoundException until the cluster is created again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

Remove = Callable[[Any, Any], None]
_drain = {"seconds": 0.0}
LIVE = ("ACTIVE", "DRAINING")


def set_seconds(seconds: float) -> None:
    """Keep each deleted ECS service DRAINING, its tasks running, for `seconds` (0: gone at once)."""
    _drain["seconds"] = max(0.0, seconds)


def install(patch: Callable[[Any, str, Callable[[Any], Any]], None], remove: Remove) -> None:
    """Patch moto through gaps' `patch`; `remove(backend, service)` makes a stopped service gone."""
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.servicediscovery.models import ServiceDiscoveryBackend

    patch(EC2ContainerServiceBackend, "delete_service", _deleting(remove))
    patch(EC2ContainerServiceBackend, "describe_services", _sweeping(remove))
    patch(EC2ContainerServiceBackend, "list_services", _sweeping(remove))
    patch(EC2ContainerServiceBackend, "delete_cluster", _refusing_cluster(remove))
    patch(EC2ContainerServiceBackend, "create_service", _refusing_create(remove))
    patch(ServiceDiscoveryBackend, "delete_service", _refusing_registry(remove))
    patch(SecurityGroupBackend, "delete_security_group", _refusing_group(remove))


def uninstall() -> None:
    """Back to deleting at once."""
    _drain["seconds"] = 0.0


def _deleting(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            service = original(self, *args, **kwargs)
            if not _drain["seconds"]:
                remove(self, service)
                return service
            service.status, service.desired_count = "DRAINING", 0
            service.multicloud_gone_at = time.monotonic() + _drain["seconds"]
            return service

        return patched

    return make


def _sweep(backend: Any, remove: Remove) -> None:
    """Services whose tasks have stopped are gone."""
    now = time.monotonic()
    for service in list(backend.services.values()):
        due = getattr(service, "multicloud_gone_at", None)
        if due is not None and now >= due:
            service.running_count = 0
            remove(backend, service)


def _live(account: str, region: str, remove: Remove) -> Iterator[Any]:
    """ECS services of this account and region that are ACTIVE or DRAINING, after a sweep."""
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[account][region]
    _sweep(backend, remove)
    yield from (s for s in list(backend.services.values()) if s.status in LIVE)


def _has_tasks(service: Any) -> bool:
    """Whether the service's tasks are running: a DRAINING one's until they stop, an ACTIVE one's
    while it wants any."""
    return bool(service.status == "DRAINING" or service.desired_count)


def _sweeping(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            _sweep(self, remove)
            return original(self, *args, **kwargs)

        return patched

    return make


def _refusing_cluster(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
            from moto.ecs.exceptions import ECSException

            name = cluster_str.rsplit("/", 1)[-1]
            states = {s.status for s in _live(self.account_id, self.region_name, remove) if s.cluster_name == name}
            if "ACTIVE" in states:
                raise ECSException("ClusterContainsServicesException",
                                   "The Cluster cannot be deleted while Services are active.")
            if "DRAINING" in states:
                raise ECSException("ClusterContainsTasksException",
                                   "The Cluster cannot be deleted while Tasks are active.")
            return original(self, cluster_str, *args, **kwargs)

        return patched

    return make


def _refusing_create(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, cluster_str: str, service_name: str, *args: Any, **kwargs: Any) -> Any:
            from moto.ecs.exceptions import ClusterNotFoundException, InvalidParameterException

            _sweep(self, remove)
            name = cluster_str.rsplit("/", 1)[-1]
            cluster = self.clusters.get(name)
            if cluster is not None and cluster.status == "INACTIVE":
                raise ClusterNotFoundException
            existing = self.services.get(f"{name}:{service_name}")
            if existing is not None and existing.status == "DRAINING":
                raise InvalidParameterException("Creation of service was not idempotent.")
            return original(self, cluster_str, service_name, *args, **kwargs)

        return patched

    return make


def _refusing_registry(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, service_id: str, *args: Any, **kwargs: Any) -> Any:
            from moto.core.exceptions import JsonRESTError

            for service in _live(self.account_id, self.region_name, remove):
                arns = [str(r.get("registryArn", "")) for r in service.service_registries or []]
                if any(a.endswith("/" + service_id) for a in arns) and _has_tasks(service):
                    raise JsonRESTError("ResourceInUse", f"The service {service_id} has registered instances "
                                                         f"(tasks of ECS service {service.name})")
            return original(self, service_id, *args, **kwargs)

        return patched

    return make


def _refusing_group(remove: Remove) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            from moto.ec2.exceptions import DependencyViolationError

            group = kwargs.get("group_id") or (args[1] if len(args) > 1 else None)
            for service in _live(self.account_id, self.region_name, remove):
                vpc = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
                if group in (vpc.get("securityGroups") or []) and _has_tasks(service):  # their ENIs
                    raise DependencyViolationError(f"resource {group} has a dependent object")
            return original(self, *args, **kwargs)

        return patched

    return make
