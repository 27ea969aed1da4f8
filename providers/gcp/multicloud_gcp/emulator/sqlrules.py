"""What the Cloud SQL Admin API accepts, with its error shape: instance names, PostgreSQL versions,
tiers (shared-core and db-custom-CPUS-MB), disk sizes (which only grow), the defaults an
instance reads back with, and the resources it answers with (databases, users, operations)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from multicloud_gcp.emulator.faults import CODES, ApiError

Json = dict[str, Any]
BASE = "https://sqladmin.googleapis.com/v1"
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
VERSIONS = ("POSTGRES_11", "POSTGRES_12", "POSTGRES_13", "POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17")
MINOR = {"POSTGRES_15": "POSTGRES_15_10", "POSTGRES_16": "POSTGRES_16_6", "POSTGRES_17": "POSTGRES_17_2"}
SHARED_TIERS = ("db-f1-micro", "db-g1-small")
CUSTOM_TIER = re.compile(r"^db-custom-(?P<cpus>\d+)-(?P<mb>\d+)$")
REUSED_NAME = (
    "The Cloud SQL instance already exists. When you delete an instance, you can't reuse the name of the "
    "deleted instance until one week from the deletion date."
)
SETTINGS_DEFAULTS: Json = {
    "kind": "sql#settings",
    "availabilityType": "ZONAL",
    "pricingPlan": "PER_USE",
    "activationPolicy": "ALWAYS",
    "dataDiskType": "PD_SSD",
    "dataDiskSizeGb": "10",
    "storageAutoResize": True,
    "edition": "ENTERPRISE",
    "userLabels": {},
    "deletionProtectionEnabled": False,
    "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": [], "sslMode": "ALLOW_UNENCRYPTED_AND_ENCRYPTED"},
    "backupConfiguration": {"enabled": False, "kind": "sql#backupConfiguration"},
}
PATCHABLE = {
    "tier", "dataDiskSizeGb", "userLabels", "deletionProtectionEnabled", "ipConfiguration", "databaseFlags",
    "backupConfiguration", "availabilityType", "activationPolicy", "storageAutoResize", "maintenanceWindow",
}


class SqlError(ApiError):
    """A Cloud SQL Admin API error: its body also lists `errors[]` with a reason, as sqladmin's does."""

    def __init__(self, http: int, reason: str, message: str, *, status: str = "") -> None:
        by_http = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}
        super().__init__(status or by_http.get(http, "INTERNAL"), message)
        self.reason = reason
        assert CODES[self.status][0] == http, (self.status, http)

    def body(self) -> dict[str, Any]:
        """The JSON error body, with `errors[]` (domain, reason, message)."""
        found = super().body()
        found["error"]["errors"] = [{"domain": "global", "reason": self.reason, "message": self.message}]
        return found


def invalid(message: str, reason: str = "invalid") -> SqlError:
    """A 400 INVALID_ARGUMENT."""
    return SqlError(400, reason, message)


def check_name(project: str, name: str) -> None:
    """Instance ids: a lowercase letter, then lowercase letters, digits and hyphens, no hyphen
    last; with the project id at most 98 characters."""
    if not NAME.match(name) or len(project) + 1 + len(name) > 98:
        raise invalid(
            f"Invalid request: instance name ({name}) must start with a lowercase letter, contain only lowercase "
            "letters, numbers and hyphens, not end with a hyphen, and be at most 98 characters with the project id."
        )


def _version(value: Any, before: str | None = None) -> str:
    """A PostgreSQL version Cloud SQL offers, never below the current one."""
    version = str(value or "")
    if version not in VERSIONS:
        raise invalid(f"Invalid request: databaseVersion {version!r} is not served (the emulator serves PostgreSQL: "
                      f"{', '.join(VERSIONS)}).")
    if before is not None and VERSIONS.index(version) < VERSIONS.index(before):
        raise invalid(f"Invalid request: cannot downgrade from {before} to {version}.")
    return version


def _tier(value: Any) -> str:
    """db-f1-micro, db-g1-small, or db-custom-CPUS-MB (1 or an even number of CPUs up to 96;
    memory a multiple of 256 MB, 0.9 to 6.5 GB per CPU)."""
    tier = str(value or "")
    if tier in SHARED_TIERS:
        return tier
    match = CUSTOM_TIER.match(tier)
    if match:
        cpus, mb = int(match["cpus"]), int(match["mb"])
        cpus_ok = cpus == 1 or (cpus % 2 == 0 and 2 <= cpus <= 96)
        if cpus_ok and mb % 256 == 0 and 0.9 * 1024 * cpus <= mb <= 6.5 * 1024 * cpus:
            return tier
    raise invalid(f"Invalid request: Invalid tier ({tier}).", "invalidTier")


def _disk(value: Any, before: str | None = None) -> str:
    """A disk size in GB (10 to 65536), never smaller than before; int64 as a string."""
    try:
        size = int(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"Invalid request: dataDiskSizeGb {value!r} is not a number.") from exc
    if not 10 <= size <= 65536:
        raise invalid(f"Invalid request: dataDiskSizeGb {size} is out of range (10 to 65536).")
    if before is not None and size < int(before):
        raise invalid("Invalid request: the disk size cannot be decreased.", "invalidDiskSize")
    return str(size)


