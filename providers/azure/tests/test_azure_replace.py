"""Every replace_on field of the azure-aci resources converges in one apply: a container's cpu
and memory, the group's restart policy and location (ARM changes them only by recreating the
group, which apply does; the plan shows the replace and why)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.spec import spec_from_dict

CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # field: (service changes, target setting changes, the key replaced)
    "cpu": ({"resources": {"cpu": 1.0, "memory": "512Mi"}}, {}, "container/a"),
    "memory": ({"resources": {"cpu": 0.5, "memory": "1Gi"}}, {}, "container/a"),
    "restart_policy": ({}, {"restart_policy": "on-failure"}, "group/unit"),
    "location": ({}, {"location": "North Europe"}, "group/unit"),
}


def _spec(settings: dict[str, Any], service: dict[str, Any], target: dict[str, Any]) -> Any:
    a = {"image": "registry.example.com/a:1", "env": {"TOKEN": "${secrets.token}"},
         "resources": {"cpu": 0.5, "memory": "512Mi"}, **service}
    return spec_from_dict({
        "name": "unit",
        "services": {"a": a, "b": {"image": "registry.example.com/b:1"}},
        "secrets": {"token": {"from_env": "TOKEN"}},
        "targets": {"azure": {"provider": "azure-aci", **settings, **target}},
    })


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_replace_on_field_converges_in_one_apply(field: str, settings: dict[str, Any],
                                                 make_provider: Callable[..., AzureAciProvider]) -> None:
    service, target, key = CHANGES[field]
    env = {"TOKEN": "replace-s3cret"}
    Deployment(_spec(settings, {}, {}), "azure", provider=make_provider(), environ=env).apply()
    provider = make_provider(**target)
    changed = Deployment(_spec(settings, service, target), "azure", provider=provider, environ=env)
    planned = changed.plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [(key, Action.REPLACE)]
    assert changed.apply(planned).ok
    assert not changed.plan().has_changes, plan_text(changed.plan())
    groups = provider.client.list_groups()
    assert [(g["name"], g["properties"]["provisioningState"]) for g in groups] == [("unit", "Succeeded")]
    assert {c["name"] for c in groups[0]["properties"]["containers"]} == {"a", "b"}
