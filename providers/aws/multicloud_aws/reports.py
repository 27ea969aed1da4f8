"""Read-only reports of an app on ECS: status per service, CloudWatch logs, endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from multicloud.addressing import endpoint_url
from multicloud.contract import Endpoint, LogLine, ServiceStatus
from multicloud.errors import NotFoundError
from multicloud.logwindow import last as window_last
from multicloud_aws import names
from multicloud_aws.clients import guard
from multicloud_aws.context import Context, chunks
from multicloud_aws.desired import namespace_name
from multicloud_aws.observe import Seen, cluster_of

FOLLOW_INTERVAL = 2.0


def status(ctx: Context, app: str, seen: Seen) -> list[ServiceStatus]:
    """Desired, running and healthy task counts per service, with the rollout state and the
    latest event."""
    found: list[ServiceStatus] = []
    arns = sorted(seen.services)
    for batch in chunks(arns, 10):
        cluster = cluster_of(batch[0], ctx, app)
        with guard("describing ECS services"):
            described = ctx.client("ecs").describe_services(cluster=cluster, services=batch)["services"]
        for service in described:
            if service.get("status") != "ACTIVE":
                continue
            found.append(_status(service))
    return sorted(found, key=lambda s: s.service)


def _status(service: dict[str, Any]) -> ServiceStatus:
    desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
    deployments = service.get("deployments", [])
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    rollout = str(primary.get("rolloutState", "COMPLETED"))
    if rollout == "FAILED":
        state = "failed"
    elif desired == 0:
        state = "stopped"
    elif len(deployments) > 1 or rollout == "IN_PROGRESS" or running < desired:
        state = "deploying"
    else:
        state = "running"
    parts = [f"{len(deployments)} deployment(s)", f"rollout {rollout.lower()}"]
    events = service.get("events") or []
    if events:
        parts.append(f"last event: {events[0].get('message', '')}")
    return ServiceStatus(str(service["serviceName"]), desired, running, running if rollout != "FAILED" else 0,
                         state, "; ".join(parts))


def endpoints(ctx: Context, app: str, seen: Seen) -> list[Endpoint]:
    """Public ports at the NLB's DNS name (with the first address it reports in its zones: a static
    IP, or the emulator's loopback address), internal ones at SERVICE.NAMESPACE."""
    dns = address = ""
    lb = seen.resources.get(f"load-balancer/{app}")
    if lb is not None:
        with guard("describing the load balancer"):
            found = ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=[seen.arns[lb.key]])
        dns = str(found["LoadBalancers"][0]["DNSName"])
        address = next((str(a["IpAddress"]) for z in found["LoadBalancers"][0].get("AvailabilityZones") or []
                        for a in z.get("LoadBalancerAddresses") or [] if a.get("IpAddress")), "")
    ns_resource = seen.resources.get(f"namespace/{app}")
    ns = str(ns_resource.properties["name"]) if ns_resource else namespace_name(app, ctx.settings)
    result: list[Endpoint] = []
    for resource in sorted(seen.resources.values(), key=lambda r: r.key):
        if resource.kind != "service" or not resource.properties.get("task"):
            continue
        public = {b["port"] for b in resource.properties.get("load_balancers", [])}
        for port in resource.properties["task"].get("ports", []):
            protocol = str(port["protocol"])
            is_public = port["port"] in public and bool(dns)
            host = dns if is_public else f"{resource.name}.{ns}"
            url = endpoint_url(protocol, host, port["port"])
            result.append(Endpoint(resource.name, str(port["name"]), protocol, url, is_public,
                                   address if is_public else ""))
    return result


def logs(
    ctx: Context, app: str, service: str | None, *, follow: bool, tail: int | None, since: datetime | None = None
) -> Iterator[LogLine]:
    """Lines from the app's log group (streams SERVICE/SERVICE/TASK), oldest first: those from `since`
    (CloudWatch's startTime), the last `tail` of them; with follow, poll for new lines until the caller
    stops iterating."""
    client = ctx.client("logs")
    group = names.log_group(app)
    kwargs: dict[str, Any] = {"logGroupName": group}
    if service:
        kwargs["logStreamNamePrefix"] = f"{service}/"
    if since is not None:
        kwargs["startTime"] = max(0, int(since.timestamp() * 1000))
    seen_ids: set[str] = set()
    prefix = kwargs.get("logStreamNamePrefix", "")
    events = [e for e in _events(client, kwargs) if str(e.get("logStreamName", "")).startswith(prefix)]
    last = int(kwargs.get("startTime", 0))
    for event in events:  # what is not shown of the history is not shown by follow either
        seen_ids.add(event["eventId"])
        last = max(last, int(event["timestamp"]))
    for event in window_last(events, tail):
        yield _line(event)
    while follow:
        time.sleep(FOLLOW_INTERVAL)
        for event in _events(client, {**kwargs, "startTime": last}):
            if event["eventId"] in seen_ids or not str(event.get("logStreamName", "")).startswith(prefix):
                continue
            seen_ids.add(event["eventId"])
            last = max(last, int(event["timestamp"]))
            yield _line(event)


def _events(client: Any, kwargs: dict[str, Any], pages: int = 20) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    try:
        with guard(f"reading logs of {kwargs['logGroupName']}"):
            for _ in range(pages):
                page = client.filter_log_events(**kwargs, **({"nextToken": token} if token else {}))
                events.extend(page.get("events", []))
                token = page.get("nextToken")
                if not token:
                    break
    except NotFoundError:
        return []
    return sorted(events, key=lambda e: (e["timestamp"], e["eventId"]))


def _line(event: dict[str, Any]) -> LogLine:
    stream = str(event.get("logStreamName", ""))
    parts = stream.split("/")
    service = parts[0] if parts else ""
    instance = f"{service}-{parts[-1][:8]}" if len(parts) > 2 else stream
    stamp = datetime.fromtimestamp(int(event["timestamp"]) / 1000, tz=UTC)
    return LogLine(service, instance, str(event.get("message", "")).rstrip("\n"), stamp)
