"""`postgres` resources on Azure: each is an Azure Database for PostgreSQL flexible server in the
target's resource group (see multicloud.backing for the interface).

A server's name is global (its fqdn is `NAME.postgres.database.azure.com`), so it is the app, the
resource and a digest of subscription, resource group and target: two targets never share one.
The owning role is the server's administrator (the generated password); the database is made with
ARM's databases API; the firewall rule `AllowAllAzureServicesAndResourcesWithinAzureIps` (0.0.0.0)
lets the container groups in. Services get `sslmode=require` (the service enforces TLS). What ARM
does not return (the password's digest, the deletion setting, the database's name) is in tags.
The database and the firewall rule are made after the server, so observing reads them too: the
`setup` property is "done" when both exist, else says what is missing (an apply killed after the
server's create), which the plan shows as an in-place update that makes them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from multicloud.backing import SETUP_DONE, setup_state
from multicloud.contract import Health, HealthState
from multicloud.naming import placed_name
from multicloud.resources import Resource, Sensitive
from multicloud.spec.backing import Address, password_secret
from multicloud.spec.targets import TargetSpec
from multicloud_azure import tags
from multicloud_azure.settings import AzureSettings

KIND = "postgres"
DOMAIN = "postgres.database.azure.com"
FIREWALL_RULE = "AllowAllAzureServicesAndResourcesWithinAzureIps"
SKUS = {
    "small": ("Standard_B1ms", "Burstable"),
    "medium": ("Standard_D2ds_v5", "GeneralPurpose"),
    "large": ("Standard_D4ds_v5", "GeneralPurpose"),
}
"""Tier -> (sku, sku tier): 1 vCore/2 GiB burstable, 2 vCores/8 GiB, 4 vCores/16 GiB."""
STORAGE_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767)
RESOURCE_TAG = "multicloud-resource"
DATABASE_TAG = "multicloud-database"
DELETION_TAG = "multicloud-deletion"
PASSWORD_TAG = "multicloud-password"  # noqa: S105 - a tag's name; it holds a digest
REPLACE_ON = frozenset({"server", "user"})
"""A server's name and administrator cannot change: anything else is a PATCH (storage grows,
version goes up in place, sku and password change)."""
READY, STARTING = "Ready", ("Provisioning", "Updating", "Starting", "Restarting")
BUSY = (*STARTING, "Stopping")
"""States in which ARM refuses a write to the server or its children (409 ServerBusy)."""


def server_name(settings: AzureSettings, spec: TargetSpec, name: str) -> str:
    """The server's global name: app and resource, then a digest of where it lives (3-63
    lowercase letters, digits and hyphens)."""
    where = f"{settings.subscription_id}/{settings.resource_group.lower()}/{spec.target}/{spec.app}/{name}"
    return placed_name(f"{spec.app}-{name}", where, limit=63)


def address(settings: AzureSettings, spec: TargetSpec, name: str) -> Address:
    """Services reach a server at its fqdn on 5432, over TLS."""
    return Address(f"{server_name(settings, spec, name)}.{DOMAIN}", 5432, {"sslmode": "require"})


def storage_gb(size: int) -> int:
    """The smallest storage size the service sells that holds `size` bytes."""
    wanted = math.ceil(size / 1024**3)
    return next((gb for gb in STORAGE_GB if gb >= wanted), STORAGE_GB[-1])


def resources(spec: TargetSpec, settings: AzureSettings, secrets: Mapping[str, str]) -> list[Resource]:
    """One `postgres/NAME` per database: its server's settings, the password as a Sensitive."""
    found = []
    for name, db in spec.resources.items():
        sku, tier = SKUS[db.tier]
        password = secrets.get(password_secret(name), "")
        props: dict[str, Any] = {
            "server": server_name(settings, spec, name),
            "version": db.version,
            "sku": sku,
            "sku_tier": tier,
            "storage_gb": storage_gb(db.storage),
            "database": db.database_name(name),
            "user": db.user_name(name),
            "deletion": db.deletion,
            "password": Sensitive.of(password, app=spec.app),
            "setup": SETUP_DONE,
        }
        found.append(Resource(KIND, name, props, replace_on=REPLACE_ON, persistent=db.persistent,
                              update_effect="the server restarts when its sku or version changes"))
    return found


