"""A Cloud Run service's URLs and traffic as Cloud Run gives them: `uri` (the hash URL), `urls`
(the deterministic URL too when its name fits a DNS label), `trafficStatuses` with tag URLs."""

from __future__ import annotations

import hashlib
from typing import Any

from multicloud_gcp import limits

Json = dict[str, Any]
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"


REGION_CODES = {
    "us-central1": "uc", "us-east1": "ue", "us-east4": "uk", "us-west1": "uw", "europe-west1": "ew",
    "europe-west2": "nw", "europe-west3": "ey", "europe-west4": "ez", "europe-north1": "lz",
    "asia-east1": "de", "asia-northeast1": "an", "asia-southeast1": "as", "australia-southeast1": "ts",
}
"""The two letters a region has in hash URLs (others get two letters of their own here)."""


def service_urls(service_id: str, project: str, project_number: str, region: str) -> tuple[str, list[str]]:
    """(uri, urls) of a new service: the hash URL `https://SERVICE-HASH-RR.a.run.app` (a hash of the
    project, the region's code) always; the deterministic `https://SERVICE-NUMBER.REGION.run.app`
    first in `urls` only when `SERVICE-NUMBER` fits one DNS label (63 characters)."""
    digest = hashlib.sha256(f"{project}/{project_number}".encode()).hexdigest()
    project_hash = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:10])
    code = REGION_CODES.get(region) or "".join(chr(ord("a") + int(c, 16) % 26) for c in hashlib.sha256(
        region.encode()).hexdigest()[:2])
    uri = f"https://{service_id}-{project_hash}-{code}.a.run.app"
    label = f"{service_id}-{project_number}"
    return uri, ([f"https://{label}.{region}.run.app"] if len(label) <= limits.DNS_LABEL else []) + [uri]


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
