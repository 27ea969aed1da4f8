"""Render a target spec as AWS resources: pure (no AWS call; reads only `build:` contexts, to hash them)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from multicloud.addressing import DirectAddressing, resolve_service
from multicloud.errors import UserError
from multicloud.image_push import image_form
from multicloud.probes import probe_script
from multicloud.resources import Resource, Sensitive
from multicloud.spec.models import HealthCheck, Service
from multicloud.spec.placeholders import SecretRef, references, whole_secret
from multicloud_aws import names
from multicloud_aws.fargate import fargate_size
from multicloud_aws.settings import AwsSettings

DEFAULT = "default"
RUNTIME_PLATFORM = {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
"""What tasks run on: Fargate's default, stated so that an image built for another platform is caught
(builds are made --platform linux/amd64, multicloud.image_push.PLATFORM)."""
_SM_UNSAFE = re.compile(r"[^A-Za-z0-9/_+=.@-]")


def namespace_name(app: str, settings: AwsSettings) -> str:
    """The Cloud Map namespace services find each other in."""
    return settings.namespace or names.namespace(app)


def load_balancer_name(app: str, settings: AwsSettings) -> str:
    """The app's NLB name, which changes with where it is placed (vpc, subnets)."""
    return names.load_balancer(app, settings.vpc or "", ",".join(sorted(settings.subnets)))


def cluster_name(app: str, settings: AwsSettings) -> str:
    """The ECS cluster: the one named in settings, else one named after the app."""
    return settings.cluster or app


def render(app: str, services: Mapping[str, Service], settings: AwsSettings, secrets: Mapping[str, str],
           base_dir: str = ".", *, needs: Mapping[str, list[str]] | None = None) -> list[Resource]:
    """Every resource the app needs on ECS (`needs`: keys of what each service waits for besides other
    services, e.g. its databases); raises UserError for what Fargate cannot run."""
    _check_public_ports(services)
    ns = namespace_name(app, settings)
    address = DirectAddressing(services, host=lambda name: f"{name}.{ns}")
    shared: list[Resource] = [
        Resource("log-group", app, {"name": names.log_group(app), "retention_days": settings.log_retention_days}),
        Resource("namespace", app, {"name": ns}, replace_on=frozenset({"name"}), replace_mode="create-before-delete"),
    ]
    if settings.cluster is None:
        shared.append(Resource("cluster", app, {"name": app}, replace_on=frozenset({"name"})))
    if settings.execution_role_arn is None:
        shared.append(Resource("role", app, {"name": names.role(app), "secrets": names.secret(app, "*")}))
    if not settings.security_groups:
        public = sorted({f"{_transport(p.protocol)}/{p.port}" for s in services.values() for p in s.ports
                         if p.expose == "public"})
        props = {"name": names.security_group(app), "vpc": settings.vpc or DEFAULT, "public": public}
        shared.append(Resource("security-group", app, props, replace_on=frozenset({"name", "vpc"}),
                               replace_mode="create-before-delete"))
    if any(p.expose == "public" for s in services.values() for p in s.ports):
        props = {"name": load_balancer_name(app, settings), "scheme": "internet-facing",
                 "subnets": list(settings.subnets) or DEFAULT}
        shared.append(Resource("load-balancer", app, props, replace_on=frozenset({"name", "scheme", "subnets"}),
                               replace_mode="create-before-delete"))
    secret_resources: dict[str, Resource] = {}
    for name in _used_secrets(services):
        if name not in secrets:
            raise UserError(f"secret {name!r} has no value")
        secret_resources[name] = Resource(
            "secret", name, {"name": names.secret(app, name), "value": Sensitive.of(secrets[name], app=app)})
    per_service: list[Resource] = []
    for name, service in services.items():
        per_service += _service_resources(app, name, service, settings=settings, address=address, secrets=secrets,
                                          secret_resources=secret_resources, ns=ns, base_dir=base_dir,
                                          needs=(needs or {}).get(name, []))
    return shared + sorted(secret_resources.values(), key=lambda r: r.key) + per_service


