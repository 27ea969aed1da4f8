"""Spec → Cloud Run services: one service per spec service, checked against Cloud Run's rules. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from multicloud.addressing import resolve_service
from multicloud.errors import CapabilityError, Finding
from multicloud.image_push import image_form
from multicloud.resources import Resource, Sensitive, fingerprint
from multicloud.spec.models import HealthCheck, Service
from multicloud.spec.placeholders import SECRETS_DIR, secret_files, service_secrets, takes_secret_value, whole_secret
from multicloud.spec.targets import TargetSpec
from multicloud.spec.units import format_memory
from multicloud_gcp import cloudsql, limits, rules
from multicloud_gcp.addressing import CloudRunAddressing, service_id
from multicloud_gcp.api import Body
from multicloud_gcp.artifacts import BUILD_DIR
from multicloud_gcp.mapping import (
    APP_LABEL,
    BUILD_ANNOTATION,
    DEPENDS_ANNOTATION,
    DIGESTS_ANNOTATION,
    PORT_ANNOTATION,
    SERVICE_LABEL,
    SPEC_LABEL,
    TARGET_LABEL,
    summarize,
)
from multicloud_gcp.secrets import secret_ids, secret_resources
from multicloud_gcp.settings import GcpSettings

PROVIDER = "gcp-cloudrun"


def desired_services(spec: TargetSpec, secrets: Mapping[str, str], settings: GcpSettings) -> list[Resource]:
    """Render one `service/NAME` resource per spec service (cpu raised to 1 where Cloud Run needs it,
    with a note saying why); raise CapabilityError listing every way the spec breaks Cloud Run's
    rules (before any call is made)."""
    spec, raised = rules.with_cpu_floor(spec, settings)
    address = CloudRunAddressing(spec.app, spec.services, settings.region, settings.project_number)
    problems: list[Finding] = []
    resources = secret_resources(spec, secrets, settings)
    written = {r.name for r in resources}
    for name, service in spec.services.items():
        found = _problems(spec, name, service, settings)
        problems += found
        if found:
            continue
        body = service_body(spec, name, secrets, settings, address=address)
        if service.build is not None:  # pushed at apply (artifacts.sendable); the annotation maps it back
            image = image_form(spec.base_dir, name, service.build)
            body["template"]["containers"][0]["image"] = image
            body["annotations"][BUILD_ANNOTATION] = json.dumps(image, sort_keys=True)
            body[BUILD_DIR] = spec.base_dir
        properties = summarize(body)
        body["labels"][SPEC_LABEL] = fingerprint(properties)
        needs = tuple(f"secret/{s}" for s in service_secrets(service) if s in written)
        needs += spec.resource_keys(name)
        resources.append(
            Resource("service", name, properties, depends_on=(*_depends(service), *needs), service=name, payload=body,
                     notes=(raised[name],) if name in raised else ())
        )
    if problems:
        raise CapabilityError(spec.target, PROVIDER, problems)
    return cloudsql.resources(spec, settings, secrets) + resources


def _depends(service: Service) -> tuple[str, ...]:
    """The resource keys of a service's dependencies."""
    return tuple(f"service/{d}" for d in service.depends_on)


