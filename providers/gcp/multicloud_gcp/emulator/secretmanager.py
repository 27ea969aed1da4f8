"""The emulated Secret Manager (API v1): secrets and their versions, as the Cloud Run emulator's
revisions read them (`secretKeyRef`, secret volumes) and as clients write them.

Names come back with the project number (`projects/NUMBER/secrets/ID`), whichever project ID
the request named; secrets are one namespace per emulator. CreateSecret needs a valid secret ID
and a replication policy; UpdateSecret changes what its update mask names (labels, annotations);
AddSecretVersion checks `dataCrc32c` when sent; `versions/latest` is
the newest enabled version; list filters take `labels.KEY=VALUE` terms (AND). Values are bytes
on the wire (base64 in JSON) and never logged.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

from multicloud_gcp.checksum import crc32c
from multicloud_gcp.emulator.faults import ApiError
from multicloud_gcp.emulator.shapes import now

Json = dict[str, Any]
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
FILTER_TERM = re.compile(r"^labels\.([a-z][a-z0-9_-]{0,62})[=:](\S*)$")
MAX_PAYLOAD = 64 * 1024
SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


class SecretManager:
    """Secrets by ID, each with its versions (payload bytes kept apart from the JSON bodies)."""

    def __init__(self, project_number: str) -> None:
        self.project_number = project_number
        self._secrets: dict[str, Json] = {}
        self._versions: dict[str, list[tuple[Json, bytes]]] = {}
        self._lock = threading.RLock()
        self.values = LatestValues(self)
        """Secret ID -> the latest enabled version's value, as text (what revisions resolve)."""

    def _id(self, name: str, *, parent: bool = False) -> str:
        """The secret ID in `projects/P/secrets/ID[/...]`; NOT_FOUND when the name is not one."""
        match = re.fullmatch(r"projects/[^/]+/secrets/([^/]+)(/versions/[^/]+)?", name)
        if match is None:
            raise ApiError("INVALID_ARGUMENT", f"Invalid resource name [{name}].")
        found = match.group(1)
        if found not in self._secrets:
            full = f"projects/{self.project_number}/secrets/{found}"
            raise ApiError("NOT_FOUND", f"Secret [{full}] not found or has no versions.")
        return found

    def create_secret(self, parent: str, secret_id: str, body: Json) -> Json:
        """Create a secret without versions; INVALID_ARGUMENT or ALREADY_EXISTS as Secret Manager."""
        if not re.fullmatch(r"projects/[^/]+", parent):
            raise ApiError("INVALID_ARGUMENT", f"Invalid resource name [{parent}].")
        if not SECRET_ID.match(secret_id):
            raise ApiError("INVALID_ARGUMENT", "Secret ID must be 1-255 characters: letters, digits, _ and -.",
                           (("secret_id", "invalid"),))
        if not body.get("replication"):
            raise ApiError("INVALID_ARGUMENT", "Secret.replication is required.", (("secret.replication", "required"),))
        labels = body.get("labels") or {}
        bad = [k for k, v in labels.items() if not LABEL_KEY.match(k) or not LABEL_VALUE.match(str(v))]
        if bad or len(labels) > 64:
            raise ApiError("INVALID_ARGUMENT", f"Invalid labels: {', '.join(bad) or 'more than 64'}.",
                           (("secret.labels", "lowercase letters, digits, _ and -; at most 64"),))
        with self._lock:
            name = f"projects/{self.project_number}/secrets/{secret_id}"
            if secret_id in self._secrets:
                raise ApiError("ALREADY_EXISTS", f"Secret [{name}] already exists.")
            secret = {
                "name": name,
                "replication": copy.deepcopy(body["replication"]),
                "createTime": now(),
                "labels": dict(labels),
                "annotations": dict(body.get("annotations") or {}),
                "etag": '"1"',
            }
            self._secrets[secret_id] = secret
            self._versions[secret_id] = []
            return copy.deepcopy(secret)

    def get_secret(self, name: str) -> Json:
        """One secret (its metadata, no value)."""
        with self._lock:
            return copy.deepcopy(self._secrets[self._id(name)])

    def list_secrets(self, parent: str, filter_text: str = "", page_size: int = 0, token: str = "") -> Json:
        """One page of the secrets whose labels match every `labels.KEY=VALUE` term of the filter."""
        terms = [t for t in re.split(r"\s+(?:AND\s+)?", filter_text.strip()) if t and t != "AND"]
        wanted = []
        for term in terms:
            match = FILTER_TERM.match(term)
            if match is None:
                raise ApiError("INVALID_ARGUMENT",
                               f"Invalid filter: {filter_text!r} (the emulator takes labels.KEY=VALUE)")
            wanted.append((match.group(1), match.group(2).strip('"')))
        with self._lock:
            found = [s for _, s in sorted(self._secrets.items())
                     if all((s.get("labels") or {}).get(k) == v for k, v in wanted)]
        size = page_size if 0 < page_size <= 25000 else 25000
        start = int(token) if token.isdigit() else 0
        page: Json = {"secrets": copy.deepcopy(found[start : start + size]), "totalSize": len(found)}
        if start + size < len(found):
            page["nextPageToken"] = str(start + size)
        return page

    def update_secret(self, body: Json, mask: str) -> Json:
        """Replace the fields the update mask names (labels, annotations); INVALID_ARGUMENT without one."""
        paths = [p.strip() for p in mask.split(",") if p.strip()]
        if not paths or any(p not in ("labels", "annotations") for p in paths):
            raise ApiError("INVALID_ARGUMENT", f"update_mask must name labels and/or annotations (got {mask!r}).",
                           (("update_mask", "invalid"),))
        with self._lock:
            secret = self._secrets[self._id(str(body.get("name", "")))]
            for path in paths:
                secret[path] = dict(body.get(path) or {})
            secret["etag"] = f'"{int(secret["etag"].strip(chr(34))) + 1}"'
            return copy.deepcopy(secret)

    def delete_secret(self, name: str, etag: str = "") -> Json:
        """Delete a secret and every version; ABORTED when a given etag is stale."""
        with self._lock:
            secret_id = self._id(name)
            if etag and etag != self._secrets[secret_id]["etag"]:
                raise ApiError("ABORTED", f"The etag {etag} does not match the secret's.")
            del self._secrets[secret_id]
            del self._versions[secret_id]
        return {}

    def add_version(self, parent: str, payload: Json) -> Json:
        """Add a version holding `payload.data` (base64); INVALID_ARGUMENT for a checksum mismatch."""
        try:
            data = base64.b64decode(str(payload.get("data") or ""), validate=True)
        except ValueError as exc:
            raise ApiError("INVALID_ARGUMENT", "payload.data is not base64") from exc
        if len(data) > MAX_PAYLOAD:
            raise ApiError("INVALID_ARGUMENT", "Secret payload cannot exceed 65536 bytes.")
        sent = payload.get("dataCrc32c")
        if sent is not None and int(sent) != crc32c(data):
            raise ApiError("INVALID_ARGUMENT", "Checksum mismatch: the payload was corrupted in transit.")
        with self._lock:
            secret_id = self._id(parent)
            versions = self._versions[secret_id]
            version = {
                "name": f"projects/{self.project_number}/secrets/{secret_id}/versions/{len(versions) + 1}",
                "createTime": now(),
                "state": "ENABLED",
                "etag": '"1"',
                "clientSpecifiedPayloadChecksum": sent is not None,
            }
            versions.append((version, data))
            return copy.deepcopy(version)

    def _version(self, name: str) -> tuple[Json, bytes]:
        """A version by number or `latest` (the newest enabled); NOT_FOUND when there is none."""
        secret_id = self._id(name)
        wanted = name.rsplit("/", 1)[-1] if "/versions/" in name else "latest"
        versions = self._versions[secret_id]
        if wanted == "latest":
            enabled = [v for v in versions if v[0]["state"] == "ENABLED"]
            if enabled:
                return enabled[-1]
        elif wanted.isdigit() and 0 < int(wanted) <= len(versions):
            found = versions[int(wanted) - 1]
            if found[0]["state"] != "ENABLED":
                state = found[0]["state"]
                raise ApiError("FAILED_PRECONDITION", f"Secret Version [{found[0]['name']}] is in {state} state.")
            return found
        raise ApiError("NOT_FOUND", f"Secret Version [{name}] not found.")

    def access(self, name: str) -> Json:
        """A version's payload: {name, payload: {data (base64), dataCrc32c}}."""
        with self._lock:
            version, data = self._version(name)
        encoded = base64.b64encode(data).decode()
        return {"name": version["name"], "payload": {"data": encoded, "dataCrc32c": str(crc32c(data))}}

    def latest(self, secret_id: str) -> str | None:
        """The latest enabled value of a secret as text (None when it has none)."""
        with self._lock:
            versions = [d for v, d in self._versions.get(secret_id, []) if v["state"] == "ENABLED"]
        return versions[-1].decode("utf-8", "replace") if versions else None

    def ids(self) -> list[str]:
        """Every secret ID."""
        with self._lock:
            return list(self._secrets)

    def put(self, secret_id: str, value: str) -> None:
        """Add a version with this value, creating the secret when missing (the test control API)."""
        with self._lock:
            if secret_id not in self._secrets:
                self.create_secret("projects/emulator", secret_id, {"replication": {"automatic": {}}})
            name = f"projects/{self.project_number}/secrets/{secret_id}"
            self.add_version(name, {"data": base64.b64encode(value.encode()).decode()})


