"""The engine against the stateful in-memory provider, through the Python API."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter

import pytest

from multicloud.api import Deployment
from multicloud.capabilities import FALLBACK
from multicloud.engine import Engine
from multicloud.errors import (
    ApplyFailedError,
    CapabilityError,
    FatalError,
    HealthTimeoutError,
    LockHeldError,
    ProviderError,
    RetryableError,
    TargetError,
    UserError,
)
from multicloud.lock import app_lock
from multicloud.planner import Action, plan
from multicloud.retry import RetryPolicy
from multicloud.spec import loads, target_spec
from multicloud.testing import MemoryCloud, MemoryProvider

SECRET = "db-pa55word-PLAINTEXT"
ENV = {"DB_PASSWORD": SECRET}
FAST = RetryPolicy(attempts=4, base_delay=0)

SPEC = """\
name: shop
services:
  db:
    image: postgres:16
    ports: [{name: pg, port: 5432}]
    env: {POSTGRES_PASSWORD: "${secrets.db_password}"}
    volumes: ["pgdata:/var/lib/postgresql/data"]
  api:
    image: shop/api:1
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {DB_URL: "postgres://shop:${secrets.db_password}@${services.db.host}:${services.db.port}/shop", LEVEL: info}
    depends_on: [db]
  web:
    image: shop/web:1
    ports: [{name: http, port: 80, protocol: http, expose: public}]
    env: {API: "${services.api.url}"}
    depends_on: [api]
  cache:
    image: redis:7
    ports: [{name: redis, port: 6379}]
secrets:
  db_password: {from_env: DB_PASSWORD}
volumes:
  pgdata:
targets:
  test: {provider: memory}