def _problems(spec: TargetSpec, name: str, service: Service, settings: GcpSettings) -> list[Finding]:
    """Every Cloud Run rule this service breaks, as (field path, what to do instead)."""
    where = ("services", name)
    found: list[Finding] = [
        *rules.reserved_env_problems(where, service),
        *rules.internal_reference_problems(spec, where, service, settings),
        *rules.broker_problems(where, service, settings),
    ]
    if service.build is not None and settings.artifact_registry is None:
        found.append((
            (*where, "build"),
            "Cloud Run cannot build images: set the target's `artifact_registry:` setting to an Artifact Registry "
            f"Docker repository to push the build to, or give the service image: "
            f"(targets.{spec.target}.overrides.{name}.image)",
        ))
    too_many = limits.env_count_problem(len(service.env) - len(rules.dropped_env(service)))
    if too_many:
        found.append(((*where, "env"), f"{too_many}; move some into a file or a secret"))
    problem = limits.service_id_problem(service_id(spec.app, name))
    if problem:
        found.append((where, f"the Cloud Run name APP-SERVICE is {problem}; shorten the app or service name"))
    if len(service.ports) > 1:
        found.append((
            (*where, "ports"),
            f"Cloud Run serves exactly one port per service ({len(service.ports)} given); keep "
            "one HTTP, gRPC or mqtt-ws port with targets.TARGET.overrides, or split the service"
        ))
    cpu, memory = service.resources.cpu, service.resources.memory
    concurrency, cpu_idle, gen1 = _cpu_mode(spec, name, settings)
    found += [
        ((*where, "resources"), p)
        for p in limits.resource_problems(cpu, memory, concurrency=concurrency, cpu_idle=cpu_idle, gen1=gen1)
    ]
    check = service.healthcheck
    if check is not None:
        if check.command is not None:
            found.append(((*where, "healthcheck"), "Cloud Run probes are HTTP or TCP, not commands; use http: or tcp:"))
        if check.http is not None and service.ports and service.ports[0].protocol == "grpc":
            found.append((
                (*where, "healthcheck", "http"),
                "Cloud Run's HTTP probes speak HTTP/1, and this grpc port serves h2c (HTTP/2 only); "
                "use tcp: for this target",
            ))
        probe_port = check.port or check.tcp
        serving = service.ports[0].port if service.ports else 8080
        if probe_port is not None and probe_port != serving:
            found.append((
                (*where, "healthcheck"),
                f"Cloud Run probes only the serving port {serving} (not {probe_port}); "
                "override the health check for this target"
            ))
    for key, text in service.env.items():
        whole = whole_secret(text)
        if takes_secret_value(text) and (whole is None or whole.file):
            found.append((
                (*where, "env", key),
                "on Cloud Run a secret is a Secret Manager reference, so it must be the "
                'whole value ("${secrets.NAME}"); put the composed value in the secret instead'
            ))
    for args in (service.command or [], service.entrypoint or []):
        if any(takes_secret_value(a) for a in args):
            found.append((where, "secrets cannot appear in command or entrypoint on Cloud Run; pass them in env"))
    if service.user is not None or service.read_only:
        found.append((where, "Cloud Run sets neither the user nor a read-only root filesystem; drop user/read_only"))
    if len(service.secrets) > 1:
        found.append((
            (*where, "secrets"),
            "Cloud Run mounts one secret per directory, so at most one secret file "
            "per service at /run/secrets; use ${secrets.NAME.file} in env for the others"
        ))
    if service.secrets and len(secret_files(service)) > len(service.secrets):
        found.append((
            (*where, "secrets"),
            "on Cloud Run the secrets list mounts /run/secrets, where each "
            "${secrets.NAME.file} gets a directory of its own; use ${secrets.NAME.file} for every secret file"
        ))
    return found


def secret_file_path(service: Service, name: str) -> str:
    """Where `${secrets.NAME.file}` is on Cloud Run: /run/secrets/NAME for the one secret the
    secrets list mounts there, else in a volume of its own (one secret per directory)."""
    return f"{SECRETS_DIR}/{name}" if name in service.secrets else f"{SECRETS_DIR}/{name}/{name}"


def _volume_name(secret: str) -> str:
    """A Cloud Run volume name for a secret file (lower-case letters, digits and dashes)."""
    name = "secret-" + secret.lower().replace("_", "-")
    return name if name == f"secret-{secret}" else f"{name}-{hashlib.sha256(secret.encode()).hexdigest()[:6]}"


def _cpu_mode(spec: TargetSpec, name: str, settings: GcpSettings) -> tuple[int, bool, bool]:
    """(concurrency, cpu_idle, first-generation) for a service, as Cloud Run requires for its CPU:
    a broker takes 1000 WebSockets; GEN2 needs 512 MiB, so less runs first-generation."""
    service = spec.services[name]
    if service.resources.cpu < 1:
        return 1, True, True
    concurrency = limits.MAX_CONCURRENCY if rules.is_broker(service) else settings.concurrency
    gen1 = service.resources.memory < limits.GEN2_MIN_MEMORY
    return concurrency, not rules.instance_billing(spec, name, settings), gen1