def server_body(resource: Resource, settings: AzureSettings, app: str, target: str) -> dict[str, Any]:
    """The PUT body of a resource's server (the password in clear: for ARM only)."""
    props = resource.properties
    password: Sensitive = props["password"]
    server_tags = {
        tags.APP: app,
        tags.TARGET: target,
        RESOURCE_TAG: resource.name,
        DATABASE_TAG: props["database"],
        DELETION_TAG: props["deletion"],
        PASSWORD_TAG: tags.encode_digest(password),
    }
    return {
        "location": settings.location,
        "tags": server_tags,
        "sku": {"name": props["sku"], "tier": props["sku_tier"]},
        "properties": {
            "administratorLogin": props["user"],
            "administratorLoginPassword": password.value,
            "version": props["version"],
            "storage": {"storageSizeGB": props["storage_gb"]},
            "network": {"publicNetworkAccess": "Enabled"},
            "createMode": "Create",
        },
    }


def patch_body(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any] | None:
    """The PATCH of an existing server toward a PUT body: what may change in place (the password
    only when its digest differs from the server's tag); None when nothing of the server differs
    (a PATCH is an operation of 20 s or more on Azure, so none is sent then)."""
    props = dict(body["properties"])
    now = current.get("properties") or {}
    current_tags = current.get("tags") or {}
    if (current.get("sku") == body["sku"] and str(now.get("version")) == str(props["version"])
            and (now.get("storage") or {}).get("storageSizeGB") == props["storage"]["storageSizeGB"]
            and all(current_tags.get(key) == value for key, value in body["tags"].items())):
        return None
    patch: dict[str, Any] = {"sku": body["sku"], "tags": body["tags"], "properties": {
        "storage": props["storage"], "version": props["version"],
    }}
    if current_tags.get(PASSWORD_TAG) != body["tags"][PASSWORD_TAG]:
        patch["properties"]["administratorLoginPassword"] = props["administratorLoginPassword"]
    return patch


def state(server: Mapping[str, Any]) -> str:
    """The server's state as ARM reports it (Ready, Provisioning, Updating, Stopped, ...)."""
    return str((server.get("properties") or {}).get("state"))


def busy(server: Mapping[str, Any]) -> bool:
    """True while the server is provisioning or changing: ARM refuses its children's writes then."""
    return state(server) in BUSY


def setup(server: Mapping[str, Any], databases: Collection[str] | None, rules: Collection[str] | None) -> str:
    """SETUP_DONE when the server has the database its tag names and the Azure-services firewall rule,
    else what it lacks; without the lists (a busy server's children are not read), that it is pending."""
    if databases is None or rules is None:
        return f"pending: server is {state(server).lower()}; its database and firewall rule are not checked yet"
    database = str((server.get("tags") or {}).get(DATABASE_TAG, ""))
    missing = [f"database {database!r}"] if database not in databases else []
    missing += [f"firewall rule {FIREWALL_RULE}"] if FIREWALL_RULE not in rules else []
    return setup_state(missing)


def stands(server: Mapping[str, Any]) -> bool:
    """True when the server stands for a `postgres` resource: tagged by multicloud and not being dropped."""
    return bool((server.get("tags") or {}).get(RESOURCE_TAG)) and state(server) != "Dropping"


def observed(server: Mapping[str, Any], setup_now: str) -> Resource:
    """The resource a server that `stands` for one is, with its `setup` as observed."""
    server_tags = server.get("tags") or {}
    props = server["properties"]
    deletion = str(server_tags.get(DELETION_TAG, "keep"))
    values: dict[str, Any] = {
        "server": server["name"],
        "version": str(props.get("version")),
        "sku": server["sku"]["name"],
        "sku_tier": server["sku"]["tier"],
        "storage_gb": int((props.get("storage") or {}).get("storageSizeGB") or 0),
        "database": str(server_tags.get(DATABASE_TAG, "")),
        "user": str(props.get("administratorLogin")),
        "deletion": deletion,
        "password": tags.decode_digest(str(server_tags.get(PASSWORD_TAG, ""))),
        "setup": setup_now,
    }
    return Resource(KIND, str(server_tags[RESOURCE_TAG]), values, replace_on=REPLACE_ON, persistent=deletion == "keep",
                    target=str(server_tags.get(tags.TARGET, "")), healthy=state(server) == READY)


def health(server: Mapping[str, Any] | None) -> Health:
    """Healthy once the server is Ready; starting while it provisions or changes."""
    if server is None:
        return Health(HealthState.STARTING, "the server does not exist (yet)")
    now = state(server)
    if now == READY:
        return Health(HealthState.HEALTHY)
    if now in STARTING:
        return Health(HealthState.STARTING, f"server {server['name']} is {now.lower()}")
    return Health(HealthState.UNHEALTHY, f"server {server['name']} is {now}: az postgres flexible-server start")
