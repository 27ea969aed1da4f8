"""`postgres` resources on azure-aci: a flexible server (with its database and the Azure-services
firewall rule) made before the group that uses it, `${resources.db.url}` reaching the container as
a secureValue (fqdn, sslmode=require), planned again as nothing, a tier change an in-place update,
kept by destroy and deleted by destroy --volumes; a server an apply left without its database and
firewall rule (or still busy) planned as an in-place update that makes them; with the data plane, the
group's container logs in at that URL for real."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from multicloud_azure import postgres, views
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.emulator.arm import Fault
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.contract import HealthState
from multicloud.errors import ApplyFailedError
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict

SUBSCRIPTION = "00000000-0000-0000-0000-0000000a9e55"


def spec(handle: EmulatorHandle, rg: str, *, image: str = "multicloud-test/app:1", tier: str = "small",
         command: list[str] | None = None) -> dict[str, Any]:
    """A client service that gets the database's URL, and the database."""
    env = {"DATABASE_URL": "${resources.db.url}", "DB_HOST": "${resources.db.host}"}
    client: dict[str, Any] = {"image": image, "env": env}
    if command:
        client["command"] = command
    return {
        "name": "shop",
        "services": {"client": client},
        "resources": {"db": {"type": "postgres", "version": 16, "tier": tier, "database": "orders"}},
        "targets": {"azure": {
            "provider": "azure-aci", "subscription_id": SUBSCRIPTION, "resource_group": rg, "location": "westeurope",
            "arm_endpoint": handle.endpoint, "ca_bundle": handle.ca_bundle, "poll_interval": 0.05,
            "restart_policy": "Never",
        }},
    }