class LatestValues(MutableMapping[str, str]):
    """Secret ID -> latest value: setting one adds a version (creating the secret), deleting one
    deletes the secret."""

    def __init__(self, manager: SecretManager) -> None:
        self._manager = manager

    def __getitem__(self, key: str) -> str:
        value = self._manager.latest(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        self._manager.put(key, value)

    def __delitem__(self, key: str) -> None:
        try:
            self._manager.delete_secret(f"projects/emulator/secrets/{key}")
        except ApiError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter([k for k in self._manager.ids() if self._manager.latest(k) is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))


def handlers(manager: SecretManager, request: Json) -> dict[str, tuple[str, Any]]:
    """method -> (resource, call) for the Secret Manager methods the emulator serves."""
    name, parent = str(request.get("name", "")), str(request.get("parent", ""))
    size, token = int(request.get("pageSize") or 0), str(request.get("pageToken") or "")
    return {
        "CreateSecret": (parent, lambda: manager.create_secret(parent, str(request.get("secretId", "")),
                                                               request.get("secret") or {})),
        "GetSecret": (name, lambda: manager.get_secret(name)),
        "ListSecrets": (parent, lambda: manager.list_secrets(parent, str(request.get("filter", "")), size, token)),
        "UpdateSecret": (str((request.get("secret") or {}).get("name", "")), lambda: manager.update_secret(
            request.get("secret") or {}, str(request.get("updateMask", "")))),
        "DeleteSecret": (name, lambda: manager.delete_secret(name, str(request.get("etag", "")))),
        "AddSecretVersion": (parent, lambda: manager.add_version(parent, request.get("payload") or {})),
        "AccessSecretVersion": (name, lambda: manager.access(name)),
    }