def _service_resources(app: str, name: str, service: Service, *, settings: AwsSettings, address: DirectAddressing,
                       secrets: Mapping[str, str], secret_resources: dict[str, Resource], ns: str,
                       base_dir: str, needs: list[str]) -> list[Resource]:
    resolved = resolve_service(service, address, secrets, app=app)
    for field, args in (("command", resolved.command), ("entrypoint", resolved.entrypoint)):
        if args and any(isinstance(a, Sensitive) for a in args):
            raise UserError(
                f"services.{name}.{field}: a secret in {field} would be stored in plain text in the task "
                "definition; pass it through env instead (it becomes a Secrets Manager reference)")
    env_secrets = secret_files_as_env(name, service)
    env: dict[str, str] = {}
    for key, value in resolved.env.items():
        if key.endswith("_FILE") and key.removesuffix("_FILE") in env_secrets:
            continue
        if not isinstance(value, Sensitive):
            env[key] = value
            continue
        whole = whole_secret(service.env[key])
        if whole:
            env_secrets[key] = f"secret/{whole.name}"
        else:
            own = Resource("secret", f"{name}.{key}",
                           {"name": names.env_secret(app, name, _SM_UNSAFE.sub("-", key)), "value": value},
                           service=name)
            secret_resources[own.name] = own
            env_secrets[key] = own.key
    for secret in service.secrets:
        env_secrets.setdefault(secret, f"secret/{secret}")
    cpu, memory = fargate_size(name, service.resources.cpu, service.resources.memory)
    resources: list[Resource] = [
        Resource("discovery", name, {"name": name, "namespace": ns, "ttl": 10}, depends_on=(f"namespace/{app}",),
                 replace_on=frozenset({"name", "namespace"}), replace_mode="create-before-delete", service=name),
    ]
    balancers = []
    for port in service.ports:
        if port.expose != "public":
            continue
        key = f"port/{name}.{port.name}"
        props = _port(app, name, port.name, settings, protocol=_transport(port.protocol).upper(), number=port.port)
        resources.append(Resource("port", f"{name}.{port.name}", props, depends_on=(f"load-balancer/{app}",),
                                  replace_on=PORT_REPLACE_ON, replace_mode="create-before-delete", service=name))
        balancers.append({"target": key, "target_group": props["target_group"], "port": port.port})
    image: Any = service.image
    if service.build is not None:
        repo = Resource("repository", name, {"name": names.repository(app, name)}, replace_on=frozenset({"name"}),
                        service=name)
        resources.append(repo)
        image = {**image_form(base_dir, name, service.build), "repository": repo.key}
    task = {
        "family": names.family(app, name),
        "cpu": cpu,
        "memory": memory,
        "image": image,
        "command": resolved.command,
        "entrypoint": resolved.entrypoint,
        "env": dict(sorted(env.items())),
        "secrets": dict(sorted(env_secrets.items())),
        # tasks read their secrets when they start: a changed value (a re-issued certificate) must roll them
        "secret_digests": _digests(env_secrets, secret_resources),
        "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in service.ports],
        "health": _health(service),
        "user": service.user,
        "read_only": service.read_only,
        "execution_role": settings.execution_role_arn or f"role/{app}",
        "task_role": settings.task_role_arn,
        "log_group": names.log_group(app),
        "platform": RUNTIME_PLATFORM,
    }
    props = {
        "cluster": cluster_name(app, settings),
        "task": task,
        "replicas": service.replicas,
        "network": {
            "subnets": list(settings.subnets) or DEFAULT,
            "security_groups": list(settings.security_groups) or [f"security-group/{app}"],
            "public_ip": settings.assign_public_ip,
        },
        "load_balancers": balancers,
        "discovery": f"discovery/{name}",
        "namespace": ns,
        "after": sorted([*service.depends_on, *needs]),
    }
    depends_on = service_depends_on(app, props, own_cluster=settings.cluster is None)
    resources.append(Resource("service", name, props, depends_on=depends_on, replace_on=frozenset({"cluster"}),
                              replace_mode="delete-before-create", service=name, payload={"base_dir": base_dir}))
    return resources


PORT_REPLACE_ON = frozenset({"target_group", "protocol", "port", "vpc", "load_balancer"})
HEALTH_CHECK = {"interval": 10, "healthy": 2, "unhealthy": 2}
"""A public port's TCP health check: healthy after 2 checks 10 s apart (AWS: 5 checks 30 s apart)."""
DEREGISTRATION_DELAY = 30
"""Seconds a stopping task keeps its connections (AWS: 300, which every rollout and delete waits out)."""


def _port(app: str, service: str, port: str, settings: AwsSettings, *, protocol: str, number: int) -> dict[str, Any]:
    """A public port's properties: its target group is named after everything that cannot
    change in place, so a replacement can exist beside the group it replaces."""
    vpc = settings.vpc or DEFAULT
    balancer = load_balancer_name(app, settings)
    group = names.target_group(app, service, port, protocol, str(number), vpc, balancer)
    return {"target_group": group, "protocol": protocol, "port": number, "vpc": vpc, "load_balancer": balancer,
            "listening": True, "health_check": dict(HEALTH_CHECK)}