def new_instance(project: str, name: str, body: Json) -> Json:
    """A new instance as stored: defaults filled, read-only fields set, PENDING_CREATE."""
    region = str(body.get("region") or "us-central1")
    settings = copy.deepcopy(body.get("settings") or {})
    settings["tier"] = _tier(settings.get("tier"))
    settings["dataDiskSizeGb"] = _disk(settings.get("dataDiskSizeGb") or 10)
    merged = {**copy.deepcopy(SETTINGS_DEFAULTS), **settings, "settingsVersion": "1"}
    merged["ipConfiguration"] = {**SETTINGS_DEFAULTS["ipConfiguration"], **(settings.get("ipConfiguration") or {})}
    version = _version(body.get("databaseVersion"))
    return {
        "kind": "sql#instance",
        "name": name,
        "project": project,
        "region": region,
        "gceZone": f"{region}-b",
        "databaseVersion": version,
        "databaseInstalledVersion": MINOR.get(version, version + "_0"),
        "state": "PENDING_CREATE",
        "settings": merged,
        "connectionName": f"{project}:{region}:{name}",
        "instanceType": "CLOUD_SQL_INSTANCE",
        "backendType": "SECOND_GEN",
        "selfLink": f"{BASE}/projects/{project}/instances/{name}",
        "serviceAccountEmailAddress": f"p-emulator-{name}@gcp-sa-cloud-sql.iam.gserviceaccount.com",
        "createTime": now(),
        "ipAddresses": [],
    }


def apply_patch(instance: Json, body: Json) -> bool:
    """Apply instances.patch to an instance; True when the change restarts it (tier or version)."""
    settings = instance["settings"]
    change = body.get("settings") or {}
    unknown = set(change) - PATCHABLE - {"settingsVersion", "kind"}
    if unknown:
        raise invalid(f"Invalid request: the emulator cannot patch settings {sorted(unknown)}.")
    if "settingsVersion" in change and str(change["settingsVersion"]) != settings["settingsVersion"]:
        raise invalid("Invalid request: settingsVersion does not match the instance's (read it again).", "staleData")
    restart = False
    if "tier" in change:
        restart = _tier(change["tier"]) != settings["tier"]
        settings["tier"] = change["tier"]
    if "dataDiskSizeGb" in change:
        settings["dataDiskSizeGb"] = _disk(change["dataDiskSizeGb"], settings["dataDiskSizeGb"])
    if "ipConfiguration" in change:
        settings["ipConfiguration"] = {**settings["ipConfiguration"], **change["ipConfiguration"]}
    for key in PATCHABLE - {"tier", "dataDiskSizeGb", "ipConfiguration"}:
        if key in change:
            settings[key] = copy.deepcopy(change[key])
    if body.get("databaseVersion") and body["databaseVersion"] != instance["databaseVersion"]:
        instance["databaseVersion"] = _version(body["databaseVersion"], instance["databaseVersion"])
        version = instance["databaseVersion"]
        instance["databaseInstalledVersion"] = MINOR.get(version, version + "_0")
        restart = True
    settings["settingsVersion"] = str(int(settings["settingsVersion"]) + 1)
    return restart


def check_database_name(name: str) -> str:
    """A database name: 1 to 63 characters."""
    if not 1 <= len(name) <= 63:
        raise invalid(f"Invalid request: database name {name!r} must be 1 to 63 characters.")
    return name


def check_user_name(name: str) -> str:
    """A user name: 1 to 63 characters, not a reserved cloudsql role."""
    if not 1 <= len(name) <= 63 or name.startswith(("cloudsql", "pg_")):
        raise invalid(f"Invalid request: user name {name!r} is invalid or reserved.")
    return name


def database(project: str, instance: str, name: str, body: Json | None = None) -> Json:
    """A database's resource."""
    body = body or {}
    return {
        "kind": "sql#database",
        "name": name,
        "instance": instance,
        "project": project,
        "charset": str(body.get("charset") or "UTF8"),
        "collation": str(body.get("collation") or "en_US.UTF8"),
        "selfLink": f"{BASE}/projects/{project}/instances/{instance}/databases/{name}",
    }


def user(project: str, instance: str, name: str) -> Json:
    """A user's resource (never its password)."""
    return {"kind": "sql#user", "name": name, "instance": instance, "project": project, "type": "BUILT_IN"}


def operation(project: str, instance: str, kind: str, name: str) -> Json:
    """A RUNNING `sql#operation` of this kind (CREATE, UPDATE, CREATE_USER, ...) on an instance."""
    return {
        "kind": "sql#operation",
        "name": name,
        "status": "RUNNING",
        "operationType": kind,
        "targetId": instance,
        "targetProject": project,
        "targetLink": f"{BASE}/projects/{project}/instances/{instance}",
        "selfLink": f"{BASE}/projects/{project}/operations/{name}",
        "user": "emulator@multicloud.invalid",
        "insertTime": now(),
        "startTime": now(),
    }


def operation_error(message: str) -> Json:
    """The `error` of an operation whose work failed."""
    return {"kind": "sql#operationErrors",
            "errors": [{"kind": "sql#operationError", "code": "INTERNAL_ERROR", "message": message}]}


def now() -> str:
    """Now, as an RFC 3339 timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