def deployment(data: dict[str, Any], handle: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """A Deployment of the spec's azure target on the emulator."""
    monkeypatch.setenv("MULTICLOUD_AZURE_TOKEN", handle.token)
    settings = {k: v for k, v in data["targets"]["azure"].items() if k != "provider"}
    return Deployment(spec_from_dict(data), "azure", provider=AzureAciProvider(settings),
                      retry=RetryPolicy(attempts=3, base_delay=0.1), health_timeout=120)


def test_a_database_on_azure_is_a_flexible_server_kept_by_destroy(
    arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = f"rg-{uuid.uuid4().hex[:8]}"
    deploy = deployment(spec(arm, rg), arm, monkeypatch)
    planned = deploy.plan()
    steps = {c.key: c for c in planned.changes}
    assert steps["postgres/db"].action is Action.CREATE
    assert "postgres/db" in steps["container/client"].resource.depends_on
    assert deploy.apply(planned).ok
    values = deploy._secret_values()
    password, url = values["resources_db_password"], values["resources_db_url"]

    servers = arm.backend.postgres
    assert servers is not None
    (server,) = [s for s in servers.servers.values() if s.resource_group == rg]
    fqdn = f"{server.name}.postgres.database.azure.com"
    assert url == f"postgresql://orders:{password}@{fqdn}:5432/orders?sslmode=require"
    assert server.password == password and server.body["properties"]["administratorLogin"] == "orders"
    assert "orders" in server.databases and "AllowAllAzureServicesAndResourcesWithinAzureIps" in server.firewall
    (group,) = [g for g in arm.backend.groups.values() if g.resource_group == rg]
    env = {v["name"]: v for v in group.body["properties"]["containers"][0]["properties"]["environmentVariables"]}
    assert env["DATABASE_URL"] == {"name": "DATABASE_URL", "secureValue": url}
    assert env["DB_HOST"]["value"] == fqdn
    shown = [plan_text(planned, verbose=True), str(plan_json(planned)), repr(deploy.provider.observe("shop"))]
    assert not any(secret in text for secret in (password, url) for text in shown)

    again = deployment(spec(arm, rg), arm, monkeypatch)
    assert not again.plan().has_changes
    bigger = deployment(spec(arm, rg, tier="medium"), arm, monkeypatch)
    change = {c.key: c for c in bigger.plan().changes}["postgres/db"]
    assert change.action is Action.UPDATE
    assert bigger.apply().ok and server.body["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}

    gone = bigger.plan(destroy=True)
    assert gone.kept and bigger.destroy(gone).ok
    assert [s.name for s in servers.servers.values() if s.resource_group == rg] == [server.name]
    assert deployment(spec(arm, rg, tier="medium"), arm, monkeypatch).destroy(volumes=True).ok
    deadline = time.monotonic() + 10
    while deploy.provider.observe("shop"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_server_left_without_its_database_and_rule_is_updated_into_shape(
    arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    rg = f"rg-{uuid.uuid4().hex[:8]}"
    deploy = deployment(spec(arm, rg), arm, monkeypatch)
    # the apply stops right after the server's create, as a SIGKILL there leaves it
    arm.backend.inject(Fault(status=400, code="InvalidParameterValue", method="PUT", path_contains="/databases/"))
    with pytest.raises(ApplyFailedError):
        deploy.apply()
    servers = arm.backend.postgres
    assert servers is not None
    (server,) = [s for s in servers.servers.values() if s.resource_group == rg]
    assert server.state == "Ready" and "orders" not in server.databases and not server.firewall

    missing = deployment(spec(arm, rg), arm, monkeypatch).plan()
    change = {c.key: c for c in missing.changes}["postgres/db"]
    assert change.action is Action.UPDATE and [f.path for f in change.fields] == ["setup"]
    assert (f"~ setup: \"missing database 'orders', firewall rule {postgres.FIREWALL_RULE}\" -> \"done\""
            in plan_text(missing))

    servers.op_seconds = 600.0  # a restart keeps it busy until the apply below has seen it so
    try:
        deploy.provider.servers._client.servers.begin_restart(rg, server.name)  # type: ignore[attr-defined]
    finally:
        servers.op_seconds = 0.02
    again = deployment(spec(arm, rg), arm, monkeypatch)
    pending = {c.key: c for c in again.plan().changes}["postgres/db"]
    assert pending.action is Action.UPDATE and str(pending.fields[0].before).startswith("pending: server is restarting")

    def restarted(method: str, path: str, status: int) -> None:
        if method == "GET" and path.partition("?")[0].endswith(f"/flexibleServers/{server.name}") and server.operation:
            server.operation.done_at = 0  # the apply's first read found it restarting: the restart ends

    patches = arm.backend.count("PATCH", server.name)
    progress: list[str] = []
    arm.backend.watchers.append(restarted)
    try:
        again.provider.apply("shop", pending, lambda event: progress.append(event.message))
    finally:
        arm.backend.watchers.remove(restarted)
    assert arm.backend.count("PATCH", server.name) == patches, "a PATCH was sent though the server was as desired"
    assert progress[0].startswith(f"waiting for flexible server {server.name} (restarting)")
    assert f"flexible server {server.name} already as desired; no PATCH" in progress
    assert "orders" in server.databases and postgres.FIREWALL_RULE in server.firewall

    assert deployment(spec(arm, rg), arm, monkeypatch).apply().ok
    assert not deployment(spec(arm, rg), arm, monkeypatch).plan().has_changes
    assert deployment(spec(arm, rg), arm, monkeypatch).destroy(volumes=True).ok


@pytest.mark.docker
def test_the_group_logs_in_at_the_url_it_is_given(
    data_plane_arm: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multicloud_docker.dataplane.postgres import image_reference

    rg = f"rg-{uuid.uuid4().hex[:8]}"
    who = "SELECT current_user || ':' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    query = f'psql "$DATABASE_URL" -tAc "{who}"'
    data = spec(data_plane_arm, rg, image=image_reference(), command=["sh", "-c", query])
    deploy = deployment(data, data_plane_arm, monkeypatch)
    assert deploy.apply().ok
    provider = deploy.provider
    assert isinstance(provider, AzureAciProvider)
    deadline = time.monotonic() + 60
    group = provider.settings.group_name("shop")
    while "orders:t" not in (log := provider.client.container_logs(group, "client", None)):
        assert time.monotonic() < deadline, f"the client did not log in: {log!r}"
        time.sleep(0.3)
    # restart policy Never: it ends as ACI shows a finished task (Terminated, Completed, exit 0), which
    # health counts as success; the apply above met it running or ended, whichever its poll came upon
    while (found := provider.client.get_group(group)) is None or views.container_state(found, "client")[0] != \
            "Terminated":
        assert time.monotonic() < deadline, f"the client did not end: {found!r}"
        time.sleep(0.3)
    assert (views.container_state(found, "client")[:2], views.exit_code(found, "client")) == (
        ("Terminated", "Completed"), 0)
    client = next(r for r in provider.observe("shop") if r.key == "container/client")
    assert provider.health("shop", client).state is HealthState.HEALTHY and not client.faults
    assert deploy.destroy(volumes=True).ok
