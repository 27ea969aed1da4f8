"""A Cloud Run service's traffic as Cloud Run resolves it: `trafficStatuses`, with tag URLs."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"


def tag_url(service: Json, tag: str) -> str:
    """A traffic tag's URL: `https://TAG---` before the host of the service's `uri`."""
    return f"https://{tag}---{str(service.get('uri', '')).removeprefix('https://')}"


def traffic_statuses(service: Json) -> list[Json]:
    """The service's traffic targets as served: LATEST names the latest ready revision, and a
    tagged target carries its tag's URL."""
    latest = str(service.get("latestReadyRevision", "")).rsplit("/", 1)[-1]
    statuses = []
    for target in service.get("traffic") or []:
        status = dict(target)
        if target.get("type") == LATEST:
            status["revision"] = latest
        if target.get("tag"):
            status["uri"] = tag_url(service, str(target["tag"]))
        statuses.append(status)
    return statuses
