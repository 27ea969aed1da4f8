"""The few Docker Registry HTTP API v2 calls multicloud makes (ECR and the emulator's
registry speak it): a tag's manifest digest, a repository's tags, deleting a manifest."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import quote

MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
TIMEOUT = 10.0


def basic_auth(user: str, password: str) -> str:
    """An Authorization header value for HTTP basic auth (what ECR tokens are)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def manifest_digest(endpoint: str, name: str, reference: str, auth: str | None = None) -> str | None:
    """The digest (sha256:...) of NAME:REFERENCE at a registry, or None when it has none."""
    status, headers, _ = _call("HEAD", f"{endpoint}/v2/{quote(name)}/manifests/{quote(reference)}", auth)
    digest = headers.get("Docker-Content-Digest", "")
    return digest if status == 200 and digest.startswith("sha256:") else None


def tags(endpoint: str, name: str, auth: str | None = None) -> list[str]:
    """The tags of a repository at a registry ([] when it has none or does not exist)."""
    status, _, body = _call("GET", f"{endpoint}/v2/{quote(name)}/tags/list", auth)
    if status != 200:
        return []
    return sorted(json.loads(body or b"{}").get("tags") or [])


def delete_manifest(endpoint: str, name: str, digest: str, auth: str | None = None) -> bool:
    """Delete one manifest (every tag on it); True when the registry accepted."""
    status, _, _ = _call("DELETE", f"{endpoint}/v2/{quote(name)}/manifests/{digest}", auth)
    return status in (200, 202)


def _call(method: str, url: str, auth: str | None) -> tuple[int, dict[str, str], bytes]:
    """One request: (status, headers, body); HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, headers={"Accept": MANIFEST_TYPES})  # noqa: S310
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return int(response.status), dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers.items()), b""
