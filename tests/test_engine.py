"""The engine against the stateful in-memory provider, through the Python API: idempotent and
level-based applies, destroy, and the checks made before anything is touched."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from multicloud.api import Deployment
from multicloud.capabilities import FALLBACK
from multicloud.errors import CapabilityError, TargetError, UserError
from multicloud.lock import app_lock
from multicloud.planner import Action
from multicloud.spec import loads
from multicloud.testing import MemoryProvider
from tests.engine_shop import ALL, ENV, FAST, SECRET, SPEC, deployment, edit, outcomes

# --- idempotent apply ----------------------------------------------------------------------


def test_apply_then_replan_is_empty_and_reapply_mutates_nothing(cloud):
    first = deployment(cloud).apply()
    assert first.ok and first.changed == 6
    assert outcomes(first) == dict.fromkeys(ALL, "done")
    assert Counter(m[0] for m in cloud.mutations()) == {"create": 6}
    assert set(cloud.apps["shop"]) == ALL

    again = deployment(cloud)
    assert not again.plan().has_changes
    before = len(cloud.mutations())
    result = again.apply()
    assert result.ok and result.steps == () and result.changed == 0
    assert len(cloud.mutations()) == before


def test_creates_follow_dependencies(cloud):
    deployment(cloud).apply()
    order = [key for method, key in cloud.mutations()]
    assert order.index("service/db") < order.index("service/api") < order.index("service/web")
    assert order.index("volume/pgdata") < order.index("service/db")
    assert order.index("network/shop") < order.index("service/cache")


def test_change_one_env_updates_exactly_that_service(cloud):
    deployment(cloud).apply()
    changed = deployment(cloud, edit(SPEC, "LEVEL: info", "LEVEL: debug"))
    planned = changed.plan()
    steps = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in steps] == [("service/api", Action.UPDATE)]
    assert [f.path for f in steps[0].fields] == ["env.LEVEL"]
    before = len(cloud.mutations())
    result = changed.apply(planned)
    assert outcomes(result) == {"service/api": "done"}
    assert cloud.mutations()[before:] == [("update", "service/api")]
    assert not changed.plan().has_changes


def test_changing_a_secret_updates_the_services_that_use_it(cloud):
    deployment(cloud).apply()
    rotated = Deployment(
        loads(SPEC), "test", provider=MemoryProvider(cloud=cloud), environ={"DB_PASSWORD": "new"}, retry=FAST
    )
    planned = rotated.plan()
    changed = {c.key: [f.path for f in c.fields] for c in planned.changes if c.action is not Action.NOOP}
    assert changed == {"service/db": ["env.POSTGRES_PASSWORD"], "service/api": ["env.DB_URL"]}


def test_remove_a_service_deletes_exactly_that(cloud):
    deployment(cloud).apply()
    text = edit(SPEC, "  cache:\n    image: redis:7\n    ports: [{name: redis, port: 6379}]\n", "")
    smaller = deployment(cloud, text)
    planned = smaller.plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
        ("service/cache", Action.DELETE)
    ]
    before = len(cloud.mutations())
    smaller.apply(planned)
    assert cloud.mutations()[before:] == [("delete", "service/cache")]
    assert "service/cache" not in cloud.apps["shop"]


def test_image_change_replaces(cloud):
    deployment(cloud).apply()
    newer = deployment(cloud, edit(SPEC, "shop/web:1", "shop/web:2"))
    planned = newer.plan()
    (step,) = [c for c in planned.changes if c.action is not Action.NOOP]
    assert (step.key, step.action) == ("service/web", Action.REPLACE)
    before = len(cloud.mutations())
    newer.apply(planned)
    assert cloud.mutations()[before:] == [("create", "service/web"), ("delete", "service/web")]
    assert cloud.apps["shop"]["service/web"]["revision"] == 2
    assert [k for k in cloud.apps["shop"] if k.startswith("service/web")] == ["service/web"]


def test_secrets_never_reach_the_cloud_state_or_events(cloud):
    events = []
    deployment(cloud, on_event=events.append).apply()
    assert SECRET not in json.dumps(cloud.apps)
    assert all(SECRET not in f"{e.kind} {e.resource} {e.message}" for e in events)


# --- level-based: every apply starts from what exists --------------------------------------


def test_resources_deleted_out_of_band_are_recreated(cloud):
    deployment(cloud).apply()
    del cloud.apps["shop"]["service/cache"]
    planned = deployment(cloud).plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
        ("service/cache", Action.CREATE)
    ]


def test_a_stale_plan_rereads_before_each_step(cloud):
    stale = deployment(cloud).plan()  # made before anything exists
    deployment(cloud).apply()  # someone else applies first
    before = len(cloud.mutations())
    result = deployment(cloud).apply(stale)
    assert result.ok
    assert set(outcomes(result).values()) == {"skipped"}
    assert len(cloud.mutations()) == before


def test_a_step_whose_resource_changed_since_the_plan_applies_the_current_diff(cloud):
    deployment(cloud).apply()
    planned = deployment(cloud, edit(SPEC, "LEVEL: info", "LEVEL: debug")).plan()
    cloud.apps["shop"]["service/api"]["properties"]["replicas"] = 5  # drift after the plan
    result = deployment(cloud).apply(planned)
    assert outcomes(result) == {"service/api": "done"}
    assert cloud.apps["shop"]["service/api"]["properties"]["replicas"] == 1


# --- destroy -------------------------------------------------------------------------------

OTHER = edit(SPEC, "name: shop", "name: other")


def test_destroy_removes_everything_but_volumes_and_leaves_other_apps(cloud):
    deployment(cloud).apply()
    deployment(cloud, OTHER).apply()
    other_before = json.dumps(cloud.apps["other"], sort_keys=True)

    result = deployment(cloud).destroy()
    assert result.ok
    assert {s.key for s in result.steps} == ALL - {"volume/pgdata"}
    assert set(cloud.apps["shop"]) == {"volume/pgdata"}
    order = [k for m, k in cloud.mutations() if m == "delete"]
    assert order.index("service/web") < order.index("service/api") < order.index("service/db")
    assert order.index("service/cache") < order.index("network/shop")
    assert order.index("service/db") < order.index("network/shop")

    result = deployment(cloud).destroy(volumes=True)
    assert [s.key for s in result.steps] == ["volume/pgdata"]
    assert cloud.apps["shop"] == {}
    assert json.dumps(cloud.apps["other"], sort_keys=True) == other_before
    assert deployment(cloud).destroy(volumes=True).steps == ()


def test_destroy_needs_no_secrets(cloud):
    deployment(cloud).apply()
    gone = Deployment(loads(SPEC), "test", provider=MemoryProvider(cloud=cloud), environ={}, retry=FAST)
    assert gone.destroy().ok


def test_volume_data_survives_destroy_and_reapply(cloud):
    deployment(cloud).apply()
    cloud.apps["shop"]["volume/pgdata"]["instance"] = "keep-me"
    deployment(cloud).destroy()
    deployment(cloud).apply()
    assert cloud.apps["shop"]["volume/pgdata"]["instance"] == "keep-me"


# --- checks before anything is touched -----------------------------------------------------


def test_missing_secret_fails_before_touching_anything(cloud):
    deploy = Deployment(loads(SPEC), "test", provider=MemoryProvider(cloud=cloud), environ={}, retry=FAST)
    with pytest.raises(TargetError, match="environment variable DB_PASSWORD is not set"):
        deploy.apply()
    assert cloud.mutations() == []


def test_capability_violations_fail_the_plan(cloud):
    text = edit(SPEC, "{name: redis, port: 6379}", "{name: redis, port: 6379, protocol: tcp, expose: public}")
    provider = MemoryProvider({"raw_tcp_ingress": False, "max_replicas": 1}, cloud=cloud)
    text = edit(text, "image: shop/web:1", "image: shop/web:1\n    replicas: 3")
    deploy = Deployment(loads(text), "test", provider=provider, environ=ENV)
    with pytest.raises(CapabilityError) as caught:
        deploy.plan()
    message = str(caught.value)
    assert "target 'test' (memory) cannot run this spec" in message
    lines = message.splitlines()
    assert any(line.endswith("services.cache.ports[0]: redis (6379/tcp): target 'test' has no raw TCP ingress; "
                             "use an HTTP, gRPC or WebSocket port, or make it internal" + FALLBACK)
               for line in lines), message
    assert "  <string>:15:5: services.web.replicas: 3 exceeds target 'test''s maximum of 1" in lines
    assert cloud.calls == []


def test_rendered_plans_of_a_deployment_never_contain_a_secret(cloud):
    from multicloud.render import plan_json, plan_text

    first = deployment(cloud).plan()
    deployment(cloud).apply(first)
    rotated = Deployment(
        loads(SPEC), "test", provider=MemoryProvider(cloud=cloud), environ={"DB_PASSWORD": SECRET + "-2"}, retry=FAST
    ).plan()
    for planned in (first, rotated):
        for text in (
            json.dumps(plan_json(planned)),
            plan_text(planned),
            plan_text(planned, verbose=True),
            repr(planned),
        ):
            assert SECRET not in text
    assert "~ env.DB_URL: (sensitive value) -> (sensitive value)" in plan_text(rotated)


def test_progress_events_tell_the_story(cloud):
    events = []
    deployment(cloud, on_event=events.append).apply()
    by_resource: dict[str, list[str]] = {}
    for event in events:
        by_resource.setdefault(event.resource, []).append(event.kind)
    assert set(by_resource) == ALL
    assert all(kinds[0] == "start" and kinds[-1] == "done" for kinds in by_resource.values())


def test_an_unusable_state_dir_is_a_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(blocker / "state"))
    with pytest.raises(UserError, match="cannot create the lock file") as caught, app_lock("shop", "test", "apply"):
        pass
    assert "MULTICLOUD_STATE_DIR" in str(caught.value)
