"""The checks Azure Database for PostgreSQL flexible server makes on a request, with ARM's errors:
names, administrator login and password, sku and tier, storage sizes (which only grow), major
versions (which only go up), databases and firewall rules."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from multicloud_azure.emulator.arm import location_name
from multicloud_azure.emulator.validation import ArmError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
CHILD_NAME = re.compile(r"^[-\w.]{1,63}$")
LOGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_LOGINS = {"azure_superuser", "azure_pg_admin", "admin", "administrator", "root", "guest", "public"}
VERSIONS = ("11", "12", "13", "14", "15", "16", "17", "18")
MINOR_VERSIONS = {"11": "22", "12": "22", "13": "18", "14": "15", "15": "10", "16": "6", "17": "2", "18": "0"}
STORAGE_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767)
STORAGE_TIERS = {32: "P4", 64: "P6", 128: "P10", 256: "P15", 512: "P20", 1024: "P30", 2048: "P40", 4096: "P50"}
SKU_PREFIX = {"Burstable": "Standard_B", "GeneralPurpose": "Standard_D", "MemoryOptimized": "Standard_E"}
SYSTEM_DB = {"charset": "UTF8", "collation": "en_US.utf8"}
DEFAULTS: dict[str, Any] = {
    "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
    "network": {"publicNetworkAccess": "Enabled"},
    "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
    "authConfig": {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
    "dataEncryption": {"type": "SystemManaged"},
    "maintenanceWindow": {"customWindow": "Disabled", "dayOfWeek": 0, "startHour": 0, "startMinute": 0},
    "availabilityZone": "1",
}


def bad(code: str, message: str) -> ArmError:
    """A 400 with an ARM error code."""
    return ArmError(400, code, message)


def validate_name(name: str) -> None:
    """Server names: 3-63 lowercase letters, digits and hyphens, no hyphen first or last."""
    if not NAME.match(name):
        raise bad(
            "InvalidServerName",
            f"Server name '{name}' is invalid: it must be 3 to 63 characters of lowercase letters, numbers "
            "and hyphens, and cannot start or end with a hyphen.",
        )


def validate_create(name: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """A new server's body as stored (defaults filled, password apart) and its password."""
    stored = copy.deepcopy(dict(body))
    if not stored.get("location"):
        raise bad("LocationRequired", "The location property is required for this definition.")
    stored["location"] = location_name(str(stored["location"]))
    props = stored.setdefault("properties", {})
    mode = str(props.pop("createMode", "Default") or "Default")
    if mode not in ("Default", "Create"):
        raise bad("UnsupportedCreateMode", f"The emulator creates servers only (createMode '{mode}').")
    login = str(props.get("administratorLogin") or "")
    if not LOGIN.match(login) or login.lower() in RESERVED_LOGINS or login.lower().startswith("pg_"):
        raise bad(
            "InvalidAdministratorLogin",
            f"The administrator login '{login}' is invalid: it must start with a letter, hold letters, digits and "
            "underscores, and be none of azure_superuser, azure_pg_admin, admin, administrator, root, guest, "
            "public, nor start with pg_.",
        )
    password = _password(props.pop("administratorLoginPassword", None), login)
    props["version"] = _version(props.get("version") or "16", None)
    _sku(stored)
    props["storage"] = _storage(props.get("storage") or {}, None)
    for key, value in DEFAULTS.items():
        props[key] = {**value, **props[key]} if isinstance(value, dict) and key in props else props.get(key, value)
    stored.setdefault("tags", {})
    return stored, password


