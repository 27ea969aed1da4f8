"""Target settings, plan-time rendering details and import cost of the azure-aci provider."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.mapping import memory_gb
from multicloud_azure.provider import AzureAciProvider
from multicloud_azure.settings import parse_settings

from multicloud.api import Deployment
from multicloud.errors import ProviderError, SettingsError, SpecError
from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.spec import load, spec_from_dict
from multicloud.spec.targets import target_spec

BASE = {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg", "location": "West Europe"}


def test_one_character_resource_groups_and_a_sovereign_authority_are_accepted() -> None:
    parsed = parse_settings({**BASE, "resource_group": "r", "authority_host": "https://login.microsoftonline.us"},
                            environ={})
    assert parsed.resource_group == "r" and parsed.authority_host == "https://login.microsoftonline.us"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"region": "x"}, "region"),
        ({"subscription_id": ""}, "subscription_id"),
        ({"subscription_id": "my-subscription"}, "subscription_id"),
        ({"authority_host": "login.microsoftonline.us"}, "authority_host"),
        ({"resource_group": "bad/rg"}, "resource_group"),
        ({"dns_label": "9-starts-with-digit"}, "dns_label"),
        ({"dns_label": "abc"}, "dns_label"),
        ({"restart_policy": "sometimes"}, "restart_policy"),
        ({"arm_endpoint": "http://insecure.example"}, "arm_endpoint"),
        ({"ca_bundle": "/no/such/file.pem"}, "ca_bundle"),
        ({"layout": "mesh"}, "layout"),
        ({"registry": {"server": "r.azurecr.io"}}, "registry.username"),
        ({"poll_interval": -1}, "poll_interval"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({**BASE, **settings}, environ={})
    assert field in {".".join(map(str, path)) for path, _ in caught.value.problems}


def test_settings_defaults_and_environment_fallbacks(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    env = {"MULTICLOUD_AZURE_ARM_ENDPOINT": "https://127.0.0.1:8443/", "MULTICLOUD_AZURE_CA_BUNDLE": str(bundle)}
    parsed = parse_settings({**BASE, "restart_policy": "on-failure"}, environ=env)
    assert parsed.location == "westeurope" and parsed.restart_policy == "OnFailure"
    assert parsed.arm_endpoint == "https://127.0.0.1:8443" and parsed.ca_bundle == str(bundle)
    assert parse_settings(BASE, environ={}).arm_endpoint == "https://management.azure.com"
    assert parsed.group_name("iot") == "iot"


def test_a_bad_setting_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "multicloud.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: app
        services:
          web: {image: nginx}
        targets:
          azure:
            provider: azure-aci
            subscription_id: 00000000-0000-0000-0000-000000000001
            resource_group: rg
            location: westeurope
            restart_policy: sometimes
        """)
    )
    with pytest.raises(SpecError) as caught:
        Deployment(load(str(path)), "azure", environ={}).provider  # noqa: B018 - building it is the test
    assert f"{path}:10:" in str(caught.value) and "restart_policy" in str(caught.value)