def service_depends_on(app: str, props: Mapping[str, Any], *, own_cluster: bool) -> tuple[str, ...]:
    """What an ECS service needs first, derived from its properties (so observe agrees);
    `own_cluster` when it runs in the cluster the app made."""
    task = props.get("task") or {}
    deps = {f"log-group/{app}", str(props.get("discovery"))}
    if own_cluster:
        deps.add(f"cluster/{app}")
    if str(task.get("execution_role", "")).startswith("role/"):
        deps.add(task["execution_role"])
    deps.update(g for g in (props.get("network") or {}).get("security_groups", []) if g.startswith("security-group/"))
    deps.update((task.get("secrets") or {}).values())
    deps.update(b["target"] for b in props.get("load_balancers") or [])
    image = task.get("image")
    if isinstance(image, Mapping) and "repository" in image:
        deps.add(str(image["repository"]))
    deps.update(d if "/" in d else f"service/{d}" for d in props.get("after") or [])
    return tuple(sorted(deps))


def _health(service: Service) -> dict[str, Any] | None:
    """ECS container health check (http: the core's portable probe); tcp checks are left to the
    NLB, since ECS replaces tasks that fail a container check and an image may have no shell."""
    check: HealthCheck | None = service.healthcheck
    if check is None or check.tcp is not None:
        return None
    script = probe_script(check, service)
    command = ["CMD", *(check.command or [])] if script is None else ["CMD-SHELL", script]
    return {
        "command": command,
        "interval": _clamp(check.interval, 5, 300),
        "timeout": _clamp(check.timeout, 2, 60),
        "retries": _clamp(check.retries, 1, 10),
        "start_period": _clamp(check.start_period, 0, 300),
    }


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _digests(env_secrets: Mapping[str, str], secret_resources: Mapping[str, Resource]) -> dict[str, str]:
    """The digest of the value behind each secret variable (VAR -> digest; never the value)."""
    found: dict[str, str] = {}
    for variable, key in sorted(env_secrets.items()):
        resource = secret_resources.get(key.removeprefix("secret/"))
        value = resource.properties.get("value") if resource else None
        if isinstance(value, Sensitive):
            found[variable] = value.digest
    return found


def _transport(protocol: str) -> str:
    return "udp" if protocol == "udp" else "tcp"


def _used_secrets(services: Mapping[str, Service]) -> list[str]:
    """Top-level secrets referenced whole (`${secrets.x}`, `${secrets.x.file}`) or listed under a service's secrets."""
    used: set[str] = set()
    for service in services.values():
        used.update(service.secrets)
        for value in service.env.values():
            whole = whole_secret(value)
            if whole:
                used.add(whole.name)
    return sorted(used)


def secret_files_as_env(name: str, service: Service) -> dict[str, str]:
    """Fargate mounts no secret files, so `X_FILE: ${secrets.s.file}` becomes X from Secrets Manager
    (valueFrom: the value stays out of the task definition; services read X when X_FILE is unset).
    Returns {X: "secret/s"}; raises UserError for a `.file` placeholder anywhere else."""
    found: dict[str, str] = {}
    for key, text in service.env.items():
        refs = [r for r in references(text) if isinstance(r, SecretRef) and r.file]
        if not refs:
            continue
        whole = whole_secret(text)
        plain = key.removesuffix("_FILE")
        if whole is None or plain == key or not plain:
            raise UserError(
                f"services.{name}.env.{key}: ECS Fargate has no secret files; a ${{secrets.NAME.file}} is "
                "accepted only as the whole value of a variable named X_FILE, which becomes X read from "
                "Secrets Manager (give the service X, or use ${secrets.NAME} in env)")
        if plain in service.env:
            raise UserError(
                f"services.{name}.env.{key}: on ECS Fargate it becomes {plain} from Secrets Manager, "
                f"which env also sets; drop one of them for this target")
        found[plain] = f"secret/{whole.name}"
    for field in ("command", "entrypoint"):
        for arg in getattr(service, field) or []:
            if any(isinstance(r, SecretRef) and r.file for r in references(arg)):
                raise UserError(
                    f"services.{name}.{field}: ECS Fargate has no secret files to name in {field}; pass the "
                    "secret through env as X_FILE (it becomes X from Secrets Manager) or ${secrets.NAME}")
    return found


def _check_public_ports(services: Mapping[str, Service]) -> None:
    """One NLB serves the app: a public port number can be used by one service only."""
    seen: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for port in service.ports:
            if port.expose != "public":
                continue
            slot = (port.port, _transport(port.protocol))
            if slot in seen:
                raise UserError(
                    f"services.{name}.ports.{port.name}: public port {port.port} is also public on "
                    f"{seen[slot]!r}; on aws-ecs one load balancer serves the app, so public port numbers "
                    "must differ (change one, or make it internal)")
            seen[slot] = f"{name}.{port.name}"
