"""What real ACI (api-version 2023-05-01) does that a lenient emulator hid (issue 16 items 8-14):
its 409 codes, its limits and the changes it only makes by recreating a group."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from multicloud_azure.desired import GroupPlan
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.contract import Event, HealthState
from multicloud.errors import CapabilityError, ProviderError, RetryableError, UserError
from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import load, spec_from_dict


def deployment(
    data: dict[str, Any], provider: AzureAciProvider, secrets: dict[str, str], events: list[Event] | None = None,
    attempts: int = 6,
) -> Deployment:
    """A deployment of a spec dict's azure target that retries quickly and records its events."""
    return Deployment(
        spec_from_dict(data), "azure", provider=provider, environ=secrets,
        retry=RetryPolicy(attempts=attempts, base_delay=0.3, max_delay=2.0), health_timeout=30,
        on_event=events.append if events is not None else None,
    )


class OnRetry(list[Event]):
    """Recorded events that run `then` once a retry naming `code` is reported: an emulated condition
    lasts until the apply has met it, however slowly a busy machine brings the apply there."""

    def __init__(self, code: str, then: Callable[[], None]) -> None:
        super().__init__()
        self.code, self.then = code, then

    def append(self, event: Event) -> None:
        super().append(event)
        if event.kind == "retry" and self.code in event.message:
            self.then()


def test_a_group_mid_operation_answers_container_group_transitioning_which_is_retried(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider], iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    provider = make_provider()
    first = deployment(iot, provider, iot_secrets)
    plan = next(c.resource.payload for c in first.plan().changes if c.resource.kind == "group")
    assert isinstance(plan, GroupPlan) and first.apply().ok
    quick, arm.backend.op_seconds = arm.backend.op_seconds, 3600.0
    provider.client.put_group(plan.name, plan.body)  # the group is now Updating until the apply meets it
    arm.backend.op_seconds = quick
    with pytest.raises(RetryableError, match="409 ContainerGroupTransitioning"):
        provider.client.put_group(plan.name, plan.body)
    iot["services"]["auth"]["env"]["NEW_SETTING"] = "1"
    (busy,) = [g for g in arm.backend.groups.values() if g.name == plan.name]
    events = OnRetry("ContainerGroupTransitioning", lambda: setattr(busy, "ready_at", 0.0))
    assert deployment(iot, provider, iot_secrets, events).apply().ok
    assert any(e.kind == "retry" and "ContainerGroupTransitioning" in e.message for e in events)


def test_no_capacity_in_the_region_is_retried_until_it_frees(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider], iot: dict[str, Any],
    iot_secrets: dict[str, str],
) -> None:
    arm.backend.region_cpu = 0.1
    events = OnRetry("409 ServiceUnavailable", lambda: setattr(arm.backend, "region_cpu", 100.0))  # then it frees
    result = deployment(iot, make_provider(), iot_secrets, events, attempts=8).apply()
    assert result.ok
    assert any(e.kind == "retry" and "409 ServiceUnavailable" in e.message for e in events), [
        e.message for e in events
    ]


LIMITS = """\
name: lim--app
services:
  web:
    image: nginx
    env:
      GOOD_NAME: "1"
      bad.name: "2"
      x-y: "3"
      A23456789012345678901234567890123456789012345678901234567890123x: "4"
    ports:
      - {name: p1, port: 81, protocol: tcp, expose: public}
      - {name: p2, port: 82, protocol: tcp, expose: public}
      - {name: p3, port: 83, protocol: tcp, expose: public}
      - {name: p4, port: 84, protocol: tcp, expose: public}
      - {name: p5, port: 85, protocol: tcp, expose: public}
      - {name: p6, port: 86, protocol: tcp, expose: public}
  side--car:
    image: nginx
targets:
  azure:
    provider: azure-aci
"""


def test_arm_limits_are_findings_at_their_spec_lines(
    arm: EmulatorHandle, settings: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "multicloud.yaml"
    path.write_text(LIMITS + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in settings.items()))
    started = len(arm.backend.requests)
    with pytest.raises(CapabilityError) as caught:
        Deployment(load(str(path)), "azure", environ={}).plan()
    text = str(caught.value)
    for line, what in ((7, "bad.name"), (8, "x-y"), (9, "A2345"), (16, "p6"), (17, "side--car"), (1, "lim--app")):
        assert f"{path}:{line}:" in text and what in text, (line, what, text)
    assert "GOOD_NAME" not in text and ":15:" not in text
    assert len(arm.backend.requests) == started  # refused before asking ARM anything