"""


def edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.fixture
def cloud() -> MemoryCloud:
    return MemoryCloud()


def deployment(cloud: MemoryCloud, text: str = SPEC, **kwargs) -> Deployment:
    kwargs.setdefault("retry", FAST)
    return Deployment(loads(text), "test", provider=MemoryProvider(cloud=cloud), environ=ENV, **kwargs)


def outcomes(result) -> dict[str, str]:
    return {s.key: s.outcome for s in result.steps}


ALL = {"network/shop", "volume/pgdata", "service/db", "service/api", "service/web", "service/cache"}


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


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [FatalError("quota exceeded"), ProviderError("bad request: left nothing behind")])
def test_a_failed_step_blocks_its_dependents_only_and_the_next_apply_finishes(cloud, error):
    cloud.inject("create", "service/db", error)
    with pytest.raises(ApplyFailedError) as caught:
        deployment(cloud).apply()
    result = caught.value.result
    assert outcomes(result) == {
        "network/shop": "done",
        "volume/pgdata": "done",
        "service/cache": "done",
        "service/db": "failed",
        "service/api": "blocked",
        "service/web": "blocked",
    }
    assert not result.ok
    assert [s.key for s in result.failed] == ["service/db"]
    assert result.failed[0].error is error
    assert result.failed[0].attempts == 1  # not retryable: one attempt
    assert "service/db: " + error.message in str(caught.value)
    attempted = {key for method, key in cloud.calls if method == "apply"}
    assert "service/api" not in attempted and "service/web" not in attempted
    assert set(cloud.apps["shop"]) == {"network/shop", "volume/pgdata", "service/cache"}

    resumed = deployment(cloud).apply()
    assert outcomes(resumed) == {"service/db": "done", "service/api": "done", "service/web": "done"}
    assert set(cloud.apps["shop"]) == ALL
    assert not deployment(cloud).plan().has_changes


def test_a_failing_read_fails_the_step(cloud):
    cloud.inject("read", "service/web", ProviderError("cannot describe service"))
    with pytest.raises(ApplyFailedError) as caught:
        deployment(cloud).apply()
    assert outcomes(caught.value.result)["service/web"] == "failed"
    assert caught.value.result.changed == 5


def test_an_unexpected_exception_in_a_provider_is_contained(cloud):
    cloud.inject("create", "service/cache", KeyError("bug"))  # type: ignore[arg-type]
    with pytest.raises(ApplyFailedError) as caught:
        deployment(cloud).apply()
    failed = caught.value.result.failed
    assert [s.key for s in failed] == ["service/cache"]
    assert isinstance(failed[0].error, ProviderError)
    assert "unexpected KeyError" in str(failed[0].error)
    assert outcomes(caught.value.result)["service/web"] == "done"


def test_retryable_errors_are_retried_until_they_pass(cloud):
    cloud.inject("create", "service/api", RetryableError("throttled"), times=2)
    events = []
    result = deployment(cloud, on_event=events.append).apply()
    assert result.ok
    step = next(s for s in result.steps if s.key == "service/api")
    assert step.attempts == 3
    assert cloud.calls.count(("create", "service/api")) == 3
    # re-read before every attempt, then to verify; once every step is done, one observe reads
    # every key it changed again (the plan's observe was the first)
    assert cloud.calls.count(("read", "service/api")) == 4
    assert cloud.calls.count(("observe", "shop")) == 2
    retries = [e for e in events if e.kind == "retry"]
    assert [e.resource for e in retries] == ["service/api", "service/api"]
    assert "attempt 1 failed (throttled)" in retries[0].message


def test_a_provider_with_cheap_reads_is_swept_key_by_key_not_observed_again(cloud):
    provider = MemoryProvider(cloud=cloud)
    provider.capabilities = dataclasses.replace(provider.capabilities, cheap_reads=True)
    deploy = Deployment(loads(SPEC), "test", provider=provider, environ=ENV, retry=FAST)
    assert deploy.apply().ok
    assert cloud.calls.count(("observe", "shop")) == 1  # the plan's only
    assert cloud.calls.count(("read", "service/api")) == 3  # before acting, to verify, and the sweep's


def test_retries_give_up_after_the_policy_attempts(cloud):
    cloud.inject("create", "service/api", RetryableError("throttled"), times=100)
    with pytest.raises(ApplyFailedError) as caught:
        deployment(cloud, retry=RetryPolicy(attempts=3, base_delay=0)).apply()
    (failed,) = caught.value.result.failed
    assert (failed.key, failed.attempts) == ("service/api", 3)
    assert isinstance(failed.error, RetryableError)
    assert cloud.calls.count(("create", "service/api")) == 3
    assert outcomes(caught.value.result)["service/web"] == "blocked"


def test_non_retryable_errors_are_not_retried(cloud):
    cloud.inject("create", "service/api", FatalError("invalid image"), times=100)
    with pytest.raises(ApplyFailedError):
        deployment(cloud, retry=RetryPolicy(attempts=5, base_delay=0)).apply()
    assert cloud.calls.count(("create", "service/api")) == 1


def test_backoff_sleeps_between_retries():
    cloud = MemoryCloud()
    provider = MemoryProvider(cloud=cloud)
    view = target_spec(loads(SPEC), "test")
    planned = plan("shop", "test", provider.desired(view, {"db_password": "x"}), [])
    cloud.inject("create", "service/cache", RetryableError("busy"), times=3)
    sleeps: list[float] = []
    engine = Engine(provider, retry=RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0), sleep=sleeps.append, seed=7)
    assert engine.apply(planned).ok
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (1.0, 2.0, 3.0), strict=True))


# --- health --------------------------------------------------------------------------------


def engine_plan(cloud: MemoryCloud, text: str = SPEC):
    provider = MemoryProvider(cloud=cloud)
    view = target_spec(loads(text), "test")
    return provider, plan("shop", "test", provider.desired(view, {"db_password": "x"}), provider.observe("shop"))


def test_apply_waits_for_health(cloud):
    cloud.health_polls = 3
    provider, planned = engine_plan(cloud)
    sleeps: list[float] = []
    events = []
    result = Engine(provider, retry=FAST, sleep=sleeps.append, emit=events.append).apply(planned)
    assert result.ok
    assert cloud.calls.count(("health", "service/api")) == 4  # 3 starting, then healthy
    assert len(sleeps) == 3 * 6
    assert any(e.kind == "waiting" and e.resource == "service/api" for e in events)


def test_unhealthy_fails_the_step_and_blocks_dependents(cloud):
    cloud.unhealthy.add("service/api")
    provider, planned = engine_plan(cloud)
    result = Engine(provider, retry=FAST, sleep=lambda s: None).apply(planned)
    assert outcomes(result)["service/api"] == "failed"
    assert outcomes(result)["service/web"] == "blocked"
    assert outcomes(result)["service/cache"] == "done"
    (failed,) = result.failed
    assert isinstance(failed.error, FatalError)
    assert "service/api is unhealthy: injected failure" in str(failed.error)


def test_health_timeout(cloud):
    cloud.health_polls = 10**9
    provider, planned = engine_plan(cloud)
    result = Engine(provider, retry=FAST, sleep=lambda s: None, health_timeout=0.0).apply(planned)
    assert {s.key for s in result.failed} == {"network/shop", "volume/pgdata"}
    assert {s.outcome for s in result.steps if s not in result.failed} == {"blocked"}
    assert all(isinstance(s.error, HealthTimeoutError) for s in result.failed)
    assert "not healthy after 0s" in str(result.failed[0].error)


def test_a_failed_health_poll_is_polled_again(cloud):
    provider, planned = engine_plan(cloud)
    cloud.inject("health", "service/cache", RetryableError("api blip"), times=2)
    result = Engine(provider, retry=FAST, sleep=lambda s: None).apply(planned)
    assert result.ok
    assert cloud.calls.count(("health", "service/cache")) == 3


# --- concurrency ---------------------------------------------------------------------------


class SlowProvider(MemoryProvider):
    """A memory provider whose applies linger until `expected` overlap (or a second passes),
    counting the most that ever ran at once."""

    def __init__(self, cloud: MemoryCloud, expected: int) -> None:
        super().__init__(cloud=cloud)
        self.expected = expected
        self.active = 0
        self.peak = 0
        self._count = threading.Condition()

    def apply(self, app, change, emit):
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._count.notify_all()
            if change.key.startswith("service/"):  # 12 of them: whole batches of 1 or 3
                self._count.wait_for(lambda: self.active >= self.expected, timeout=1.0)
        try:
            time.sleep(0.005)
            super().apply(app, change, emit)
        finally:
            with self._count:
                self.active -= 1


WIDE = (
    "name: wide\nservices:\n"
    + "".join(f"  s{i}: {{image: x}}\n" for i in range(12))
    + "targets:\n  test: {provider: memory}\n"
)


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_is_bounded(cloud, limit):
    provider = SlowProvider(cloud, expected=limit)
    deploy = Deployment(loads(WIDE), "test", provider=provider, environ={}, concurrency=limit, retry=FAST)
    result = deploy.apply()
    assert result.ok and result.changed == 13
    assert provider.peak == limit


# --- the lock ------------------------------------------------------------------------------


def test_a_second_apply_while_one_runs_fails_naming_the_holder(cloud, monkeypatch):
    inside, release = threading.Event(), threading.Event()

    class Blocking(MemoryProvider):
        def apply(self, app, change, emit):
            inside.set()
            release.wait(5)
            super().apply(app, change, emit)

    first = Deployment(loads(SPEC), "test", provider=Blocking(cloud=cloud), environ=ENV, retry=FAST)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(first.apply()))
    thread.start()
    try:
        assert inside.wait(5)
        with pytest.raises(LockHeldError) as caught:
            deployment(cloud).apply()
        message = str(caught.value)
        assert "another apply (pid " in message
        assert "of app 'shop' to target 'test' is running" in message
        assert "hint: wait for it to finish" in message
        with pytest.raises(LockHeldError, match="another apply"):
            deployment(cloud).destroy()
    finally:
        release.set()
        thread.join(10)
    assert outcome and outcome[0].ok
    assert deployment(cloud).apply().ok  # the lock is free again


def test_lock_is_per_app_and_target():
    with app_lock("shop", "test", "destroy"):
        with app_lock("shop", "other", "apply"), app_lock("other-app", "test", "apply"):
            pass
        held = r"another destroy \(pid \d+ on .*, since \d\d:\d\d:\d\d\)"
        with pytest.raises(LockHeldError, match=held), app_lock("shop", "test", "apply"):
            pass
    with app_lock("shop", "test", "apply"):
        pass


def test_lock_files_live_in_the_state_dir(_state_dir):
    with app_lock("shop", "test/../x", "apply"):
        files = list((_state_dir / "locks").iterdir())
    assert [f.name for f in files] == ["shop.test_.._x.lock"]


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