def merge_put(before: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A PUT on an existing server: an update of what may change, refusing what may not."""
    props = dict(body.get("properties") or {})
    login = props.get("administratorLogin")
    if login is not None and login != before["properties"]["administratorLogin"]:
        raise bad("AdministratorLoginCannotBeChanged", "The administrator login of a server cannot be changed.")
    if body.get("location") and location_name(str(body["location"])) != before["location"]:
        raise bad("LocationCannotBeChanged", "The location of a server cannot be changed.")
    return merge_patch(before, {**body, "properties": {k: v for k, v in props.items() if k != "administratorLogin"}})


def merge_patch(before: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The server after a PATCH (sku, storage, version, password, backup, network, tags) and the
    new password, if any."""
    after = copy.deepcopy(dict(before))
    props = dict(body.get("properties") or {})
    password = None
    if "administratorLoginPassword" in props:
        password = _password(props.pop("administratorLoginPassword"), after["properties"]["administratorLogin"])
    props.pop("createMode", None)
    if "version" in props:
        after["properties"]["version"] = _version(props.pop("version"), str(before["properties"]["version"]))
    if "storage" in props:
        after["properties"]["storage"] = _storage(props.pop("storage") or {}, before["properties"]["storage"])
    for key in ("backup", "network", "highAvailability", "maintenanceWindow", "authConfig"):
        if key in props:
            after["properties"][key] = {**after["properties"].get(key, {}), **(props.pop(key) or {})}
    if body.get("sku"):
        after["sku"] = dict(body["sku"])
        _sku(after)
    if body.get("tags") is not None:
        after["tags"] = dict(body["tags"])
    return after, password


def _password(value: Any, login: str) -> str:
    """An administrator password as the service accepts it: 8-128 characters of three of the four
    kinds (upper, lower, digits, symbols), not containing the login."""
    text = str(value or "")
    kinds = sum(bool(re.search(p, text)) for p in (r"[A-Z]", r"[a-z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if not 8 <= len(text) <= 128 or kinds < 3 or (login and login.lower() in text.lower()):
        raise bad(
            "PasswordNotComplex",
            "The password must be 8 to 128 characters long, hold characters of three of these kinds: "
            "uppercase letters, lowercase letters, numbers and non-alphanumeric characters, and not contain "
            "the login name.",
        )
    return text


def _version(value: Any, before: str | None) -> str:
    """A major version the service offers, never below the current one."""
    version = str(value)
    if version not in VERSIONS:
        supported = ", ".join(VERSIONS)
        raise bad("InvalidServerVersion", f"The version '{version}' is not supported (supported: {supported}).")
    if before is not None and int(version) < int(before):
        raise bad("MajorVersionDowngradeNotAllowed", f"Cannot downgrade a server from version {before} to {version}.")
    return version


def _sku(body: dict[str, Any]) -> None:
    """A sku whose name fits its tier (Standard_B*: Burstable, Standard_D*: GeneralPurpose,
    Standard_E*: MemoryOptimized)."""
    sku = body.get("sku") or {}
    tier, name = str(sku.get("tier", "")), str(sku.get("name", ""))
    if tier not in SKU_PREFIX:
        raise bad("InvalidSkuTier", f"The sku tier '{tier}' is invalid (Burstable, GeneralPurpose, MemoryOptimized).")
    if not name.startswith(SKU_PREFIX[tier]):
        raise bad("InvalidSkuName", f"The sku '{name}' is not available in the {tier} tier.")
    body["sku"] = {"name": name, "tier": tier}


def _storage(value: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """Storage in one of the offered sizes, never smaller than before."""
    size = int(value.get("storageSizeGB") or (before or {}).get("storageSizeGB") or 32)
    if size not in STORAGE_SIZES:
        offered = ", ".join(map(str, STORAGE_SIZES))
        raise bad("InvalidStorageSize", f"The storage size {size} GB is not offered ({offered}).")
    if before is not None and size < int(before["storageSizeGB"]):
        raise bad("StorageSizeCannotBeDecreased", "Decreasing the storage size of a server is not supported.")
    tier = STORAGE_TIERS.get(size, "P60")
    return {"autoGrow": "Disabled", "type": "", **(before or {}), **dict(value), "storageSizeGB": size, "tier": tier}


def validate_database(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A database's properties (charset, collation) as stored."""
    if not CHILD_NAME.match(name):
        raise bad("InvalidDatabaseName", f"The database name '{name}' is invalid.")
    props = dict(body.get("properties") or {})
    return {"charset": str(props.get("charset") or "UTF8"), "collation": str(props.get("collation") or "en_US.utf8")}


def validate_rule(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A firewall rule's IPv4 range, start not after end."""
    if not re.match(r"^[-\w.]{1,128}$", name):
        raise bad("InvalidFirewallRuleName", f"The firewall rule name '{name}' is invalid.")
    props = dict(body.get("properties") or {})
    try:
        start = ipaddress.IPv4Address(str(props.get("startIpAddress")))
        end = ipaddress.IPv4Address(str(props.get("endIpAddress")))
    except ValueError as exc:
        raise bad("InvalidParameterValue", f"Invalid firewall rule IP address: {exc}") from exc
    if start > end:
        raise bad("FirewallRuleInvalidRange", "The start IP address must not be greater than the end IP address.")
    return {"startIpAddress": str(start), "endIpAddress": str(end)}