def test_twenty_one_secret_volumes_are_refused_at_plan(arm: EmulatorHandle, settings: dict[str, Any]) -> None:
    services = {
        f"svc{i}": {"image": "nginx", "secrets": ["token"], "resources": {"cpu": 0.1, "memory": "128Mi"}}
        for i in range(21)
    }
    spec = spec_from_dict({
        "name": "vols", "services": services, "secrets": {"token": {"from_env": "TOKEN"}},
        "targets": {"azure": {"provider": "azure-aci", **settings}},
    })
    with pytest.raises(CapabilityError, match="21 services mount secret files"):
        Deployment(spec, "azure", environ={"TOKEN": "t"}).plan()


@pytest.mark.parametrize(("change", "code"), [
    (lambda c, p: c["properties"]["environmentVariables"].append({"name": "a.b", "value": "1"}),
     "InvalidContainerEnvironmentVariable"),
    (lambda c, p: p["ipAddress"]["ports"].extend({"port": n, "protocol": "TCP"} for n in range(81, 87)),
     "TooManyIpAddressPorts"),
    (lambda c, p: p.update(volumes=[{"name": f"vol{i:02d}", "secret": {}} for i in range(21)]), "TooManyVolumes"),
    (lambda c, p: p.update(volumes=[{"name": "vol", "secret": {}}]), "InvalidVolumeName"),
    (lambda c, p: p.update(volumes=[{"name": "my--vol", "secret": {}}]), "InvalidVolumeName"),
    (lambda c, p: p["ipAddress"].update(ports=[]), "MissingIpAddressPorts"),
])
def test_the_emulator_rejects_what_arm_rejects(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider], change: Any, code: str
) -> None:
    container = {"name": "web", "properties": {
        "image": "nginx", "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}},
        "ports": [{"port": n, "protocol": "TCP"} for n in range(80, 87)], "environmentVariables": [],
    }}
    props: dict[str, Any] = {"osType": "Linux", "containers": [container],
                             "ipAddress": {"type": "Public", "ports": [{"port": 80, "protocol": "TCP"}]}}
    change(container, props)
    with pytest.raises(UserError, match=f"400 {code}"):
        make_provider().client.put_group("limits", {"location": "westeurope", "properties": props})


def _two_services(settings: dict[str, Any], names: tuple[str, ...], env: dict[str, str] | None = None) -> Any:
    return spec_from_dict({
        "name": "members",
        "services": {n: {"image": f"registry.example.com/{n}:1", "resources": {"cpu": 0.5, "memory": "512Mi"},
                         "env": env or {}} for n in names},
        "targets": {"azure": {"provider": "azure-aci", **settings}},
    })


@pytest.mark.parametrize(("before", "after"), [(("a",), ("a", "b")), (("a", "b"), ("a",))])
def test_adding_or_removing_a_service_replaces_the_group_saying_why(
    settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider],
    before: tuple[str, ...], after: tuple[str, ...],
) -> None:
    provider = make_provider()
    assert Deployment(_two_services(settings, before), "azure", provider=provider, environ={}).apply().ok
    changed = Deployment(_two_services(settings, after), "azure", provider=provider, environ={})
    planned = changed.plan()
    group = next(c for c in planned.changes if c.key == "group/members")
    assert group.action is Action.REPLACE and "containers cannot change in place" in group.reason
    assert "group/members" in plan_text(planned) and "containers" in plan_text(planned)
    assert changed.apply(planned).ok
    assert not changed.plan().has_changes
    found = provider.client.get_group("members")
    assert found is not None and {c["name"] for c in found["properties"]["containers"]} == set(after)


