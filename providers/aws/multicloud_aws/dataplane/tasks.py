"""ECS tasks as the emulator runs them: a task object moto's DescribeTasks, ListTasks and StopTask
serve as they serve their own, and the data-plane unit a task definition becomes.

A Fargate task in awsvpc mode is one unit: its own address on the app's network, answering to
the Cloud Map names of its service; its containers get the definition's image (pulled from the
emulated ECR with its credentials), command, entry point, user, read-only root filesystem,
environment, `secrets` (valueFrom resolved from the emulated Secrets Manager at start), health
check and the task's cpu and memory as limits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_docker.dataplane import Member, Probe, Unit

MIB = 1024 * 1024
STARTED = ("ACTIVATING", "RUNNING")
"""The lastStatus of a task whose containers run: ACTIVATING while ECS registers it with its target groups
and Cloud Map service, then RUNNING."""
STOPPED_KEPT = 20
"""Stopped tasks a service keeps for DescribeTasks (ECS keeps them about an hour)."""


class TaskStartError(Exception):
    """A task cannot start (ECS stops it with this reason: a secret that cannot be read...)."""


class EmulatedTask:
    """One task of an ECS service, with the attributes moto's serializer reads for a `Task`."""

    def __init__(self, service: Any, definition: Any, deployment: str, network: Mapping[str, Any]) -> None:
        self.id = uuid.uuid4().hex
        self.region_name = service.region_name
        self.account_id = str(service._account_id)
        self.cluster_name = service.cluster_name
        self.cluster_arn = service.cluster_arn
        self.task_arn = f"arn:aws:ecs:{self.region_name}:{self.account_id}:task/{self.cluster_name}/{self.id}"
        self.task_definition_arn = definition.arn
        self.service_name = service.name
        self.group = f"service:{service.name}"
        self.started_by = deployment
        self.launch_type = service.launch_type or "FARGATE"
        self.platform_version = "1.4.0"
        self.cpu, self.memory = str(definition.cpu or ""), str(definition.memory or "")
        self.container_instance_arn = None
        self.resource_requirements = None
        self.desired_status = "RUNNING"
        self.last_status = "PROVISIONING"
        self.health_status = "UNKNOWN"
        self.stopped_reason = ""
        self.stop_code: str | None = None
        self.created_at = datetime.now(UTC)
        self.pull_started_at: datetime | None = None
        self.pull_stopped_at: datetime | None = None
        self.started_at: datetime | None = None
        self.stopping_at: datetime | None = None
        self.execution_stopped_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.availability_zone = f"{self.region_name}a"
        self.connectivity: str | None = None
        self.connectivity_at: datetime | None = None
        self.tags: list[dict[str, str]] = []
        self.overrides: dict[str, Any] = {}
        self.network = dict(network)
        self.address = ""
        self.exit_code: int | None = None
        self.containers = [{"name": c.get("name"), "image": c.get("image"), "lastStatus": "PENDING",
                            "containerArn": f"{self.task_arn}/{uuid.uuid4()}", "taskArn": self.task_arn,
                            "healthStatus": "UNKNOWN", "networkInterfaces": []}
                           for c in definition.container_definitions]
        self.attachments: list[dict[str, Any]] = []
        self.log_streams: dict[str, tuple[str, str, str]] = {}
        """Container -> (region, log group, stream) of its awslogs driver."""
        self.removed = False
        """Whether the scheduler is removing, or has removed, the task's containers (STOPPING or later)."""
        self.has_check = any(c.get("healthCheck") for c in definition.container_definitions)
        self.container_names = [str(c.get("name") or "main") for c in definition.container_definitions]
        self.essential = [str(c.get("name") or "main") for c in definition.container_definitions
                          if c.get("essential", True) is not False]

    @property
    def key(self) -> str:
        """The task's data-plane unit key."""
        return f"aws/{self.account_id}/{self.region_name}/{self.cluster_name}/{self.id}"

    def advance(self) -> None:
        """moto calls this on every DescribeTasks; the scheduler moves the task's state instead."""

    def show(self, last_status: str, health: str, address: str, *, pulled: bool = False) -> None:
        """Reflect what the task's containers do: status, health, address (the ENI's), and the times ECS
        sets on the way (connectivityAt and pullStartedAt once attached: PENDING; pullStoppedAt once its
        containers exist; startedAt once RUNNING)."""
        if self.desired_status == "STOPPED":  # on its way out: the stop's own states follow
            return
        now = datetime.now(UTC)
        if last_status != "PROVISIONING" and self.connectivity_at is None:
            self.connectivity, self.connectivity_at = "CONNECTED", now
            self.pull_started_at = self.pull_started_at or now
        if (pulled or last_status in STARTED) and self.pull_started_at and self.pull_stopped_at is None:
            self.pull_stopped_at = now
        if last_status == "RUNNING" and self.started_at is None:
            self.started_at = now
        self.last_status, self.health_status = last_status, health
        if address and address != self.address:
            self.address = address
            self.attachments = [{"id": self.id, "type": "ElasticNetworkInterface", "status": "ATTACHED", "details": [
                {"name": "subnetId", "value": str((self.network.get("subnets") or [""])[0])},
                {"name": "privateIPv4Address", "value": address}]}]
        for container in self.containers:  # a container is PENDING, RUNNING or STOPPED
            container.update(lastStatus="RUNNING" if last_status in STARTED else "PENDING", healthStatus=health)
            if address:
                container["networkInterfaces"] = [{"attachmentId": self.id, "privateIpv4Address": address}]

    def exited(self, codes: Mapping[str, int]) -> None:
        """Record the exit codes of containers that have ended (by name)."""
        for container in self.containers:
            if container["name"] in codes:
                container.update(exitCode=codes[container["name"]], lastStatus="STOPPED")

    def request_stop(self, reason: str, code: str) -> None:
        """The task is to stop (desiredStatus STOPPED, with why): StopTask, or the scheduler's own
        decision; the first reason and code are kept. Its lastStatus moves as the scheduler stops it."""
        self.desired_status = "STOPPED"
        self.stopped_reason = self.stopped_reason or reason
        self.stop_code = self.stop_code or code

    def deactivate(self) -> None:
        """DEACTIVATING: deregistered from its target groups, connections draining; still running."""
        self.stopping_at = self.stopping_at or datetime.now(UTC)
        self.last_status = "DEACTIVATING"

    def halt(self) -> None:
        """STOPPING: its containers are being stopped."""
        self.stopping_at = self.stopping_at or datetime.now(UTC)
        self.last_status = "STOPPING"

    def deprovision(self) -> None:
        """DEPROVISIONING: its containers have stopped (executionStoppedAt); its network interface goes."""
        self.execution_stopped_at = self.execution_stopped_at or datetime.now(UTC)
        self.last_status = "DEPROVISIONING"
        self.attachments = [{**a, "status": "DETACHING"} for a in self.attachments]
        for container in self.containers:
            container["lastStatus"] = "STOPPED"

    def finish(self) -> None:
        """STOPPED (stoppedAt): nothing of the task is left."""
        self.stopped_at = self.stopped_at or datetime.now(UTC)
        self.last_status = "STOPPED"
        self.attachments = [{**a, "status": "DELETED"} for a in self.attachments]

