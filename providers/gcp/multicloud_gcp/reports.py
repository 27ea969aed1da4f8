"""Health, status and endpoints read from Cloud Run service bodies (conditions, revisions, traffic)."""

from __future__ import annotations

import re
from typing import Any

from multicloud.addressing import endpoint_url
from multicloud.contract import Endpoint, Health, HealthState, ServiceStatus
from multicloud_gcp.api import Body
from multicloud_gcp.mapping import PORT_ANNOTATION, owner

SUCCEEDED = "CONDITION_SUCCEEDED"
FAILED = "CONDITION_FAILED"
OUTPUT_ONLY = (
    "uid",
    "generation",
    "create_time",
    "update_time",
    "delete_time",
    "expire_time",
    "creator",
    "last_modifier",
    "observed_generation",
    "terminal_condition",
    "conditions",
    "latest_ready_revision",
    "latest_created_revision",
    "traffic_statuses",
    "uri",
    "urls",
    "reconciling",
    "etag",
    "satisfies_pzs",
)


def health_of(body: Body | None) -> Health:
    """HEALTHY when Ready succeeded and nothing is reconciling; UNHEALTHY when Ready failed."""
    if body is None:
        return Health(HealthState.STARTING, "the service does not exist (yet)")
    condition = body.get("terminal_condition") or {}
    state, message = condition.get("state", "CONDITION_PENDING"), condition.get("message", "")
    if state == FAILED:
        return Health(HealthState.UNHEALTHY, message or "Cloud Run reports the service not ready")
    if state == SUCCEEDED and not body.get("reconciling"):
        return Health(HealthState.HEALTHY, f"serving {short(body.get('latest_ready_revision', ''))}")
    return Health(HealthState.STARTING, message or "Cloud Run is rolling out the new revision")


def short(revision: str) -> str:
    """A revision's short name (the last part of its resource name)."""
    return revision.rsplit("/", 1)[-1]


def serving_revision(body: Body) -> str:
    """The full name of the revision taking the most traffic now ('' when none)."""
    statuses = body.get("traffic_statuses") or []
    best = max(statuses, key=lambda t: int(t.get("percent", 0)), default=None)
    if best is None:
        return str(body.get("latest_ready_revision", ""))
    if best.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" or not best.get("revision"):
        return str(body.get("latest_ready_revision", ""))
    return f"{body['name']}/revisions/{best['revision']}"


def traffic_text(body: Body) -> str:
    """The traffic split, e.g. 'app-api-00002-xyz 100% (latest)'."""
    parts = []
    for target in body.get("traffic_statuses") or []:
        latest = target.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
        revision = target.get("revision") or short(str(body.get("latest_ready_revision", "?")))
        parts.append(f"{revision} {int(target.get('percent', 0))}%" + (" (latest)" if latest else ""))
    return ", ".join(parts) or "none"


def status_of(body: Body) -> ServiceStatus:
    """Instances wanted (min instances), state from the Ready condition, and revision and traffic detail."""
    found = owner(body)
    service = found[1] if found else str(body.get("name", "?"))
    scaling = (body.get("template") or {}).get("scaling") or {}
    desired = int(scaling.get("min_instance_count", 0))
    health = health_of(body)
    state = {HealthState.HEALTHY: "ready", HealthState.STARTING: "reconciling", HealthState.UNHEALTHY: "failed"}
    ready = health.state is HealthState.HEALTHY
    conditions = "; ".join(
        f"{c.get('type')}={c.get('state', '').removeprefix('CONDITION_').lower()}"
        for c in [body.get("terminal_condition") or {}, *(body.get("conditions") or [])]
        if c.get("type")
    )
    detail = (
        f"latest ready revision {short(str(body.get('latest_ready_revision', 'none')))}; "
        f"traffic {traffic_text(body)}; conditions {conditions or 'none'}"
    )
    if health.state is not HealthState.HEALTHY and health.message:
        detail += f"; {health.message}"
    return ServiceStatus(
        service, desired, desired if ready else 0, desired if ready else 0, state[health.state], detail
    )


def endpoints_of(body: Body) -> list[Endpoint]:
    """The service URL of its one port: https:// for HTTP and gRPC, wss://HOST/mqtt for MQTT; the
    deterministic URL when Cloud Run gave one (as the console shows it first), else `uri` (the hash URL)."""
    found = owner(body)
    urls = [str(u) for u in body.get("urls") or []]
    uri = next((u for u in urls if u.endswith(".run.app") and not u.endswith(".a.run.app")), body.get("uri"))
    container = ((body.get("template") or {}).get("containers") or [{}])[0]
    ports = container.get("ports") or []
    if not found or not uri or not ports:
        return []
    exposed = (body.get("annotations") or {}).get(PORT_ANNOTATION)
    if not exposed:  # a service without a spec port (Cloud Run's default 8080) has no endpoint
        return []
    public = body.get("ingress", "INGRESS_TRAFFIC_ALL") == "INGRESS_TRAFFIC_ALL"
    name, _, protocol = str(exposed).partition("/")
    url = endpoint_url(protocol, str(uri).removeprefix("https://").rstrip("/"), tls_front=True)
    return [Endpoint(found[1], name, protocol, url, public)]


def project_number_problem(body: Body, region: str, project_number: str | None) -> str | None:
    """Why `project_number` is wrong, judged by the deterministic URL Cloud Run returned in `urls`
    (None when it matches, or when there is no such URL to judge by)."""
    service = str(body.get("name", "")).rsplit("/", 1)[-1]
    pattern = rf"https://{re.escape(service)}-([0-9]+)\.{re.escape(region)}\.run\.app/?"
    for url in body.get("urls") or []:
        found = re.fullmatch(pattern, str(url))
        if found and project_number and found.group(1) != project_number:
            return (
                f"project_number {project_number} is not this project's: Cloud Run gave {service} the URL {url}, so "
                f"every ${{services.x.url|host}} points nowhere; set project_number: {found.group(1)}"
            )
    return None


def ready_revisions(revisions: list[Body]) -> list[str]:
    """The names of the revisions whose Ready condition succeeded (in the order given)."""
    return [
        str(r["name"]) for r in revisions
        if any(c.get("type") == "Ready" and c.get("state") == SUCCEEDED for c in r.get("conditions") or [])
    ]


def writable(body: Body) -> dict[str, Any]:
    """A body without output-only fields, fit to send back in an update."""
    return {k: v for k, v in body.items() if k not in OUTPUT_ONLY}