def test_arm_refuses_to_add_a_container_in_place(
    settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider]
) -> None:
    provider = make_provider()
    assert Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={}).apply().ok
    plan = next(c.resource.payload for c in Deployment(
        _two_services(settings, ("a", "b")), "azure", provider=provider, environ={}).plan().changes
        if c.resource.kind == "group")
    assert isinstance(plan, GroupPlan)
    with pytest.raises(ProviderError, match="409 InvalidContainerGroupUpdate"):
        provider.client.put_group(plan.name, plan.body)


def test_a_stopped_group_is_replaced_not_updated_in_place(
    arm: EmulatorHandle, settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider],
    resource_group: str,
) -> None:
    provider = make_provider()
    assert Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={}).apply().ok
    arm.backend.stop(settings["subscription_id"], resource_group, "members")
    plan = next(c.resource.payload for c in Deployment(
        _two_services(settings, ("a",)), "azure", provider=provider, environ={}).plan().changes
        if c.resource.kind == "group")
    assert isinstance(plan, GroupPlan)
    with pytest.raises(UserError, match="409 ContainerGroupTerminated"):
        provider.client.put_group(plan.name, plan.body)
    again = Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={})
    planned = again.plan()
    group = next(c for c in planned.changes if c.key == "group/members")
    assert group.action is Action.REPLACE and "stopped" in group.reason
    assert again.apply(planned).ok and not again.plan().has_changes
    found = provider.client.get_group("members")
    assert found is not None and found["properties"]["instanceView"]["state"] == "Running"


def test_an_update_of_a_stopped_group_recreates_it(
    arm: EmulatorHandle, settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider],
    resource_group: str,
) -> None:
    provider = make_provider()
    assert Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={}).apply().ok
    updated = _two_services(settings, ("a",), {"LEVEL": "debug"})
    plan = next(c for c in Deployment(updated, "azure", provider=provider, environ={}).plan().changes
                if c.key == "container/a")
    arm.backend.stop(settings["subscription_id"], resource_group, "members")  # after the plan: apply re-reads
    events: list[Event] = []
    provider.apply("members", dataclasses.replace(plan, action=Action.UPDATE), events.append)
    assert any("state (Stopped)" in e.message for e in events), [e.message for e in events]
    found = provider.client.get_group("members")
    assert found is not None and found["properties"]["instanceView"]["state"] != "Stopped"


@pytest.mark.parametrize("state", ["Canceled", "Unhealthy", "NotAccessible"])
def test_states_that_waiting_does_not_fix_are_reported_as_what_they_are(
    arm: EmulatorHandle, settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider],
    resource_group: str, state: str,
) -> None:
    provider = make_provider()
    assert Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={}).apply().ok
    arm.backend.groups[(settings["subscription_id"], resource_group, "members")].state = state
    arm.backend.groups[(settings["subscription_id"], resource_group, "members")].ready_at = float("inf")
    group = next(r for r in provider.observe("members") if r.kind == "group")
    health = provider.health("members", group)
    assert health.state is HealthState.UNHEALTHY and state in health.message


def test_logs_follow_by_time_across_a_restart_that_starts_the_log_afresh(
    arm: EmulatorHandle, settings: dict[str, Any], make_provider: Callable[..., AzureAciProvider],
    resource_group: str,
) -> None:
    provider = make_provider()
    deployment = Deployment(_two_services(settings, ("a",)), "azure", provider=provider, environ={})
    assert deployment.apply().ok
    sub = settings["subscription_id"]
    for text in ("first", "second", "third"):
        arm.backend.append_log(sub, resource_group, "members", "a", text)
    follow = deployment.logs("a", follow=True, tail=1)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        assert pool.submit(next, follow).result(timeout=10).message == "third"
        provider.client.restart_group("members")  # ACI's log starts afresh, shorter than before
        arm.backend.append_log(sub, resource_group, "members", "a", "after restart")
        assert pool.submit(next, follow).result(timeout=10).message == "after restart"
        arm.backend.append_log(sub, resource_group, "members", "a", "after restart")  # same text, new line
        assert pool.submit(next, follow).result(timeout=10).message == "after restart"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    raw = provider.client.container_logs("members", "a", None, timestamps=True).splitlines()
    stamp, _, text = raw[-1].partition(" ")
    assert text == "after restart" and stamp.endswith("Z") and len(raw) == 2  # the restart dropped the rest
