"""`postgres` resources on Google Cloud: each is a Cloud SQL for PostgreSQL instance in the target's
project and region (see multicloud.backing for the interface).

Services reach it the way Cloud Run is made for: a `cloud_sql_instance` volume at /cloudsql, where
Cloud Run's connector puts the instance's socket (`/cloudsql/PROJECT:REGION:INSTANCE`), so the
instance needs no authorized network. Its name is the app, the resource and a digest of project,
region and target. The owning role is a Cloud SQL user with the generated password; the database is
made with the databases API. A kept database (deletion: keep) has Cloud SQL's deletion protection on,
which `destroy --volumes` turns off first. What the API does not return (the password's digest, the
deletion setting, the database and user) is in the instance's user labels.

Those labels are written at create, before the database and the user are made, so what exists is read
too: observe lists each instance's databases and users (two calls per instance) and reports `setup`,
"done" as desired, or what is missing ("missing database 'iot', user 'iot'"), or "pending" while the
instance is not RUNNABLE; the plan then updates it in place and apply makes what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from multicloud import backing
from multicloud.contract import Health, HealthState
from multicloud.errors import RetryableError, UserError
from multicloud.naming import placed_name
from multicloud.planner import Action, Change
from multicloud.resources import Resource, Sensitive
from multicloud.spec.backing import Address, password_secret
from multicloud.spec.targets import TargetSpec
from multicloud_gcp.mapping import APP_LABEL, TARGET_LABEL
from multicloud_gcp.settings import GcpSettings

if TYPE_CHECKING:
    from multicloud_gcp.sqladmin import SqlAdmin

KIND = "postgres"
SOCKETS = "/cloudsql"
VOLUME = "cloudsql"
TIERS = {"small": "db-g1-small", "medium": "db-custom-2-8192", "large": "db-custom-4-16384"}
"""Tier -> machine: shared core with 1.7 GB, 2 vCPUs with 8 GB, 4 vCPUs with 16 GB."""
RESOURCE_LABEL, DELETION_LABEL = "multicloud-resource", "multicloud-deletion"
DATABASE_LABEL, USER_LABEL = "multicloud-database", "multicloud-user"
PASSWORD_LABELS = ("multicloud-password-1", "multicloud-password-2")
"""The password's digest (64 hex digits) in two labels: a label value holds at most 63 characters."""
REPLACE_ON = frozenset({"instance"})
PASSING_STATES = frozenset({"PENDING_CREATE", "MAINTENANCE", "ONLINE_MAINTENANCE", "REPAIRING"})
"""States an instance leaves by itself (being made, maintained or repaired)."""
NOT_READY = ("not in an appropriate state", "already in progress")
"""What Cloud SQL says when an instance's databases or users cannot be listed yet."""
MIN_DISK_GB = 10


def instance_name(settings: GcpSettings, spec: TargetSpec, name: str) -> str:
    """The instance's ID: app and resource, then a digest of where it lives (a letter first;
    lowercase letters, digits and hyphens)."""
    where = f"{settings.project}/{settings.region}/{spec.target}/{spec.app}/{name}"
    return placed_name(f"{spec.app}-{name}", where, limit=60)


def connection_name(settings: GcpSettings, instance: str) -> str:
    """PROJECT:REGION:INSTANCE, as Cloud Run's cloud_sql_instance volume and the connector name it."""
    return f"{settings.project}:{settings.region}:{instance}"


def address(settings: GcpSettings, spec: TargetSpec, name: str) -> Address:
    """Services reach an instance at its connector socket under /cloudsql."""
    return Address(f"{SOCKETS}/{connection_name(settings, instance_name(settings, spec, name))}")


def connections(settings: GcpSettings, spec: TargetSpec, service: str) -> list[str]:
    """The connection names of the instances a service refers to (its cloud_sql_instance volume)."""
    return sorted(connection_name(settings, instance_name(settings, spec, n)) for n in spec.uses.get(service, ()))