def task_unit(task: EmulatedTask, definition: Any, *, network: str, aliases: tuple[str, ...],
              secret_value: Callable[[str], str], pull_auth: Mapping[str, str] | None = None) -> Unit:
    """The unit a task runs as (ECR images pulled with `pull_auth`); raises TaskStartError when a
    secret cannot be resolved."""
    from multicloud_docker.dataplane import Unit

    cpu = float(definition.cpu) / 1024 if str(definition.cpu or "").isdigit() else None
    memory = int(definition.memory) * MIB if str(definition.memory or "").isdigit() else None
    base = {"AWS_REGION": task.region_name, "AWS_DEFAULT_REGION": task.region_name,
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}
    members = tuple(_member(container, base, secret_value, cpu=cpu, memory=memory, pull_auth=pull_auth)
                    for container in definition.container_definitions)
    return Unit(task.key, members, network=network, aliases=aliases)


def _member(container: Mapping[str, Any], base: Mapping[str, str], secret_value: Callable[[str], str], *,
            cpu: float | None, memory: int | None, pull_auth: Mapping[str, str] | None) -> Member:
    """One container of a task: its environment, then its secrets (valueFrom, read now)."""
    from multicloud_docker.dataplane import Member

    env = dict(base)
    env.update({str(e["name"]): str(e.get("value", "")) for e in container.get("environment") or []})
    for secret in container.get("secrets") or []:
        env[str(secret["name"])] = secret_value(str(secret["valueFrom"]))
    own_memory = container.get("memory") or container.get("memoryReservation")
    return Member(
        name=str(container.get("name") or "main"),
        image=str(container["image"]),
        env=env,
        command=tuple(container["command"]) if container.get("command") else None,
        entrypoint=tuple(container["entryPoint"]) if container.get("entryPoint") else None,
        cpu=cpu,
        memory=int(own_memory) * MIB if own_memory else memory,
        probe=_probe(container.get("healthCheck")),
        restart="no",  # ECS never restarts a container: the scheduler replaces the task
        pull_auth=pull_auth if _in_ecr(str(container["image"])) else None,
        user=str(container["user"]) if container.get("user") else None,
        read_only=bool(container.get("readonlyRootFilesystem")),
    )


