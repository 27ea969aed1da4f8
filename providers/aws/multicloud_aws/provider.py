"""Provider `aws-ecs`: an app on ECS Fargate behind one NLB, found by its tags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from multicloud.contract import Capabilities, Endpoint, Event, EventSink, Health, HealthState, LogLine, ServiceStatus
from multicloud.errors import ProviderError
from multicloud.generated import stored_after_their_ca
from multicloud.planner import Change
from multicloud.resources import Resource, Sensitive
from multicloud.spec.backing import Address
from multicloud.spec.targets import TargetSpec
from multicloud.terminal import Terminal
from multicloud_aws import balancer, execute, infra, rds, rds_apply, reports, services
from multicloud_aws.clients import ClientFactory, NotFoundError, default_factory, guard
from multicloud_aws.context import Context
from multicloud_aws.desired import cluster_name, namespace_name, render
from multicloud_aws.fargate import FARGATE_MEMORY, MIB
from multicloud_aws.lookups import describe_load_balancer
from multicloud_aws.names import load_balancer_dns
from multicloud_aws.names import secret as secret_name
from multicloud_aws.observe import observe
from multicloud_aws.settings import AwsSettings, parse_settings

CAPABILITIES = Capabilities(
    raw_tcp_ingress=True,
    udp_ingress=False,  # an NLB checks a UDP target over TCP, which the task's UDP port never answers
    http_ingress=True,
    websockets=True,
    internal_tcp=True,
    volumes=False,
    build=True,
    max_cpu=16.0,
    max_memory=FARGATE_MEMORY[16384][-1] * MIB,
    empty_secrets=False,
    max_secret_bytes=65536,
    health_timeout=600.0,  # a rollout: image pull, 60 s grace, 2 NLB checks 10 s apart, 30 s draining, per batch
    resources=("postgres",),
    notes=(
        "public ports share one Network Load Balancer per app: public port numbers must differ across services",
        "HTTP ports are plain TCP listeners on that NLB (no TLS termination, no path routing)",
        "task cpu/memory round up to Fargate's allowed pairs",
        "tasks have no persistent volumes; use a managed store and a secret URL (postgres resources: RDS)",
        "no public UDP: an NLB health-checks UDP targets over TCP, so a UDP-only task is never healthy",
    ),
)


HANDLERS: dict[str, infra.Handler] = {**infra.HANDLERS, "load-balancer": balancer.load_balancer,
                                       "port": balancer.port, **rds_apply.HANDLERS}
"""The step of each kind but `service`."""


class AwsEcsProvider:
    """Deploys each service as an ECS Fargate service; see docs/providers/aws.md."""

    name = "aws-ecs"
    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, Any] | AwsSettings | None = None, *,
                 client_factory: ClientFactory | None = None) -> None:
        self.settings = parse_settings(settings or {})
        factory = client_factory or default_factory(
            self.settings.region, self.settings.profile, self.settings.endpoint_url)
        self.ctx = Context(self.settings, factory)

    def desired(self, spec: TargetSpec, secrets: Mapping[str, str]) -> list[Resource]:
        """Render the app's resources and its databases (a TLS secret's pair stored after its CA); UserError for
        what Fargate cannot run. Reads only build contexts."""
        needs = {name: rds.service_needs(spec, name) for name in spec.services}
        return stored_after_their_ca([
            *render(spec.app, spec.services, self.settings, secrets, spec.base_dir, needs=needs),
            *rds.desired(spec, self.settings, secrets, namespace_name(spec.app, self.settings)),
            *(Resource("secret", name, {"name": secret_name(spec.app, name),
                                        "value": Sensitive.of(secrets[name], app=spec.app)})
              for name in spec.store_only_secrets())], spec)

    def public_names(self, spec: TargetSpec) -> list[str]:
        """The NLB's DNS name as `*.elb.REGION.amazonaws.com` when a port is public: AWS makes the name up only
        when it creates the NLB, and the wildcard names it before, so one apply issues the certificate for
        good. Reads nothing."""
        return [load_balancer_dns(self.ctx.region)] if spec.has_public_port() else []

    def postgres_address(self, spec: TargetSpec, name: str) -> Address:
        """A database is reached at its Cloud Map alias NAME.NAMESPACE (a CNAME to the RDS endpoint)."""
        return rds.address(spec, self.settings, name)

    def stored_secrets(self, app: str, names: Sequence[str]) -> dict[str, str]:
        """Values of generated secrets already in Secrets Manager (`multicloud/APP/NAME`, written by
        the plan's secret resources); reads only."""
        client = self.ctx.client("secretsmanager")
        values: dict[str, str] = {}
        for name in names:
            try:
                with guard(f"reading secret {secret_name(app, name)}"):
                    values[name] = str(client.get_secret_value(SecretId=secret_name(app, name))["SecretString"])
            except NotFoundError:
                continue
        return values

    def observe(self, app: str) -> list[Resource]:
        """Every resource the app owns, found by tags and Cloud Map markers, each instance of a
        key (oldest first) told apart by its ARN; reads only."""
        return rds.persistence(observe(self.ctx, app).all())

    def read(self, app: str, key: str) -> list[Resource]:
        """Every instance of one owned resource as it is now ([] when absent); reads only what
        that kind needs."""
        return rds.persistence(observe(self.ctx, app, key).instances.get(key, []))

    def apply(self, app: str, change: Change, emit: EventSink) -> None:
        """Carry out one step; a failure leaves tagged objects the next apply converges."""
        kind = change.resource.kind
        if kind == "service":
            services.apply_service(self.ctx, app, change, lambda message: emit(Event("progress", change.key, message)))
        elif kind in HANDLERS:
            HANDLERS[kind](self.ctx, app, change)
        else:
            raise ProviderError(f"aws-ecs has no handler for {change.key}")

    def health(self, app: str, resource: Resource) -> Health:
        """Services: healthy when their rollout completed with all tasks running; the NLB
        when active; everything else as soon as it exists."""
        if resource.kind == "service":
            return services.service_health(self.ctx, str(resource.properties["cluster"]), resource.name)
        if resource.kind == "postgres":
            return rds_apply.health(self.ctx, resource)
        if resource.kind == "load-balancer":
            found = describe_load_balancer(self.ctx, str(resource.properties["name"]))
            if found is None:
                return Health(HealthState.STARTING, "load balancer not visible yet")
            state = found["State"]["Code"]
            if state == "failed":
                return Health(HealthState.UNHEALTHY, found["State"].get("Reason", "load balancer failed"))
            if state != "active":
                return Health(HealthState.STARTING, f"load balancer {state}")
        return Health(HealthState.HEALTHY)

    def status(self, app: str) -> list[ServiceStatus]:
        """Desired/running tasks, rollout state and the latest event per service; reads only."""
        return reports.status(self.ctx, app, observe(self.ctx, app))

    def logs(
        self, app: str, service: str | None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """CloudWatch lines of one service or all (since read from CloudWatch by start time); follow polls
        for new ones; reads only."""
        return reports.logs(self.ctx, app, service, follow=follow, tail=tail, since=since)

    def endpoints(self, app: str) -> list[Endpoint]:
        """Public ports at the NLB's DNS name, internal ones at their Cloud Map name; reads only."""
        return reports.endpoints(self.ctx, app, observe(self.ctx, app))

    def exec(self, app: str, service: str, command: Sequence[str], *, replica: int, terminal: Terminal) -> int:
        """ECS Exec into the replica-th running task of a service where it has enableExecuteCommand
        (the plugin talks to this terminal itself); UserError otherwise."""
        return execute.run(self.ctx, cluster_name(app, self.settings), service, command, replica=replica)

    def rollback(self, app: str, service: str) -> str:
        """Point a service at its previous task definition revision; return that revision.
        The next apply rolls forward to the spec again. Raises UserError with nothing to roll to."""
        return services.rollback(self.ctx, app, cluster_name(app, self.settings), service)