def resources(spec: TargetSpec, settings: GcpSettings, secrets: Mapping[str, str]) -> list[Resource]:
    """One `postgres/NAME` per database: its instance's settings, the password as a Sensitive."""
    found = []
    for name, db in spec.resources.items():
        props: dict[str, Any] = {
            "instance": instance_name(settings, spec, name),
            "version": db.version,
            "tier": TIERS[db.tier],
            "disk_gb": max(MIN_DISK_GB, math.ceil(db.storage / 1024**3)),
            "database": db.database_name(name),
            "user": db.user_name(name),
            "deletion": db.deletion,
            "password": Sensitive.of(secrets.get(password_secret(name), ""), app=spec.app),
            "setup": backing.SETUP_DONE,
        }
        found.append(Resource(KIND, name, props, replace_on=REPLACE_ON, persistent=db.persistent,
                              update_effect="the instance restarts when its tier or version changes"))
    return found


def _labels(resource: Resource, app: str, target: str) -> dict[str, str]:
    """The instance's user labels: who owns it and what the API does not return."""
    props = resource.properties
    digest = props["password"].digest
    return {APP_LABEL: app, TARGET_LABEL: target, RESOURCE_LABEL: resource.name, DELETION_LABEL: props["deletion"],
            DATABASE_LABEL: props["database"], USER_LABEL: props["user"],
            PASSWORD_LABELS[0]: digest[:32], PASSWORD_LABELS[1]: digest[32:]}


def user_labels(instance: Mapping[str, Any]) -> Mapping[str, Any]:
    """An instance's user labels ({} when it has none)."""
    return dict((instance.get("settings") or {}).get("userLabels") or {})


def setup_state(sql: SqlAdmin, instance: Mapping[str, Any]) -> str:
    """What the instance has of what apply makes in it after the create: SETUP_DONE, "missing ..." naming
    the database and user its labels name that do not exist, or "pending" ("unknown" in a state it does not
    leave by itself) while it is not RUNNABLE: its children may not be listable. Reads only: two list calls
    on a RUNNABLE instance."""
    state, name, labels = instance.get("state"), str(instance["name"]), user_labels(instance)
    if state != "RUNNABLE":
        return f"{'pending' if state in PASSING_STATES else 'unknown'}: the instance is {state}"
    database, user = str(labels.get(DATABASE_LABEL, "")), str(labels.get(USER_LABEL, ""))
    try:
        missing = [f"database {database!r}"] if database not in sql.list_databases(name) else []
        missing += [f"user {user!r}"] if user not in sql.list_users(name) else []
    except (UserError, RetryableError) as exc:
        if any(text in exc.message for text in NOT_READY):
            return f"pending: {exc.message}"
        raise
    return backing.setup_state(missing)


def observed(instance: Mapping[str, Any], setup: str) -> Resource | None:
    """The resource an instance labelled by multicloud stands for, with its `setup` (see `setup_state`); None for
    another instance."""
    settings = instance.get("settings") or {}
    labels = user_labels(instance)
    name = labels.get(RESOURCE_LABEL)
    if not name or instance.get("state") == "PENDING_DELETE":
        return None
    deletion = str(labels.get(DELETION_LABEL, "keep"))
    props: dict[str, Any] = {
        "instance": instance["name"],
        "version": str(instance.get("databaseVersion", "")).removeprefix("POSTGRES_"),
        "tier": settings.get("tier"),
        "disk_gb": int(settings.get("dataDiskSizeGb") or 0),
        "database": labels.get(DATABASE_LABEL, ""),
        "user": labels.get(USER_LABEL, ""),
        "deletion": deletion,
        "password": Sensitive(digest=_password_digest(labels)),
        "setup": setup,
    }
    return Resource(KIND, str(name), props, replace_on=REPLACE_ON, persistent=deletion == "keep",
                    target=str(labels.get(TARGET_LABEL, "")), healthy=instance.get("state") == "RUNNABLE")


def _password_digest(labels: Mapping[str, Any]) -> str:
    """The password's digest the labels carry ("" when they carry none)."""
    return "".join(str(labels.get(k, "")) for k in PASSWORD_LABELS)


