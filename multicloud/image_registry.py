"""The few Docker Registry HTTP API v2 calls multicloud makes (ECR, ACR, Artifact Registry and the
emulators' registries speak it): a tag's manifest digest, a repository's tags, deleting a manifest.
Registries that answer 401 with a `Bearer` challenge (ACR, Artifact Registry) get the token flow
of the distribution spec: the credentials go to the challenge's realm once, the token to the call."""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
TIMEOUT = 10.0
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def basic_auth(user: str, password: str) -> str:
    """An Authorization header value for HTTP basic auth (what ECR tokens are; what a token realm takes)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def manifest_digest(endpoint: str, name: str, reference: str, auth: str | None = None, *,
                    ca_bundle: str | None = None) -> str | None:
    """The digest (sha256:...) of NAME:REFERENCE at a registry, or None when it has none."""
    status, headers, _ = _call("HEAD", f"{endpoint}/v2/{quote(name)}/manifests/{quote(reference)}", auth, ca_bundle)
    digest = headers.get("Docker-Content-Digest", "")
    return digest if status == 200 and digest.startswith("sha256:") else None


def tags(endpoint: str, name: str, auth: str | None = None, *, ca_bundle: str | None = None) -> list[str]:
    """The tags of a repository at a registry ([] when it has none or does not exist)."""
    status, _, body = _call("GET", f"{endpoint}/v2/{quote(name)}/tags/list", auth, ca_bundle)
    if status != 200:
        return []
    return sorted(json.loads(body or b"{}").get("tags") or [])


def delete_manifest(endpoint: str, name: str, digest: str, auth: str | None = None) -> bool:
    """Delete one manifest (every tag on it); True when the registry accepted."""
    status, _, _ = _call("DELETE", f"{endpoint}/v2/{quote(name)}/manifests/{digest}", auth, None)
    return status in (200, 202)


def _call(method: str, url: str, auth: str | None, ca_bundle: str | None) -> tuple[int, dict[str, str], bytes]:
    """One request: (status, headers, body); HTTP errors are answers, not exceptions. A Bearer
    challenge to basic credentials is answered once at its realm (the distribution token flow)."""
    status, headers, body = _request(method, url, auth, ca_bundle)
    challenge = headers.get("WWW-Authenticate") or headers.get("Www-Authenticate") or ""
    if status == 401 and auth and auth.startswith("Basic ") and challenge.startswith("Bearer "):
        token = _bearer_token(dict(_CHALLENGE.findall(challenge)), auth, ca_bundle)
        if token:
            return _request(method, url, f"Bearer {token}", ca_bundle)
    return status, headers, body


def _bearer_token(params: dict[str, str], auth: str, ca_bundle: str | None) -> str | None:
    """A registry token from the challenge's realm for its service and scope, or None when refused."""
    realm = params.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        return None
    query = urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    status, _, body = _request("GET", f"{realm}?{query}", auth, ca_bundle)
    if status != 200:
        return None
    answer = json.loads(body or b"{}")
    token = answer.get("token") or answer.get("access_token")
    return str(token) if token else None


def _request(method: str, url: str, auth: str | None, ca_bundle: str | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request, verified against ca_bundle when given; HTTP errors are answers."""
    request = urllib.request.Request(url, method=method, headers={"Accept": MANIFEST_TYPES})  # noqa: S310
    if auth:
        request.add_header("Authorization", auth)
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle and url.startswith("https://") else None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:  # noqa: S310
            return int(response.status), dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers.items()), exc.read() if method != "HEAD" else b""
