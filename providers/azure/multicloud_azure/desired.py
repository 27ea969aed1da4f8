"""The desired container group of an app: checks ACI's limits at plan time, renders the
PUT body (secrets included, kept in the payload only) and the resources the plan compares."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multicloud.addressing import DirectAddressing, resolve_service
from multicloud.errors import CapabilityError, Finding
from multicloud.image_push import image_form
from multicloud.resources import Resource, fingerprint, to_jsonable
from multicloud.spec.models import Service
from multicloud.spec.placeholders import secret_files, takes_secret_value
from multicloud.spec.targets import TargetSpec
from multicloud_azure import mapping, tags, views
from multicloud_azure.api import Json
from multicloud_azure.settings import AzureSettings

PROVIDER = "azure-aci"
MAX_CPU = 4.0
MAX_MEMORY_GB = 16.0
MAX_CONTAINERS = 60
MAX_PUBLIC_PORTS = 5
MAX_VOLUMES = 20
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class GroupPlan:
    """A rendered container group: its name, the PUT body (with secret values: never shown)
    and the properties per resource key that a matching group projects to."""

    name: str
    body: Json = field(repr=False)
    spec_hash: str
    properties: Mapping[str, Any] = field(repr=False)
    base_dir: str = "."
    """The spec's directory, which `build:` contexts are relative to."""

    def matches(self, current: Mapping[str, Any] | None) -> bool:
        """True when an existing group (a GET) already is this plan, so no PUT is needed."""
        if current is None or current["properties"].get("provisioningState") == "Deleting":
            return False
        seen = {r.key: to_jsonable(dict(r.properties)) for r in views.resources(current)}
        return seen == self.properties


def needs_recreate(plan: GroupPlan, current: Mapping[str, Any]) -> list[str]:
    """What PUTting the plan over an existing group (a GET) would change that ARM only changes by
    deleting and recreating it: anything while the group has terminated, the group's location,
    OS, restart policy, SKU or set of containers, or the cpu or memory of a container in both
    ([] when none)."""
    state = views.terminated(current)
    changed: list[str] = [f"group/{plan.name} state ({state})"] if state else []
    for resource in views.resources(current):
        wanted = plan.properties.get(resource.key)
        if wanted is None:
            continue
        seen = to_jsonable(dict(resource.properties))
        fields = views.GROUP_REPLACE_ON if resource.kind == "group" else views.CONTAINER_REPLACE_ON
        changed += [f"{resource.key} {f}" for f in sorted(fields) if seen.get(f) != wanted.get(f)]
    return changed


def render(spec: TargetSpec, settings: AzureSettings, secrets: Mapping[str, str]) -> tuple[GroupPlan, list[Resource]]:
    """Render one group holding every service; raise CapabilityError listing each thing ACI
    cannot run, with what to do instead. Pure: reads only the environment for the registry."""
    check(spec, settings)
    address = DirectAddressing(spec.services, host=lambda _name: "localhost")
    name = settings.group_name(spec.app)
    containers: list[Json] = []
    volumes: list[Json] = []
    all_tags: dict[str, str] = {tags.APP: spec.app, tags.TARGET: spec.target, tags.LAYOUT: settings.layout}
    public_ports: list[Json] = []
    for service_name, service in spec.services.items():
        if service.replicas == 0:
            continue
        resolved = resolve_service(service, address, secrets, app=spec.app)
        item, volume, meta = mapping.container(service_name, service, resolved, secrets, app=spec.app)
        if service.build is not None:  # pushed to the ACR at apply (acr.push_builds); the tag maps it back
            item["properties"]["image"] = meta["b"] = image_form(spec.base_dir, service_name, service.build)
        containers.append(item)
        if volume is not None:
            volumes.append(volume)
        tags.put_json(all_tags, tags.container_key(service_name), meta)
        public_ports += [
            {"port": p.port, "protocol": mapping.transport(p.protocol)} for p in service.ports if p.expose == "public"
        ]
    props: Json = {
        "sku": "Standard",
        "osType": "Linux",
        "restartPolicy": settings.restart_policy,
        "containers": containers,
    }
    if public_ports:
        ip: Json = {"type": "Public", "ports": public_ports}
        label = dns_label(settings, spec.app, name)
        if label:
            ip["dnsNameLabel"] = label
        props["ipAddress"] = ip
    if volumes:
        props["volumes"] = volumes
    group_meta: Json = {}
    if settings.registry is not None:
        password = settings.registry.password(app=spec.app)
        props["imageRegistryCredentials"] = [
            {"server": settings.registry.server, "username": settings.registry.username, "password": password.reveal()}
        ]
        group_meta["r"] = tags.encode_digest(password)
    if any(s.build is not None for s in spec.services.values() if s.replicas > 0):
        group_meta["a"] = settings.acr
    if group_meta:
        tags.put_json(all_tags, tags.GROUP_META, group_meta)
    body: Json = {"location": settings.location, "tags": all_tags, "properties": props}
    if not containers:
        return GroupPlan(name, body, "", {}), []
    body["name"] = name
    projected = views.resources(body)
    properties = {r.key: to_jsonable(dict(r.properties)) for r in projected}
    spec_hash = fingerprint(properties)
    all_tags[tags.SPEC] = spec_hash
    del body["name"]
    if len(all_tags) > tags.MAX_TAGS:
        raise CapabilityError(spec.target, PROVIDER, [
            f"the group's metadata needs {len(all_tags)} tags but ARM allows {tags.MAX_TAGS}; "
            "use fewer secret values or services per group"
        ])
    plan = GroupPlan(name, body, spec_hash, properties, spec.base_dir)
    return plan, [_with_payload(r, plan) for r in projected]


