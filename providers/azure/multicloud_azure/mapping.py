"""From a spec service to an ACI container definition (ARM REST JSON) and its tag metadata."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from typing import Any

from multicloud.addressing import ResolvedService, http_probe
from multicloud.resources import Sensitive
from multicloud.spec.models import HealthCheck, Service
from multicloud.spec.placeholders import SECRETS_DIR, secret_files
from multicloud_azure.api import Json
from multicloud_azure.tags import encode_digest

SECRETS_PATH = SECRETS_DIR
GIB = 1024**3


def memory_gb(size: int) -> float:
    """Bytes to ACI's memoryInGB, rounded up to the 0.1 GB steps ACI accepts."""
    return math.ceil(size / GIB * 10 - 1e-9) / 10


def transport(protocol: str) -> str:
    """ACI's port protocol for a spec protocol: UDP for udp, TCP for everything else."""
    return "UDP" if protocol == "udp" else "TCP"


def secrets_volume(service: str) -> str:
    """The name of the secret volume that holds a service's secret files."""
    name = f"secrets-{service}"
    return name if len(name) <= 63 else "secrets-" + hashlib.sha256(service.encode()).hexdigest()[:12]


def container(
    name: str, service: Service, resolved: ResolvedService, secrets: Mapping[str, str], *, app: str
) -> tuple[Json, Json | None, Json]:
    """Return (container JSON, secret volume JSON or None, metadata for the tags). Secret
    values go into secureValue / the secret volume only; the metadata holds their digests."""
    env: list[Json] = []
    secure: list[str] = []
    for key, value in resolved.env.items():
        if isinstance(value, Sensitive):
            env.append({"name": key, "secureValue": value.reveal()})
            secure.append(encode_digest(value))
        else:
            env.append({"name": key, "value": value})
    props: Json = {
        "image": service.image,
        "resources": {
            "requests": {"cpu": round(service.resources.cpu, 2), "memoryInGB": memory_gb(service.resources.memory)}
        },
        "ports": [{"port": p.port, "protocol": transport(p.protocol)} for p in service.ports],
        "environmentVariables": env,
    }
    command = [*(resolved.entrypoint or []), *(resolved.command or [])]
    if command:
        props["command"] = [str(a) for a in command]
    meta: Json = {"p": [[p.port, transport(p.protocol), p.name, p.protocol] for p in service.ports]}
    if service.healthcheck is not None:
        liveness, readiness = probes(service, service.healthcheck)
        if liveness is not None and readiness is not None:
            props["livenessProbe"], props["readinessProbe"] = liveness, readiness
        elif service.healthcheck.tcp is not None:
            meta["t"] = service.healthcheck.tcp  # unprobed: the plan says so (views.container_properties)
    if secure:
        meta["s"] = secure
    volume: Json | None = None
    mounted = secret_files(service)
    if mounted:
        files = {s: base64.b64encode(secrets[s].encode()).decode() for s in mounted}
        volume = {"name": secrets_volume(name), "secret": files}
        props["volumeMounts"] = [{"name": volume["name"], "mountPath": SECRETS_PATH, "readOnly": True}]
        meta["f"] = {s: encode_digest(Sensitive.of(secrets[s], app=app)) for s in mounted}
    return {"name": name, "properties": props}, volume, meta


def probes(service: Service, check: HealthCheck) -> tuple[Json | None, Json | None]:
    """(liveness, readiness) probes for a health check; (None, None) for a tcp check. ACI probes
    are exec or httpGet only, and a readiness probe that never passes (an exec of sh/nc on an image
    without them) keeps the container unreachable for its whole life, so a tcp check is not probed."""
    timing: Json = {
        "periodSeconds": max(1, round(check.interval)),
        "timeoutSeconds": max(1, round(check.timeout)),
        "failureThreshold": check.retries,
        "initialDelaySeconds": round(check.start_period),
    }
    if check.http is not None:
        scheme, port = http_probe(service)
        probe: Json = {"httpGet": {"path": check.http, "port": port, "scheme": scheme}, **timing}
        return probe, dict(probe)
    if check.command is not None:
        probe = {"exec": {"command": list(check.command)}, **timing}
        return probe, dict(probe)
    return None, None


def plain(values: list[str | Sensitive] | None) -> bool:
    """True when no argument carries a secret (ACI has no secure command arguments)."""
    return not any(isinstance(v, Sensitive) for v in values or [])


def requests_of(body: Mapping[str, Any]) -> tuple[float, float]:
    """Total (cpu, memoryInGB) a group body requests."""
    cpu = memory = 0.0
    for item in body["properties"]["containers"]:
        req = item["properties"]["resources"]["requests"]
        cpu += float(req["cpu"])
        memory += float(req["memoryInGB"])
    return cpu, memory