def service_body(
    spec: TargetSpec,
    name: str,
    secrets: Mapping[str, str],
    settings: GcpSettings,
    *,
    address: CloudRunAddressing,
) -> Body:
    """The Cloud Run v2 Service (protobuf JSON, proto field names) for one spec service."""
    service = spec.services[name]
    ids = secret_ids(spec, settings)
    resolved = resolve_service(
        service, address, secrets, lambda secret: secret_file_path(service, secret), app=spec.app
    )
    digests: dict[str, str] = {}
    env: list[dict[str, Any]] = []
    dropped = rules.dropped_env(service)
    for key, raw in service.env.items():
        if key in dropped:
            continue
        whole = whole_secret(raw)
        value = resolved.env[key]
        if whole is not None and not whole.file:
            assert isinstance(value, Sensitive)
            digests[key] = value.digest
            ref = {"secret": ids[whole.name], "version": "latest"}
            env.append({"name": key, "value_source": {"secret_key_ref": ref}})
        else:
            env.append({"name": key, "value": str(value)})
    concurrency, cpu_idle, gen1 = _cpu_mode(spec, name, settings)
    container: dict[str, Any] = {
        "image": service.image,
        "command": [str(a) for a in resolved.entrypoint or []],
        "args": [str(a) for a in resolved.command or []],
        "env": env,
        "resources": {
            "limits": {
                "cpu": limits.format_cpu(service.resources.cpu),
                "memory": format_memory(service.resources.memory),
            },
            "cpu_idle": cpu_idle,
        },
    }
    port = service.ports[0] if service.ports else None
    # explicit even where Cloud Run has defaults (port 8080, a TCP startup probe), so that what
    # Cloud Run returns compares equal and removing a health check removes its probes
    serving = port.port if port is not None else 8080
    container["ports"] = [{"name": "h2c" if port and port.protocol == "grpc" else "http1", "container_port": serving}]
    container.update(_probes(service.healthcheck, serving) if service.healthcheck else _default_probe(serving))
    volumes = []
    for secret in service.secrets:
        known = secret in secrets
        digests[f"file:{secret}"] = Sensitive.of(secrets[secret], app=spec.app).digest if known else "unknown"
        item = {"path": secret, "version": "latest"}
        volumes.append({"name": "secrets", "secret": {"secret": ids[secret], "items": [item]}})
        container["volume_mounts"] = [{"name": "secrets", "mount_path": SECRETS_DIR}]
    for secret in [s for s in secret_files(service) if s not in service.secrets]:
        known = secret in secrets
        digests[f"file:{secret}"] = Sensitive.of(secrets[secret], app=spec.app).digest if known else "unknown"
        item = {"path": secret, "version": "latest"}
        volume = _volume_name(secret)
        volumes.append({"name": volume, "secret": {"secret": ids[secret], "items": [item]}})
        container.setdefault("volume_mounts", []).append({"name": volume, "mount_path": f"{SECRETS_DIR}/{secret}"})
    instances = cloudsql.connections(settings, spec, name)
    if instances:  # Cloud Run's connector puts each instance's socket in /cloudsql/CONNECTION
        volumes.append({"name": cloudsql.VOLUME, "cloud_sql_instance": {"instances": instances}})
        container.setdefault("volume_mounts", []).append({"name": cloudsql.VOLUME, "mount_path": cloudsql.SOCKETS})
    websocket = port is not None and port.protocol == "mqtt-ws"
    minimum, maximum = rules.scaling(service, settings)
    labels = {APP_LABEL: spec.app, TARGET_LABEL: spec.target, SERVICE_LABEL: name}
    template: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": {DIGESTS_ANNOTATION: json.dumps(digests, sort_keys=True)} if digests else {},
        "scaling": {"min_instance_count": minimum, "max_instance_count": maximum},
        "timeout": f"{settings.websocket_timeout if websocket else settings.request_timeout}s",
        "max_instance_request_concurrency": concurrency,
        "session_affinity": websocket,
        "execution_environment": "EXECUTION_ENVIRONMENT_GEN1" if gen1 else "EXECUTION_ENVIRONMENT_GEN2",
        "containers": [container],
        "volumes": volumes,
    }
    if settings.service_account:
        template["service_account"] = settings.service_account
    if settings.vpc_network:
        interface = {
            "network": settings.vpc_network,
            **({"subnetwork": settings.vpc_subnet} if settings.vpc_subnet else {}),
        }
        template["vpc_access"] = {"network_interfaces": [interface], "egress": "ALL_TRAFFIC"}
    public = port is not None and port.expose == "public"
    return {
        "name": f"{settings.parent}/services/{service_id(spec.app, name)}",
        "labels": labels,
        "annotations": {
            DEPENDS_ANNOTATION: ",".join(_depends(service)),
            **({PORT_ANNOTATION: f"{port.name}/{port.protocol}"} if port else {}),
        },
        "ingress": "INGRESS_TRAFFIC_ALL" if public else "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "invoker_iam_disabled": public or (port is not None and settings.internal_auth == "none"),
        "template": template,
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
    }


def _default_probe(port: int) -> dict[str, Any]:
    """Cloud Run's own default: a TCP startup probe on the serving port."""
    probe = {"tcp_socket": {"port": port}, "timeout_seconds": 240, "period_seconds": 240, "failure_threshold": 1}
    return {"startup_probe": probe}


def _probes(check: HealthCheck, serving: int) -> dict[str, Any]:
    """Startup (and, for HTTP, liveness) probes from a health check, within Cloud Run's bounds."""
    period = min(max(1, round(check.interval)), limits.STARTUP_WINDOW)
    timing = {
        "period_seconds": period,
        "timeout_seconds": min(max(1, round(check.timeout)), period),
        "failure_threshold": check.retries,
    }
    # Cloud Run bounds a startup probe's window (period x failures) to 240 s
    startup = {
        **timing,
        "failure_threshold": min(check.retries, limits.STARTUP_WINDOW // period),
        "initial_delay_seconds": min(round(check.start_period), limits.STARTUP_WINDOW),
    }
    if check.http is not None:
        action = {"http_get": {"path": check.http, "port": check.port or serving}}
        return {"startup_probe": {**startup, **action}, "liveness_probe": {**timing, **action}}
    return {"startup_probe": {**startup, "tcp_socket": {"port": check.tcp or serving}}}