def _probe(check: Mapping[str, Any] | None) -> Probe | None:
    """The container health check with ECS's defaults (30 s interval, 5 s timeout, 3 retries)."""
    if not check or not check.get("command"):
        return None
    from multicloud_docker.dataplane import Probe

    return Probe(tuple(str(a) for a in check["command"]), interval=float(check.get("interval") or 30),
                 timeout=float(check.get("timeout") or 5), retries=int(check.get("retries") or 3),
                 start_period=float(check.get("startPeriod") or 0))


def secret_reader(account: str, region: str) -> Callable[[str], str]:
    """valueFrom -> value from the emulated Secrets Manager (an ARN or name, optionally with
    `:json-key:version-stage:version-id` after the ARN); raises TaskStartError as ECS fails the task."""
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[account][region]

    def read(value_from: str) -> str:
        parts = value_from.split(":")
        arn, key, stage, version = value_from, "", "", ""
        if value_from.startswith("arn:") and len(parts) > 7:
            arn, key = ":".join(parts[:7]), parts[7]
            stage = parts[8] if len(parts) > 8 else ""
            version = parts[9] if len(parts) > 9 else ""
        try:
            found = backend.get_secret_value(secret_id=arn, version_id=version or None,  # type: ignore[arg-type]
                                             version_stage=stage or None)  # type: ignore[arg-type]
        except Exception as exc:
            raise TaskStartError(
                "ResourceInitializationError: unable to pull secrets or registry auth: retrieve secret from "
                f"{arn}: {type(exc).__name__}") from exc
        text = str(found.get("SecretString") or "")
        if not key:
            return text
        try:
            return str(json.loads(text)[key])
        except (ValueError, KeyError, TypeError) as exc:
            raise TaskStartError(f"ResourceInitializationError: secret {arn} has no JSON key {key}") from exc

    return read



def _in_ecr(image: str) -> bool:
    """Whether an image is in the emulated ECR's registry."""
    from multicloud_aws import local_registry

    registry = local_registry.current()
    return registry is not None and image.startswith(f"{registry.address}/")


def ecr_credentials(account: str) -> dict[str, str]:
    """The user and password of an authorization token of the account's emulated ECR, as moto
    issues them (what the task's execution role pulls with)."""
    return {"username": "AWS", "password": f"{account}-auth-token"}


def task_network(backend: Any, network: dict[str, Any]) -> str:
    """The data-plane network of the task's VPC (that of its first subnet)."""
    from moto.ec2.models import ec2_backends

    subnets = network.get("subnets") or []
    try:
        return f"vpc-{ec2_backends[backend.account_id][backend.region_name].get_subnet(subnets[0]).vpc_id}"
    except Exception:  # an unknown subnet: the region's shared network
        return f"awsvpc-{backend.region_name}"


def task_aliases(backend: Any, service: Any) -> tuple[str, ...]:
    """The Cloud Map names (`SERVICE.NAMESPACE`) of the service's registries."""
    from moto.servicediscovery.models import servicediscovery_backends

    discovery = servicediscovery_backends[backend.account_id][backend.region_name]
    names = []
    for registry in service.service_registries or []:
        found = discovery.services.get(str(registry.get("registryArn", "")).rsplit("/", 1)[-1])
        namespace = discovery.namespaces.get(found.namespace_id) if found is not None else None
        if found is not None and namespace is not None:
            names.append(f"{found.name}.{namespace.name}")
    return tuple(names)
