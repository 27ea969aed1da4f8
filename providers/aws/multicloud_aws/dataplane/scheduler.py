"""The ECS service scheduler of the emulator: keeps each service's desiredCount tasks running as
real containers, as ECS does.

On every pass (on a change, else twice a second) it reads what each task's containers do, stops a
task whose essential container exited (or that StopTask stopped) or that failed its container or
load balancer health check once the service's healthCheckGracePeriodSeconds are over, and
starts tasks until the PRIMARY deployment's revision runs desiredCount of them; once they run
(and pass their health check) the older revision's tasks stop and the deployment completes. Too
many tasks failing to start trip the deployment circuit breaker, which rolls back to the previous
revision. Running tasks' addresses are what the service's target groups and Cloud Map service hold.

A task starts as on ECS: PROVISIONING until its network interface is attached, PENDING while its images
are pulled and its containers created, ACTIVATING once they run, while the pass registers it with the
service's target groups and Cloud Map service, and RUNNING (startedAt) on the pass after.

A task stops as on ECS: desiredStatus STOPPED (with stoppedReason and stopCode) at once, lastStatus
DEACTIVATING while it drains out of its target groups (DescribeTargetHealth: draining), STOPPING
while its containers stop, DEPROVISIONING once they have (executionStoppedAt), then STOPPED.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from multicloud_aws import gaps
from multicloud_aws.dataplane import deployments, servers
from multicloud_aws.dataplane.awslogs import LogShipper, log_streams, missing_group
from multicloud_aws.dataplane.tasks import (
    STARTED,
    STOPPED_KEPT,
    EmulatedTask,
    TaskStartError,
    ecr_credentials,
    secret_reader,
    task_aliases,
    task_network,
    task_unit,
)
from multicloud_aws.exec_gaps import grace_seconds

if TYPE_CHECKING:
    from multicloud_docker.dataplane import DataPlane, MemberState, UnitState

    from multicloud_aws.dataplane.nlb import Balancers

PERIOD = 0.5
DRAIN_SCALE = 1 / 30
"""The share of its target groups' deregistration delay a task drains for, DEACTIVATING, before it
stops: ECS waits the whole delay, so that connections in flight end and no new one reaches a task
that is going; the emulator a thirtieth of it (the provider's 30 s: 1 s; AWS's default 300 s: 10 s)."""
ACTIVE = (*deployments.PENDING, "RUNNING")
"""The lastStatus of a task that has not begun to stop."""
SCALED = "Scaling activity initiated by (deployment {})"
HEALTH = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}


class Scheduler:
    """Runs the tasks of the ECS services created through one emulator server."""

    def __init__(self, plane: DataPlane, balancers: Balancers | None = None, period: float = PERIOD) -> None:
        self.plane = plane
        self.balancers = balancers
        self.shipper = LogShipper(plane)
        self.period = period
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._tasks: dict[str, list[EmulatedTask]] = {}
        self._registered: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        """Service ARN -> the addresses in its target groups and the draining ones."""
        self._containers: dict[str, str] = {}
        self._retry_at: dict[str, tuple[float, float]] = {}
        self._draining: dict[str, float] = {}
        """DEACTIVATING tasks: task ARN -> when their drain is over (time.monotonic)."""
        self._leaving: list[EmulatedTask] = []
        """Tasks of deleted services on their way to STOPPED."""
        self._stopped: list[EmulatedTask] = []
        """Tasks the scheduler stopped in this pass of a service, not yet in its events."""
        self._thread = threading.Thread(target=self._loop, name="ecs-scheduler", daemon=True)

    def start(self) -> Scheduler:
        """Start the scheduler's thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop scheduling (the data plane's close removes the containers)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def wake(self) -> None:
        """Run a pass now."""
        self._wake.set()

    def running(self) -> list[EmulatedTask]:
        """Every task whose containers exist."""
        with gaps._lock:
            return [t for tasks in self._tasks.values() for t in tasks if not t.removed]

    # --- deployments (called by gaps from the API thread) -------------------------------------

    def rolled_out(self, backend: Any, service: Any) -> None:
        """CreateService or UpdateService took effect: a new revision starts a new PRIMARY
        deployment (the previous one turns ACTIVE until its tasks stop); a count change updates it."""
        with gaps._lock:
            deployments.roll_out(backend, service)
        self._wake.set()

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._pass()
            except Exception:  # a moto object changed under the pass: the next one sees it
                logging.getLogger(__name__).debug("scheduler pass failed; retrying", exc_info=True)
                time.sleep(self.period)
            self._wake.wait(self.period)

    def _pass(self) -> None:
        """One reconcile of every service this scheduler runs, and of the tasks of deleted ones."""
        with gaps._lock:
            live: set[str] = set()
            for backend, service in self._services():
                live.add(service.arn)
                self._reconcile(backend, service, self._tasks.setdefault(service.arn, []))
            for arn in [a for a in self._tasks if a not in live]:
                for task in self._tasks.pop(arn):
                    self._retire(None, task, SCALED.format(task.started_by))
                    self._leaving.append(task)
                self._registered.pop(arn, None)
            for task in self._leaving:
                self._settle(task)
            self._leaving = [t for t in self._leaving if t.last_status != "STOPPED"]

    def _services(self) -> Iterator[tuple[Any, Any]]:
        """(backend, service) of every ACTIVE or DRAINING service created through our server."""
        from moto.ecs.models import ecs_backends

        for regions in list(ecs_backends.values()):
            for backend in list(regions.values()):
                for service in list(backend.services.values()):
                    if service.status in ("ACTIVE", "DRAINING") and servers.runner_of(service) is self:
                        yield backend, service

    def _reconcile(self, backend: Any, service: Any, tasks: list[EmulatedTask]) -> None:
        """Observe, replace, roll out, count and register the tasks of one service."""
        primary: dict[str, Any] = next((d for d in service.deployments if d.get("status") == "PRIMARY"), {})
        grace = grace_seconds(service)
        self._stopped = []
        for task in tasks:
            self._observe(service, task, grace)
        revision = service.task_definition
        desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
        for task in [t for t in tasks if t.desired_status == "RUNNING"]:
            failing = [g for g in self._groups(service) if self._target(g, task) == "unhealthy"]
            if failing and _past(task, grace):
                group, port = failing[0]
                deployments.event(service, f"(service {service.name}) (task {task.id}) (port {port}) is unhealthy "
                                           f"in (target-group {group}) due to (reason Health checks failed).")
                self._retire(service, task, f"Task failed ELB health checks in (target-group {group})",
                             "TaskFailedToStart")
        serving = [t for t in tasks if t.desired_status == "RUNNING"]
        current = [t for t in serving if t.task_definition_arn == revision]
        older = [t for t in serving if t.task_definition_arn != revision]
        ready = [t for t in current if self._ready(t, service)]
        failed = primary.get("rolloutState") == "FAILED"
        for task in sorted(current, key=lambda t: self._ready(t, service))[: max(0, len(current) - desired)]:
            self._retire(service, task, SCALED.format(primary.get("id", "")))
        self._report_stops(service)
        started: list[EmulatedTask] = []
        if not failed and len(current) < desired and time.monotonic() >= self._retry_at.get(service.arn, (0, 0))[0]:
            for _ in range(desired - len(current)):
                launched = self._launch(backend, service, revision, primary, tasks)
                if launched is None:
                    break
                started.append(launched)
        if started:
            deployments.event(service, f"(service {service.name}) has started {len(started)} tasks: "
                                       f"{_listed(started)}.")
        if len(ready) >= desired:
            for task in older:
                self._retire(service, task, SCALED.format(primary.get("id", "")))
        self._report_stops(service)
        for task in tasks:
            self._settle(task)
        deployments.count(service, primary, tasks, len(ready), desired)
        self._register(backend, service, tasks)
        stopped = [t for t in tasks if t.last_status == "STOPPED"]
        for task in stopped[:-STOPPED_KEPT]:
            backend.tasks.get(task.cluster_name, {}).pop(task.task_arn, None)
        tasks[:] = [t for t in tasks if t.last_status != "STOPPED"] + stopped[-STOPPED_KEPT:]

    def _register(self, backend: Any, service: Any, tasks: list[EmulatedTask]) -> None:
        """Point the service's target groups and Cloud Map service at its ACTIVATING and RUNNING tasks; its
        NLBs send nothing new to the DEACTIVATING ones, which DescribeTargetHealth shows draining. The
        service's events say what changed in each target group, and which tasks began to drain."""
        serving = tuple(sorted(t.address for t in tasks if t.address and t.last_status in STARTED
                               and t.desired_status == "RUNNING"))
        draining = tuple(sorted(t.address for t in tasks if t.address and t.last_status == "DEACTIVATING"))
        known = self._registered.get(service.arn)
        if known == (serving, draining):
            return
        before, drained = known if known is not None else ((), ())
        if known is None or before != serving:
            gaps.register_addresses(backend, service, list(serving))
        self._registered[service.arn] = (serving, draining)
        left, joined = set(before) - set(serving), set(serving) - set(before)
        for group, port in self._groups(service):
            assert self.balancers is not None
            self.balancers.registered(group, {(a, port) for a in serving}, {(a, port) for a in draining})
            if left:
                deployments.event(service, f"(service {service.name}) deregistered {len(left)} targets in "
                                           f"(target-group {group})")
        begun: dict[str, int] = {}
        for task in tasks:
            if task.last_status == "DEACTIVATING" and task.address in set(draining) - set(drained):
                begun[task.started_by] = begun.get(task.started_by, 0) + 1
        for deployment, count in begun.items():
            deployments.event(service, f"(service {service.name}, taskSet {deployment}) has begun draining "
                                       f"connections on {count} tasks.")
        for group, _ in self._groups(service) if joined else ():
            deployments.event(service, f"(service {service.name}) registered {len(joined)} targets in "
                                       f"(target-group {group})")

    def _observe(self, service: Any, task: EmulatedTask, grace: float) -> None:
        """Move a task's state to what its containers do; stop it when StopTask asked, when an essential
        container has ended, or has failed its health check once the service's grace period is over."""
        if task.desired_status == "STOPPED":
            if task.last_status in ACTIVE:  # StopTask: it stops as the scheduler stops a task
                self._retire(service, task, "Task stopped by user", "UserInitiated")
            return
        state: UnitState = self.plane.state(task.key)
        members = {name: state.members.get(name) for name in task.container_names}
        if state.error and not any(members.values()):
            started = task.started_at is not None
            reason = f"Essential container in task exited: {state.error}" if started else \
                f"CannotPullContainerError: {state.error}"
            self._retire(service, task, reason, "EssentialContainerExited" if started else "TaskFailedToStart")
            return
        exits = {n: int(m.exit_code or 0) for n, m in members.items() if m is not None and m.state == "terminated"}
        replaced = [n for n, m in members.items() if m is not None and task.started_at is not None and
                    self._containers.setdefault(f"{task.key}/{n}", m.container) != m.container]
        health = _health([members[n] for n in task.essential])
        if all((m := members[n]) is not None and m.state == "running" for n in task.essential):
            registered = task.last_status == "RUNNING" or (
                task.last_status == "ACTIVATING" and task.address in self._registered.get(service.arn, ((), ()))[0])
            task.show("RUNNING" if registered else "ACTIVATING", health, state.address, pulled=True)
            for name, member in members.items():
                if member is not None:
                    self._containers.setdefault(f"{task.key}/{name}", member.container)
        else:
            task.show("PENDING" if state.address else "PROVISIONING", "UNKNOWN", state.address,
                      pulled=all(m is not None for m in members.values()))
        task.exited(exits)
        if any(n in exits or n in replaced for n in task.essential):
            self._retire(service, task, "Essential container in task exited", "EssentialContainerExited")
        elif health == "UNHEALTHY" and _past(task, grace):
            deployments.event(service, f"(service {service.name}) (task {task.id}) failed container health checks.")
            self._retire(service, task, "Task failed container health checks", "TaskFailedToStart")

    def _launch(self, backend: Any, service: Any, revision: str, primary: dict[str, Any],
                tasks: list[EmulatedTask]) -> EmulatedTask | None:
        """Start one task of a revision; None (and a later retry) when it cannot start."""
        definition = backend.describe_task_definition(revision)
        network = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
        task = EmulatedTask(service, definition, str(primary.get("id", "")), network)
        backend.tasks.setdefault(service.cluster_name, {})[task.task_arn] = task
        tasks.append(task)
        task.log_streams = log_streams(task, definition)
        try:
            why = missing_group(task, task.log_streams)
            if why:
                raise TaskStartError(why)
            unit = task_unit(task, definition, network=task_network(backend, network),
                             aliases=task_aliases(backend, service),
                             secret_value=secret_reader(task.account_id, task.region_name),
                             pull_auth=ecr_credentials(task.account_id))
        except TaskStartError as exc:
            self._retire(service, task, str(exc), "TaskFailedToStart")
            return None
        self.plane.apply(unit)
        return task

    def _ready(self, task: EmulatedTask, service: Any) -> bool:
        """Running, healthy when it has a health check, and healthy in its target groups."""
        return task.last_status == "RUNNING" and (task.health_status == "HEALTHY" or not task.has_check) and \
            all(self._target(g, task) == "healthy" for g in self._groups(service))

    def _groups(self, service: Any) -> list[tuple[str, int]]:
        """(target group ARN, container port) of the service's load balancers."""
        if self.balancers is None:
            return []
        return [(str(b.get("targetGroupArn")), int(b.get("containerPort") or 0)) for b in service.load_balancers or []
                if b.get("targetGroupArn")]

    def _target(self, group: tuple[str, int], task: EmulatedTask) -> str | None:
        """The task's health in a target group (None before it is registered or checked)."""
        if self.balancers is None or not task.address:
            return None
        return self.balancers.state(group[0], task.address, group[1])

    def _retire(self, service: Any | None, task: EmulatedTask, reason: str,
                code: str = "ServiceSchedulerInitiated") -> None:
        """Begin to stop a task as ECS does: desiredStatus STOPPED at once, with the first reason and code
        it is given; one in its service's target groups leaves them (the NLB sends it nothing new) and
        stays DEACTIVATING for its drain, any other goes STOPPING at once. A failed one counts against
        its deployment."""
        if task.last_status not in ACTIVE:
            return
        never_ran = task.started_at is None and code != "UserInitiated" and not reason.startswith("Scaling")
        task.request_stop(reason, code)
        if service is not None and never_ran and code == "TaskFailedToStart":
            deployments.event(service, f"(service {service.name}) was unable to place a task. Reason: "
                                       f"{reason.rstrip('.')}.")
        elif service is not None and (code == "ServiceSchedulerInitiated" or reason.startswith("Task failed")):
            self._stopped.append(task)
        drain = self._drain(service) if service is not None and \
            task.address in self._registered.get(service.arn, ((), ()))[0] else 0.0
        if service is not None and drain > 0:
            task.deactivate()
            self._draining[task.task_arn] = time.monotonic() + drain
        else:
            self._halt(task)
        if never_ran or task.stop_code == "EssentialContainerExited" or task.stopped_reason.startswith("Task failed"):
            self._failed(task)

    def _drain(self, service: Any) -> float:
        """Seconds a task of the service drains: DRAIN_SCALE of its target groups' longest deregistration delay."""
        from moto.elbv2.models import elbv2_backends

        groups = elbv2_backends[str(service._account_id)][service.region_name].target_groups
        delays = [float(str(groups[arn].attributes.get("deregistration_delay.timeout_seconds", 300)))
                  for arn, _ in self._groups(service) if arn in groups]
        return max(delays, default=0.0) * DRAIN_SCALE

    def _halt(self, task: EmulatedTask) -> None:
        """STOPPING: ship the task's last log lines, then have its containers removed."""
        self._draining.pop(task.task_arn, None)
        task.halt()
        task.removed = True
        self.shipper.ship(task)  # the last lines, before the containers go
        self.shipper.forget(task)
        self.plane.remove(task.key)
        for name in task.container_names:
            self._containers.pop(f"{task.key}/{name}", None)

    def _settle(self, task: EmulatedTask) -> None:
        """Move a stopping task on: DEACTIVATING to STOPPING once drained, STOPPING to DEPROVISIONING
        once its containers are gone, DEPROVISIONING to STOPPED on the pass after."""
        if task.last_status == "DEACTIVATING" and time.monotonic() >= self._draining.get(task.task_arn, 0.0):
            self._halt(task)
        elif task.last_status == "STOPPING":
            state = self.plane.state(task.key)
            if state.converged and not state.members:
                task.deprovision()
        elif task.last_status == "DEPROVISIONING":
            task.finish()

    def _report_stops(self, service: Any) -> None:
        """The service event for the tasks the scheduler stopped since the last one, if any."""
        if self._stopped:
            deployments.event(service, f"(service {service.name}) has stopped {len(self._stopped)} running tasks: "
                                       f"{_listed(self._stopped)}.")
        self._stopped = []

    def _failed(self, task: EmulatedTask) -> None:
        """Count a failed task on its deployment, back off new starts, trip the circuit breaker."""
        arn = f"arn:aws:ecs:{task.region_name}:{task.account_id}:service/{task.cluster_name}/{task.service_name}"
        _, delay = self._retry_at.get(arn, (0.0, 0.5))
        self._retry_at[arn] = (time.monotonic() + delay, min(delay * 2, 30.0))
        deployments.record_failure(task, self._wake.set)


def _past(task: EmulatedTask, grace: float) -> bool:
    """Whether the task started more than `grace` seconds ago (ECS ignores failed health checks until then)."""
    return task.started_at is not None and (datetime.now(UTC) - task.started_at).total_seconds() >= grace


def _listed(tasks: list[EmulatedTask]) -> str:
    """Tasks as ECS lists them in a service event: `(task ID) (task ID)`."""
    return " ".join(f"(task {t.id})" for t in tasks)


def _health(members: list[MemberState | None]) -> str:
    """A task's health from its essential containers': UNHEALTHY when one is, HEALTHY when all
    that have a health check are (and one has), else UNKNOWN."""
    found = [HEALTH.get(str(m.health), "UNKNOWN") for m in members if m is not None and m.health]
    if "UNHEALTHY" in found:
        return "UNHEALTHY"
    return "HEALTHY" if found and all(h == "HEALTHY" for h in found) else "UNKNOWN"