def test_sdk_is_imported_only_when_a_client_is_built() -> None:
    code = (
        "import sys, multicloud_azure.provider, multicloud_azure.emulator;"
        "from multicloud_azure.provider import AzureAciProvider;"
        "AzureAciProvider({'subscription_id': '00000000-0000-0000-0000-000000000001',"
        " 'resource_group': 'rg', 'location': 'x'});"
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_memory_is_rounded_up_to_aci_steps() -> None:
    assert memory_gb(512 * 1024**2) == 0.5
    assert memory_gb(300 * 1024**2) == 0.3
    assert memory_gb(1024**3) == 1.0
    assert memory_gb(1) == 0.1


def spec_with(services: dict[str, Any], **target: Any) -> Any:
    return spec_from_dict(
        {
            "name": "unit",
            "services": services,
            "secrets": {f"s{i}": {"from_env": f"S{i}"} for i in range(40)},
            "targets": {"azure": {"provider": "azure-aci", **BASE, **target}},
        }
    )


def test_zero_replicas_leave_the_service_out() -> None:
    spec = spec_with({"a": {"image": "x"}, "b": {"image": "y", "replicas": 0}})
    resources = AzureAciProvider(BASE).desired(target_spec(spec, "azure"), {})
    assert sorted(r.key for r in resources) == ["container/a", "group/unit"]


def test_many_secrets_fit_in_chunked_tags(make_provider: Callable[..., AzureAciProvider]) -> None:
    env = {f"SECRET_{i}": f"${{secrets.s{i}}}" for i in range(40)}
    spec = spec_with({"a": {"image": "x", "env": env}, "b": {"image": "y", "secrets": ["s1", "s2"]}})
    values = {f"S{i}": f"value-{i}" for i in range(40)}
    provider = make_provider()
    deployment = Deployment(spec, "azure", provider=provider, environ=values)
    deployment.apply()
    group = provider.client.get_group("unit")
    assert group is not None
    assert "multicloud-c-a.3" in group["tags"] and all(len(v) <= 256 for v in group["tags"].values())
    assert not deployment.plan().has_changes
    values["S7"] = "changed"
    planned = Deployment(spec, "azure", provider=provider, environ=values).plan()
    acted = [(c.key, [f.path for f in c.fields]) for c in planned.changes if c.action is not Action.NOOP]
    assert acted == [("container/a", ["env.SECRET_7"])]
    assert "changed" not in plan_text(planned, verbose=True)


def test_registry_credentials_are_sent_and_compared_by_digest(
    make_provider: Callable[..., AzureAciProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = {"server": "iot.azurecr.io", "username": "puller", "password_env": "ACR_PASSWORD"}
    spec = spec_with({"a": {"image": "iot.azurecr.io/a:1"}})
    provider = make_provider(registry=registry)
    with pytest.raises(SpecError, match=r"targets\.azure\.registry\.password_env: environment variable ACR_PASSWORD"):
        Deployment(spec, "azure", provider=provider, environ={}).plan()
    monkeypatch.setenv("ACR_PASSWORD", "pull-Secret-9")
    deployment = Deployment(spec, "azure", provider=provider, environ={})
    deployment.apply()
    group = provider.client.get_group("unit")
    assert group is not None
    assert group["properties"]["imageRegistryCredentials"] == [{"server": "iot.azurecr.io", "username": "puller"}]
    assert not deployment.plan().has_changes
    monkeypatch.setenv("ACR_PASSWORD", "rotated")
    planned = Deployment(spec, "azure", provider=make_provider(registry=registry), environ={}).plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
        ("group/unit", Action.UPDATE)
    ]


def test_removing_a_container_re_sends_the_rendered_group_with_the_others_secrets(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider]
) -> None:
    spec = spec_with({"a": {"image": "x", "env": {"T": "${secrets.s0}"}}, "b": {"image": "y"}})
    Deployment(spec, "azure", provider=make_provider(), environ={"S0": "v"}).apply()
    smaller = Deployment(spec_with({"a": {"image": "x", "env": {"T": "${secrets.s0}"}}}), "azure",
                         provider=make_provider(), environ={"S0": "v"})
    planned = smaller.plan()
    acted = [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP]
    # ACI resizes a group only by recreating it (issue 16 item 9)
    assert acted == [("group/unit", Action.REPLACE), ("container/b", Action.DELETE)], plan_text(planned)
    assert smaller.apply(planned).ok
    provider = make_provider()
    group = provider.client.get_group("unit")
    assert group is not None and [c["name"] for c in group["properties"]["containers"]] == ["a"]
    stored = arm.backend.groups[(provider.settings.subscription_id, provider.settings.resource_group, "unit")].body
    env = stored["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert env == [{"name": "T", "secureValue": "v"}]
    assert not smaller.plan().has_changes


def test_a_group_of_the_same_name_not_ours_is_never_overwritten(
    make_provider: Callable[..., AzureAciProvider],
) -> None:
    from multicloud.errors import ApplyFailedError

    provider = make_provider()
    foreign = {
        "location": "westeurope",
        "tags": {"owner": "someone"},
        "properties": {
            "osType": "Linux",
            "containers": [
                {
                    "name": "theirs",
                    "properties": {"image": "theirs:1", "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0}}},
                }
            ],
        },
    }
    provider.client.put_group("unit", foreign)
    spec = spec_with({"a": {"image": "x"}})
    with pytest.raises(ApplyFailedError, match="belongs to no multicloud app"):
        Deployment(spec, "azure", provider=provider, environ={}).apply()
    group = provider.client.get_group("unit")
    assert group is not None and [c["name"] for c in group["properties"]["containers"]] == ["theirs"]
    assert provider.observe("unit") == []


def test_arm_errors_are_translated_once_at_the_client(make_provider: Callable[..., AzureAciProvider]) -> None:
    from multicloud.errors import UserError

    client = make_provider(http_retries=0).client

    def group(cpu: float, name: str = "plain") -> dict[str, Any]:
        return {
            "location": "westeurope",
            "properties": {
                "osType": "Linux",
                "containers": [
                    {
                        "name": "a",
                        "properties": {"image": "x", "resources": {"requests": {"cpu": cpu, "memoryInGB": 1.0}}},
                    }
                ],
            },
        }

    with pytest.raises(UserError, match="400 ContainerGroupNameInvalid"):
        client.put_group("Not_Valid", group(1.0))
    client.put_group("plain", group(1.0))
    with pytest.raises(ProviderError, match="409 InvalidContainerGroupUpdate") as caught:
        client.put_group("plain", group(2.0))
    assert caught.value.hint and "recreated" in caught.value.hint
    assert isinstance(caught.value.__cause__, Exception) and type(caught.value.__cause__).__module__.startswith("azure")
    client.delete_group("plain")
    client.delete_group("plain")  # absent: fine
    assert client.get_group("plain") is None


def test_throttling_beyond_the_sdk_retries_is_retryable(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider]
) -> None:
    from multicloud_azure.emulator import Fault

    from multicloud.errors import RetryableError

    arm.backend.inject(Fault(status=429, times=1, method="GET", retry_after=0))
    with pytest.raises(RetryableError, match="429 TooManyRequests"):
        make_provider(http_retries=0).observe("unit")


def test_status_and_logs_follow_what_aci_reports(
    arm: EmulatorHandle, make_provider: Callable[..., AzureAciProvider], resource_group: str
) -> None:
    provider = make_provider()
    spec = spec_with({"a": {"image": "x"}, "b": {"image": "y"}})
    deployment = Deployment(spec, "azure", provider=provider, environ={})
    deployment.apply()
    sub = provider.settings.subscription_id
    arm.backend.append_log(sub, resource_group, "unit", "a", "first")
    assert [(line.service, line.message) for line in deployment.logs("a", tail=1)] == [("a", "first")]
    follow = deployment.logs("a", follow=True, tail=1)
    assert next(follow).message == "first"
    arm.backend.append_log(sub, resource_group, "unit", "a", "second")
    assert next(follow).message == "second"
    follow.close()
    assert list(deployment.logs("a", tail=0)) == []
    assert [line.message for line in deployment.logs("a", tail=None)][-2:] == ["first", "second"]
    quiet = deployment.logs("a", follow=True, tail=0)  # none of the history, then the new lines
    writer = threading.Timer(1.0, arm.backend.append_log, (sub, resource_group, "unit", "a", "third"))
    writer.start()
    assert next(quiet).message == "third"
    writer.join()
    quiet.close()
    assert list(deployment.logs("a", tail=None, since=datetime.now(UTC) + timedelta(hours=1))) == []
    recent = [line.message for line in deployment.logs("a", tail=None, since=datetime.now(UTC) - timedelta(hours=1))]
    assert recent[-3:] == ["first", "second", "third"]
    arm.backend.stop(sub, resource_group, "unit")
    status = {s.service: s for s in deployment.status()}
    assert status["a"].state == "terminated" and status["a"].running == 0 and status["a"].desired == 1


def test_tcp_checks_get_no_probe_and_the_plan_says_so(settings: dict[str, Any]) -> None:
    from multicloud_azure.mapping import probes

    from multicloud.spec.models import Service

    broker = Service.model_validate({"image": "x", "healthcheck": {"tcp": 1883, "timeout": "2s"}})
    assert broker.healthcheck is not None
    assert probes(broker, broker.healthcheck) == (None, None)  # ACI has no tcp probe; sh -c nc may never pass
    spec = spec_from_dict({
        "name": "tcpcheck",
        "services": {"broker": {"image": "eclipse-mosquitto:2", "healthcheck": {"tcp": 1883},
                                "ports": [{"name": "mqtt", "port": 1883, "protocol": "tcp", "expose": "public"}]}},
        "targets": {"azure": {"provider": "azure-aci", **settings}},
    })
    planned = Deployment(spec, "azure", environ={}).plan()
    broker_change = next(c for c in planned.changes if c.key == "container/broker")
    assert broker_change.after is not None
    assert broker_change.after.properties["readiness"].startswith("none: the tcp check on port 1883 is not probed")
    assert "+ readiness: \"none: the tcp check" in plan_text(planned, verbose=True)
    group = next(c.resource.payload for c in planned.changes if c.resource.kind == "group")
    container = group.body["properties"]["containers"][0]["properties"]
    assert "readinessProbe" not in container and "livenessProbe" not in container