def _with_payload(resource: Resource, plan: GroupPlan) -> Resource:
    """A copy of a projected resource carrying the rendered group for apply."""
    return dataclasses.replace(resource, payload=plan)


def dns_label(settings: AzureSettings, app: str, group: str) -> str | None:
    """The DNS name label: the setting, else the group name plus a short hash of where it
    runs (labels are unique per region), else None when the setting is false."""
    if settings.dns_label is False:
        return None
    if isinstance(settings.dns_label, str):
        return settings.dns_label
    suffix = hashlib.sha256(f"{settings.subscription_id}/{settings.resource_group}/{group}".encode()).hexdigest()[:6]
    base = group if group[0].isalpha() else f"g{group}"
    return f"{base[:56].rstrip('-')}-{suffix}"


def check(spec: TargetSpec, settings: AzureSettings) -> None:
    """Raise CapabilityError with every reason one ACI group cannot hold these services, each at
    the field it concerns."""
    found: list[Finding] = []
    target = spec.target
    owners: dict[tuple[int, str], str] = {}
    cpu = memory = 0.0
    running = [(n, s) for n, s in spec.services.items() if s.replicas > 0]
    for name, service in running:
        if service.replicas > 1:
            found.append((
                ("services", name, "replicas"),
                f"{service.replicas} replicas cannot run on ACI: a container group is one "
                f"instance and ACI has no replica count. Set targets.{target}.defaults: {{replicas: 1}} (or "
                f"overrides.{name}.replicas: 1), or run the copies as separate apps (or on Azure Container Apps) "
                "behind a load balancer",
            ))
        for index, port in enumerate(service.ports):
            key = (port.port, mapping.transport(port.protocol))
            if key in owners:
                found.append((
                    ("services", name, "ports", index),
                    f"{port.name}: port {port.port}/{key[1]} is also used by {owners[key]}; "
                    "the containers of one ACI group share one IP and ACI cannot remap ports, so give one of them "
                    f"another port (targets.{target}.overrides)",
                ))
            else:
                owners[key] = f"services.{name}.ports.{port.name}"
        cpu += service.resources.cpu
        memory += mapping.memory_gb(service.resources.memory)
        arguments = [*(service.command or []), *(service.entrypoint or [])]
        if any(takes_secret_value(a) for a in arguments):
            found.append(
                (("services", name, "command"), "ACI has no secure command arguments; pass the secret in env instead")
            )
        if service.build is not None and settings.acr is None:
            found.append((
                ("services", name, "build"),
                "ACI cannot build images: set the target's `acr:` setting to an Azure Container Registry to push "
                f"the build to, or give the service image: (targets.{target}.overrides.{name}.image)",
            ))
        if service.user is not None or service.read_only:
            found.append((
                ("services", name),
                "user and read_only cannot be set on ACI containers; drop them for this target "
                f"(targets.{target}.overrides.{name})",
            ))
        check_ = service.healthcheck
        if check_ is not None and check_.http is not None and check_.port is None and not service.ports:
            found.append((("services", name, "healthcheck"), "an http check needs a port (healthcheck.port)"))
    found += _arm_limits(spec, settings, running)
    if len(running) > MAX_CONTAINERS:
        found.append((("services",), f"ACI allows {MAX_CONTAINERS} containers per group ({len(running)} given)"))
    if cpu > MAX_CPU + 1e-9 or memory > MAX_MEMORY_GB + 1e-9:
        found.append((
            ("services",),
            f"together they request {cpu:g} CPU and {memory:g} GB, over ACI's {MAX_CPU:g} CPU and "
            f"{MAX_MEMORY_GB:g} GB per container group; lower resources per service, or exclude some services "
            f"on target {target!r}",
        ))
    if found:
        raise CapabilityError(target, PROVIDER, found)


def _arm_limits(spec: TargetSpec, settings: AzureSettings, running: list[tuple[str, Service]]) -> list[Finding]:
    """Findings for what ARM rejects only when the group is PUT: more than 5 public ports on the IP,
    environment variable names ACI refuses, more than 20 volumes (one per service with secret
    files), and `--` in the group or a container name."""
    found: list[Finding] = []
    public = [(n, i, p) for n, s in running for i, p in enumerate(s.ports) if p.expose == "public"]
    for name, index, port in public[MAX_PUBLIC_PORTS:]:
        found.append((
            ("services", name, "ports", index),
            f"{port.name}: ACI allows {MAX_PUBLIC_PORTS} public ports per IP address and the group has "
            f"{len(public)}; make some internal (expose: internal) or move services to another app",
        ))
    for name, service in running:
        if "--" in name:
            found.append((("services", name), f"{name}: ACI container names cannot contain `--`; rename the service"))
        for key in service.env:
            if not ENV_NAME.match(key):
                found.append((
                    ("services", name, "env", key),
                    f"{key}: ACI environment variable names are letters, digits and _ (not starting with a digit), "
                    "at most 63 characters; rename it",
                ))
    with_volume = [name for name, service in running if secret_files(service)]
    if len(with_volume) > MAX_VOLUMES:
        found.append((
            ("services",),
            f"{len(with_volume)} services mount secret files and each needs a volume, over ACI's {MAX_VOLUMES} "
            "per container group; pass some secrets in env instead, or split the app",
        ))
    if settings.group is None and "--" in spec.app:
        found.append((
            ("app",),
            f"the container group is named after the app {spec.app!r} and ACI group names cannot contain `--`; "
            "rename the app or set the target's `group:` setting",
        ))
    return found
