"""The IoT example on ACI through the emulator: one group, public MQTT and WebSocket ports
under a DNS label, secrets never readable back, empty re-plans, restarts said in the plan."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.contract import Event
from multicloud.errors import CapabilityError
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict

Deploy = Callable[..., Deployment]


@pytest.fixture
def deployment(iot_secrets: dict[str, str]) -> Deploy:
    """Make a Deployment of a spec dict's azure target on a provider, with the IoT secrets."""

    def make(data: dict[str, Any], provider: AzureAciProvider, events: list[Event] | None = None) -> Deployment:
        return Deployment(
            spec_from_dict(data),
            "azure",
            provider=provider,
            environ=iot_secrets,
            retry=RetryPolicy(attempts=5, base_delay=0.1),
            health_timeout=30,
            on_event=events.append if events is not None else None,
        )

    return make


def raw_get(arm: EmulatorHandle, path: str) -> str:
    """GET a path from the emulator as any HTTPS client would, returning the body text."""
    context = ssl.create_default_context(cafile=arm.ca_bundle)
    request = urllib.request.Request(
        f"{arm.endpoint}{path}?api-version=2023-05-01", headers={"Authorization": f"Bearer {arm.token}"}
    )
    with urllib.request.urlopen(request, context=context) as response:
        return str(response.read().decode())


def test_example_as_written_is_rejected_with_what_to_do(
    deployment: Deploy, make_provider: Callable[..., AzureAciProvider], iot: dict[str, Any]
) -> None:
    data = iot
    data["targets"]["azure"].pop("defaults")  # the example's {replicas: 1}: ingestion's 2 replicas stand
    data["targets"]["azure"]["overrides"]["registry"]["ports"] = [
        {**data["services"]["registry"]["ports"][0], "port": 8001}]
    with pytest.raises(CapabilityError) as caught:
        deployment(data, make_provider()).plan()
    text = str(caught.value)
    # found in the service, reported where the spec sets it (the base service: no override gives it)
    assert "services.ingestion.replicas: 2 replicas cannot run on ACI" in text
    assert "targets.azure.defaults: {replicas: 1}" in text
    assert "port 8001/TCP is also used by services.auth.ports.http" in text
    assert "cannot remap ports" in text


def test_iot_backend_runs_in_one_group(
    deployment: Deploy,
    iot_secrets: dict[str, str],
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
    resource_group: str,
) -> None:
    provider = make_provider()
    deploy = deployment(iot, provider)
    planned = deploy.plan()
    assert {c.key for c in planned.changes} == {
        "container/auth",
        "container/broker",
        "container/ingestion",
        "container/registry",
        "group/iot-backend",
        "postgres/db",  # a flexible server, made before the group
    }
    for secret in iot_secrets.values():
        assert secret not in plan_text(planned, verbose=True)
        assert secret not in json.dumps(plan_json(planned))
    puts_before = arm.backend.count("PUT", "containerGroups")
    deploy.apply(planned)
    assert arm.backend.count("PUT", "containerGroups") - puts_before == 1, "the whole group goes in one PUT"

    groups = provider.client.list_groups()
    assert [g["name"] for g in groups] == ["iot-backend"]
    group = groups[0]
    ip = group["properties"]["ipAddress"]
    assert ip["type"] == "Public"
    assert {(p["port"], p["protocol"]) for p in ip["ports"]} == {(8883, "TCP"), (8081, "TCP"), (8000, "TCP")}
    assert ip["fqdn"] == f"{ip['dnsNameLabel']}.westeurope.azurecontainer.io"
    assert group["tags"]["multicloud-app"] == "iot-backend" and group["tags"]["multicloud-spec"]

    endpoints = {(e.service, e.port): e for e in deploy.endpoints()}
    assert endpoints[("broker", "mqtts")].url == f"mqtts://{ip['fqdn']}:8883"
    assert endpoints[("broker", "mqtt-wss")].url == f"wss://{ip['fqdn']}:8081/mqtt"
    assert endpoints[("registry", "https")].url == f"https://{ip['fqdn']}:8000"
    assert endpoints[("broker", "mqtt")].url == "mqtt://localhost:1883" and not endpoints[("broker", "mqtt")].public
    assert endpoints[("auth", "http")].url == "http://localhost:8001" and not endpoints[("auth", "http")].public

    env = {
        v["name"]: v
        for c in group["properties"]["containers"]
        if c["name"] == "broker"
        for v in c["properties"]["environmentVariables"]
    }
    assert env["AUTH_URL"]["value"] == "http://localhost:8001", "services share localhost in one group"
    assert env["BROKER_FEED_TOKEN_FILE"]["value"] == "/run/secrets/broker_feed_token", "secrets are files"
    assert not any("secureValue" in v for v in env.values())
    raw = raw_get(
        arm,
        f"/subscriptions/{provider.settings.subscription_id}/resourceGroups/{resource_group}"
        "/providers/Microsoft.ContainerInstance/containerGroups/iot-backend",
    )
    shown = [raw, repr(provider.observe("iot-backend")), repr(deploy.status()), repr(list(deploy.logs()))]
    for secret in iot_secrets.values():
        assert not any(secret in text for text in shown)

    status = {s.service: s for s in deploy.status()}
    assert set(status) == {"auth", "broker", "ingestion", "registry"}
    assert all(s.running == s.healthy == 1 for s in status.values())

    again = deploy.plan()
    assert not again.has_changes, plan_text(again)
    puts = arm.backend.count("PUT")
    assert deploy.apply().changed == 0
    assert arm.backend.count("PUT") == puts, "a re-apply makes no PUT"

    deploy.destroy()
    assert {r.key for r in provider.observe("iot-backend")} == {"postgres/db"}, "destroy keeps the database"
    assert not [g for g in provider.client.list_groups() if g.get("tags", {}).get("multicloud-app")]
    assert deploy.destroy(volumes=True).ok and provider.observe("iot-backend") == []