def health(instance: Mapping[str, Any] | None) -> Health:
    """Healthy once RUNNABLE; starting while it is made or maintained."""
    if instance is None:
        return Health(HealthState.STARTING, "the instance does not exist (yet)")
    state = str(instance.get("state"))
    if state == "RUNNABLE":
        return Health(HealthState.HEALTHY)
    if state in PASSING_STATES:
        return Health(HealthState.STARTING, f"instance {instance['name']} is {state}")
    return Health(HealthState.UNHEALTHY, f"instance {instance['name']} is {state}")


def _settings(resource: Resource, app: str, target: str) -> dict[str, Any]:
    """The instance settings apply keeps as the resource says."""
    props = resource.properties
    return {"tier": props["tier"], "dataDiskSizeGb": str(props["disk_gb"]),
            "userLabels": _labels(resource, app, target), "deletionProtectionEnabled": props["deletion"] == "keep"}


def instance_body(resource: Resource, app: str, target: str, region: str) -> dict[str, Any]:
    """The instances.insert body of a `postgres/NAME` resource."""
    props = resource.properties
    return {"name": props["instance"], "region": region, "databaseVersion": f"POSTGRES_{props['version']}",
            "settings": {**_settings(resource, app, target), "ipConfiguration": {"ipv4Enabled": True}}}


def apply(sql: SqlAdmin, app: str, target: str, change: Change, say: Callable[[str], None]) -> None:
    """Create, update or delete the instance of one `postgres/NAME`, and make sure its database and user
    (with the password) exist: on an existing instance once it is idle (waiting out a killed apply's create),
    before patching it (only what differs). Re-reads the instance first; a failure leaves what Cloud SQL made
    (labelled: the next plan sees what is missing and the next apply finishes it)."""
    resource = change.resource
    name = str((change.before or resource).properties["instance"])
    current = sql.get_instance(name)
    if current is not None and user_labels(current).get(APP_LABEL) != app:
        raise UserError(f"Cloud SQL instance {name!r} exists and is not app {app!r}'s; multicloud will not touch it")
    if change.action is Action.DELETE:
        if current is not None:
            if (current.get("settings") or {}).get("deletionProtectionEnabled"):
                say(f"turning deletion protection of {name} off")
                sql.patch_instance(name, {"settings": {"deletionProtectionEnabled": False}})
            say(f"deleting Cloud SQL instance {name} with its data")
            sql.delete_instance(name)
        return
    props = resource.properties
    wanted, version = _settings(resource, app, target), f"POSTGRES_{props['version']}"
    if current is None:
        say(f"creating Cloud SQL instance {name} ({props['tier']}, {version})")
        sql.insert_instance(instance_body(resource, app, target, sql.settings.region))
        _make_children(sql, name, props, stale=True, say=say)
        return
    current = sql.wait_idle(name, say)
    # the children first, the labels (the password's digest) after: a kill in between leaves a plan to finish it
    stale = _password_digest(user_labels(current)) != props["password"].digest
    _make_children(sql, name, props, stale=stale, say=say)
    changed = {k: v for k, v in wanted.items() if (current.get("settings") or {}).get(k) != v}
    patch: dict[str, Any] = {"settings": changed} if changed else {}
    if current.get("databaseVersion") != version:
        patch["databaseVersion"] = version
    if patch:
        say(f"updating Cloud SQL instance {name} in place")
        sql.patch_instance(name, patch)


def _make_children(sql: SqlAdmin, name: str, props: Mapping[str, Any], *, stale: bool,
                   say: Callable[[str], None]) -> None:
    """Make the instance's database when it is missing, and its user with the password when it is missing or
    the password is `stale`. A failure leaves what was made; the next plan names what is missing."""
    database, user = str(props["database"]), str(props["user"])
    if database not in sql.list_databases(name):
        say(f"creating database {database} in {name}")
        sql.insert_database(name, database)
    if stale or user not in sql.list_users(name):
        say(f"setting the password of user {user}")
        sql.set_user(name, user, props["password"].reveal())
