"""What moto's control plane lacks for multicloud, filled in by patching its backends while
an emulator runs (installed once, removed when the last emulator stops):

- ECS services run: after create/update, running == desired and the primary deployment
  is COMPLETED on the new revision (moto keeps runningCount 0), at once or, with
  set_rollout_seconds, that long later (IN_PROGRESS, 0 running until then); deleted services
  drain first (multicloud_aws.draining: set_draining_seconds), then go away (moto keeps them
  INACTIVE); deleted clusters stay INACTIVE and tagged, as on AWS (multicloud_aws.draining);
- each "task" gets an IP that is registered in the service's NLB target groups and as a
  Cloud Map instance, and writes one line to its awslogs stream;
- deployments of an image marked with fail_image() fail and roll back, as ECS's circuit
  breaker does (multicloud_aws.rollbacks);
- register_task_definition rejects cpu/memory pairs Fargate does not accept;
- a VPC holds several private DNS namespaces (moto allows one); list_services honours the
  NAMESPACE_ID filter; a namespace with services, or a service with instances, cannot be
  deleted (ResourceInUse), as on AWS;
- the tagging API pages by ResourcesPerPage alone when TagsPerPage is not given;
- faults (throttling, 5xx) can be injected per operation, and a per-call latency set;
- a watcher sees every call after it took effect (kill trials stop a client there);
- with a data plane attached (multicloud_aws.dataplane.servers), the services created through
  that emulator's server run real tasks instead: their deployments are its scheduler's to complete.
- ECR repositories live in a real registry (multicloud_aws.local_registry): their URIs,
  the authorization token's proxyEndpoint and deletes point at it;
- what AWS refuses that moto accepts (multicloud_aws.refusals): an NLB with two subnets in one
  zone, more than 10 revisions per DeleteTaskDefinitions, CreateService while a new account's
  service-linked role propagates (set_linked_role_seconds) or with a target group no listener forwards
  to yet (set_attach_seconds).
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from multicloud_aws import draining, exec_gaps, local_registry, refusals, rollbacks
from multicloud_aws.dataplane import patches, rds, servers
from multicloud_aws.dataplane.deployments import event
from multicloud_aws.fargate import allowed_pairs, is_valid

_lock = threading.RLock()
_state: dict[str, float] = {"installed": 0, "latency": 0.0, "rollout": 0.0}
_originals: list[tuple[Any, str, Any]] = []
_addresses = itertools.count(10)
_faults: dict[tuple[str, str], Fault] = {}
_watchers: list[Callable[[str, str], None]] = []


@dataclass
class Fault:
    """An error to answer the next `times` calls of an operation with."""

    code: str
    message: str
    status: int
    times: int


def inject(service: str, operation: str, code: str = "ThrottlingException", *, times: int = 1,
           status: int = 400, message: str = "Rate exceeded (injected by the multicloud emulator)") -> None:
    """Make the next `times` calls of e.g. ("ecs", "CreateService") fail with this error."""
    with _lock:
        _faults[(service, operation)] = Fault(code, message, status, times)


def watch(watcher: Callable[[str, str], None] | None) -> None:
    """Call `watcher(service, operation)` after every emulated call took effect (None: stop)."""
    _watchers[:] = [watcher] if watcher else []


def set_rollout_seconds(seconds: float) -> None:
    """Make each ECS deployment reach its steady state `seconds` after it started (0: at once)."""
    _state["rollout"] = max(0.0, seconds)


set_draining_seconds = draining.set_seconds
fail_image = rollbacks.fail_image
set_linked_role_seconds = refusals.set_linked_role_seconds
set_attach_seconds = refusals.set_attach_seconds


def set_latency(seconds: float) -> None:
    """Delay every emulated call by `seconds` (a cloud's round trip), for benchmarks."""
    _state["latency"] = max(0.0, seconds)


def pending_faults() -> int:
    """How many injected failures have not been served yet."""
    with _lock:
        return sum(f.times for f in _faults.values())


def clear_faults() -> None:
    """Forget every injected fault."""
    with _lock:
        _faults.clear()


def install() -> None:
    """Patch moto (idempotent, reference counted)."""
    with _lock:
        _state["installed"] += 1
        if _state["installed"] > 1:
            return
        from moto.core.responses import BaseResponse
        from moto.ecr.models import ECRBackend, Repository
        from moto.ecr.responses import ECRResponse
        from moto.ecs.models import EC2ContainerServiceBackend
        from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend
        from moto.servicediscovery.models import ServiceDiscoveryBackend
        from moto.servicediscovery.responses import ServiceDiscoveryResponse

        _patch(EC2ContainerServiceBackend, "create_service", _after(_rolling_out))
        _patch(EC2ContainerServiceBackend, "update_service", _after(_rolling_out))
        _patch(EC2ContainerServiceBackend, "describe_services", _settling)
        _patch(EC2ContainerServiceBackend, "register_task_definition", _before_register)
        patches.install(_patch)
        rds.install(_patch)
        _patch(ResourceGroupsTaggingAPIBackend, "get_resources", _get_resources)
        _patch(ServiceDiscoveryBackend, "create_private_dns_namespace", _create_namespace)
        _patch(ServiceDiscoveryBackend, "delete_namespace", _refuse_in_use("namespace"))
        _patch(ServiceDiscoveryBackend, "delete_service", _refuse_in_use("service"))
        _patch(ServiceDiscoveryResponse, "list_services", _list_services)
        _patch(BaseResponse, "call_action", _call_action)
        _patch(Repository, "__init__", local_registry.repository_init)
        _patch(ECRResponse, "get_authorization_token", local_registry.authorization_token)
        _patch(ECRBackend, "delete_repository", local_registry.delete_repository)
        draining.install(_patch, _deleted)
        rollbacks.install(_patch)
        exec_gaps.install(_patch)
        refusals.install(_patch)
        # moto warns when an injected code is not in the service model; that is the point
        warnings.filterwarnings("ignore", message=r"Exception\((InjectedFault|RegistryUnavailable)\)",
                                category=UserWarning)


def uninstall() -> None:
    """Undo install() when its last user is done."""
    with _lock:
        _state["installed"] = max(0, _state["installed"] - 1)
        if _state["installed"] == 0:
            while _originals:
                owner, name, original = _originals.pop()
                setattr(owner, name, original)
            _faults.clear()
            _watchers.clear()
            _state["latency"] = _state["rollout"] = 0.0
            draining.uninstall()
            rollbacks.uninstall()
            refusals.uninstall()


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = getattr(owner, name)
    _originals.append((owner, name, original))
    setattr(owner, name, make(original))


def _after(hook: Callable[[Any, Any], None]) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            hook(self, result)
            return result

        return patched

    return make


def _rolling_out(backend: Any, service: Any) -> None:
    """A new deployment: run by the data plane of the server it came through, else steady at once,
    or IN_PROGRESS with no task running until its time."""
    if not hasattr(service, "multicloud_server"):
        service.multicloud_server = servers.calling_port()
    runner = servers.runner_of(service)
    if runner is not None:
        runner.rolled_out(backend, service)
        return
    delay = _state["rollout"]
    if not delay:
        _deployed(backend, service)
        return
    from moto.core.utils import utcnow

    service.multicloud_steady_at = time.monotonic() + delay
    service.running_count, service.pending_count = 0, int(service.desired_count or 0)
    deployment = service.deployments[0] if service.deployments else {"id": "ecs-svc/0", "createdAt": utcnow()}
    deployment.update({"status": "PRIMARY", "runningCount": 0, "pendingCount": service.pending_count,
                       "rolloutState": "IN_PROGRESS", "taskDefinition": service.task_definition})
    service.deployments = [deployment]


def _settling(original: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        for service in list(self.services.values()):
            due = getattr(service, "multicloud_steady_at", None)
            if due is not None and time.monotonic() >= due:
                service.multicloud_steady_at = None
                _deployed(self, service)
        return original(self, *args, **kwargs)

    return patched


def _deployed(backend: Any, service: Any) -> None:
    """The service reached a steady state: its tasks run, get IPs, register and log."""
    from moto.core.utils import utcnow

    if rollbacks.failed(backend, service):
        return
    desired = int(service.desired_count or 0)
    service.running_count, service.pending_count = desired, 0
    now = utcnow()
    deployment = service.deployments[0] if service.deployments else {"id": "ecs-svc/0", "createdAt": now}
    deployment.update({"status": "PRIMARY", "desiredCount": desired, "runningCount": desired, "pendingCount": 0,
                       "rolloutState": "COMPLETED", "taskDefinition": service.task_definition, "updatedAt": now,
                       "rolloutStateReason": f"ECS deployment {deployment['id']} completed."})
    service.deployments = [deployment]
    service.multicloud_completed = deployment["id"]  # what a failed deployment after it rolls back to
    addresses = [str(ipaddress.IPv4Address("10.0.0.0") + next(_addresses)) for _ in range(desired)]
    register_addresses(backend, service, addresses)
    for balancer in service.load_balancers or [] if addresses else []:
        event(service, f"(service {service.name}) registered {len(addresses)} targets in "
                       f"(target-group {balancer.get('targetGroupArn')})")
    event(service, f"(service {service.name}) (deployment {deployment['id']}) deployment completed.")
    event(service, f"(service {service.name}) has reached a steady state.")
    _log_start(backend, service, addresses)


def _deleted(backend: Any, service: Any) -> None:
    """A deleted service is gone (moto keeps it INACTIVE, visible to tags and lists)."""
    register_addresses(backend, service, [])
    runner = servers.runner_of(service)
    if runner is not None:
        runner.wake()
    for key, value in list(backend.services.items()):
        if value is service:
            del backend.services[key]


def register_addresses(backend: Any, service: Any, addresses: list[str]) -> None:
    """Point the service's target groups and Cloud Map service at exactly these addresses."""
    from moto.elbv2.models import elbv2_backends
    from moto.servicediscovery.models import servicediscovery_backends

    account, region = backend.account_id, backend.region_name
    elbv2 = elbv2_backends[account][region]
    for balancer in service.load_balancers or []:
        group = elbv2.target_groups.get(balancer.get("targetGroupArn"))
        if group is None:
            continue
        old = [{"Id": t["Id"], "Port": t.get("Port")} for t in group.targets.values()]
        if old:
            group.deregister(old)
        if addresses:
            group.register([{"Id": a, "Port": balancer.get("containerPort")} for a in addresses])
    discovery = servicediscovery_backends[account][region]
    for registry in service.service_registries or []:
        service_id = str(registry.get("registryArn", "")).rsplit("/", 1)[-1]
        if service_id not in discovery.services:
            continue
        known = discovery.get_service(service_id)
        for instance in list(known.instances):
            discovery.deregister_instance(service_id, instance.instance_id)
        for address in addresses:
            task = address.replace(".", "-")
            discovery.register_instance(service_id, f"task-{task}", task, {"AWS_INSTANCE_IPV4": address})


def _log_start(backend: Any, service: Any, addresses: list[str]) -> None:
    """Write one line per emulated task to its awslogs stream, so logs can be read back."""
    from moto.logs.models import logs_backends

    try:
        definition = backend.describe_task_definition(service.task_definition)
    except Exception:
        return
    container = (definition.container_definitions or [{}])[0]
    options = (container.get("logConfiguration") or {}).get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    logs = logs_backends[backend.account_id][backend.region_name]
    if not group or not prefix or group not in logs.groups:
        return
    for address in addresses:
        stream = f"{prefix}/{container.get('name')}/{address.replace('.', '')}"
        if stream not in logs.groups[group].streams:
            logs.create_log_stream(group, stream)
        message = f"emulated task {address} started from {container.get('image')}"
        logs.put_log_events(group, stream, [{"timestamp": int(time.time() * 1000), "message": message}])


def _before_register(original: Any) -> Any:
    def patched(self: Any, family: str, *args: Any, **kwargs: Any) -> Any:
        from moto.ecs.exceptions import EcsClientException

        compat = kwargs.get("requires_compatibilities") or []
        cpu, memory = kwargs.get("cpu"), kwargs.get("memory")
        valid = str(cpu).isdigit() and str(memory).isdigit() and is_valid(int(str(cpu)), int(str(memory)))
        if "FARGATE" in compat and not valid:
            raise EcsClientException(
                f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
                f"Allowed pairs: {allowed_pairs()}")
        return original(self, family, *args, **kwargs)

    return patched


def _get_resources(original: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("tags_per_page") == 100:  # moto's default: AWS pages by ResourcesPerPage alone
            kwargs["tags_per_page"] = 1_000_000
        return original(self, *args, **kwargs)

    return patched


def _create_namespace(original: Any) -> Any:
    def patched(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        from moto.servicediscovery.exceptions import ConflictingDomainExists

        vpc = kwargs.get("vpc", args[2] if len(args) > 2 else None)
        with _lock:  # moto allows one namespace per VPC; AWS one per name and VPC
            if any(n.vpc == vpc and n.name == name for n in self.namespaces.values()):
                raise ConflictingDomainExists(str(vpc))
            hidden = {k: n for k, n in self.namespaces.items() if n.vpc == vpc}
            for key in hidden:
                del self.namespaces[key]
            try:
                return original(self, name, *args, **kwargs)
            finally:
                self.namespaces.update(hidden)

    return patched


def _refuse_in_use(what: str) -> Callable[[Any], Any]:
    """Cloud Map refuses to delete a namespace that holds services, or a service with instances."""

    def make(original: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            from moto.core.exceptions import JsonRESTError

            object_id = args[0] if args else next(iter(kwargs.values()))
            if what == "namespace":
                busy = any(s.namespace_id == object_id for s in self.services.values())
            else:
                busy = bool(getattr(self.services.get(object_id), "instances", None))
            if busy:
                held = "services" if what == "namespace" else "registered instances"
                raise JsonRESTError("ResourceInUse", f"The {what} {object_id} still has {held}")
            return original(self, *args, **kwargs)

        return patched

    return make


def _list_services(original: Any) -> Any:
    def patched(self: Any) -> Any:
        import json

        wanted = [f["Values"] for f in json.loads(self.body or "{}").get("Filters") or []
                  if f.get("Name") == "NAMESPACE_ID"]
        listed = self.servicediscovery_backend.list_services()
        found = [s for s in listed if not wanted or s.namespace_id in wanted[0]]
        return json.dumps({"Services": [s.to_json() for s in found]})

    return patched


def _call_action(original: Any) -> Any:
    def patched(self: Any) -> Any:
        servers.note_call(self.headers)
        if _state["latency"]:
            time.sleep(_state["latency"])
        if _faults:
            action = self._get_action()
            with _lock:
                fault = _faults.get((self.service_name, action))
                if fault is not None and fault.times > 0:
                    fault.times -= 1
                else:
                    fault = None
            if fault is not None:
                from moto.core.exceptions import ServiceException
                from moto.core.responses import ActionResult

                injected = type("InjectedFault", (ServiceException,), {"__module__": __name__})
                _, headers, body = self.serialized(ActionResult(injected(fault.code, fault.message)))
                headers["status"] = fault.status
                return fault.status, headers, body
        result = original(self)
        for watcher in list(_watchers):
            watcher(self.service_name, self._get_action())
        return result

    return patched