def test_env_change_restarts_the_group_in_place(
    deployment: Deploy,
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
) -> None:
    provider = make_provider()
    deployment(iot, provider).apply()
    iot["targets"]["azure"]["overrides"]["ingestion"].setdefault("env", {})["BATCH_MAX_ROWS"] = "500"
    events: list[Event] = []
    changed = deployment(iot, provider, events)
    planned = changed.plan()
    acted = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in acted] == [("container/ingestion", Action.UPDATE)]
    assert [f.path for f in acted[0].fields] == ["env.BATCH_MAX_ROWS"]
    assert (
        "~ container/ingestion will be updated in place (ACI restarts all 4 container(s) of group iot-backend)"
        in plan_text(planned)
    )
    changed.apply(planned)
    messages = [e.message for e in events if e.resource == "container/ingestion"]
    assert any("updating group iot-backend in place: all 4 container(s) restart" in m for m in messages), messages
    assert not changed.plan().has_changes


def test_cpu_change_is_a_replace_of_the_whole_group(
    deployment: Deploy,
    arm: EmulatorHandle,
    make_provider: Callable[..., AzureAciProvider],
    iot: dict[str, Any],
) -> None:
    provider = make_provider()
    deployment(iot, provider).apply()
    iot["targets"]["azure"]["overrides"]["registry"]["resources"] = {"cpu": 0.5}
    events: list[Event] = []
    changed = deployment(iot, provider, events)
    planned = changed.plan()
    acted = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in acted] == [("container/registry", Action.REPLACE)]
    assert "cpu cannot change in place (delete-before-create)" in plan_text(planned)
    deletes = arm.backend.count("DELETE")
    changed.apply(planned)
    assert arm.backend.count("DELETE") == deletes + 1
    assert any("deleting group iot-backend" in e.message for e in events)
    assert not changed.plan().has_changes


def test_restart_policy_change_replaces_the_group(
    deployment: Deploy, make_provider: Callable[..., AzureAciProvider], iot: dict[str, Any]
) -> None:
    provider = make_provider()
    deployment(iot, provider).apply()
    iot["targets"]["azure"]["restart_policy"] = "on-failure"
    changed = deployment(iot, make_provider(restart_policy="on-failure"))
    planned = changed.plan()
    acted = [(c.key, c.action, c.reason) for c in planned.changes if c.action is not Action.NOOP]
    reason = "restart_policy cannot change in place (delete-before-create)"
    assert acted == [("group/iot-backend", Action.REPLACE, reason)]
    changed.apply(planned)
    assert not changed.plan().has_changes
