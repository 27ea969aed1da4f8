"""Convergence through the engine: replace as create + delete, the check after every step,
broken and stale instances, and health as part of what exists (memory provider)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from multicloud.api import Deployment
from multicloud.contract import Health, HealthState
from multicloud.engine import Engine
from multicloud.errors import ApplyFailedError, HealthTimeoutError, InconsistentResultError, RetryableError
from multicloud.planner import Action, Change, plan
from multicloud.render import plan_text
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy
from multicloud.spec import loads, target_spec
from multicloud.testing import MemoryCloud, MemoryProvider

SECRET = "pg-Pl41ntext-9a7e"
FAST = RetryPolicy(attempts=4, base_delay=0)
SPEC = """\
name: farm
services:
  db:
    image: postgres:16
    env: {POSTGRES_PASSWORD: "${secrets.pw}"}
  api:
    image: farm/api:1
    replicas: 2
    env: {DB: "${services.db.host}"}
    depends_on: [db]
secrets:
  pw: {from_env: PW}
targets:
  test: {provider: memory}
"""


def deployment(cloud: MemoryCloud, text: str = SPEC, provider: MemoryProvider | None = None, **kw) -> Deployment:
    kw.setdefault("retry", FAST)
    provider = provider or MemoryProvider(cloud=cloud)
    return Deployment(loads(text), "test", provider=provider, environ={"PW": SECRET}, **kw)


def stored(cloud: MemoryCloud, key: str) -> list[str]:
    return sorted(k for k in cloud.apps["farm"] if k.partition("#")[0] == key)


# --- replace is a create and a delete, in replace_mode order --------------------------------


def test_create_before_delete_leaves_one_instance_and_providers_never_see_replace(cloud):
    deployment(cloud).apply()
    newer = deployment(cloud, SPEC.replace("farm/api:1", "farm/api:2"))
    planned = newer.plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
        ("service/api", Action.REPLACE)
    ]
    start = len(cloud.calls)
    newer.apply(planned)
    assert [c for c in cloud.calls[start:] if c[0] in ("create", "update", "delete", "replace")] == [
        ("create", "service/api"),
        ("delete", "service/api"),
    ]
    assert stored(cloud, "service/api") == ["service/api"]
    assert cloud.apps["farm"]["service/api"]["revision"] == 2
    assert not newer.plan().has_changes


def test_delete_before_create_deletes_first(cloud):
    provider = MemoryProvider(cloud=cloud)
    deployment(cloud).apply()
    view = target_spec(loads(SPEC.replace("farm/api:1", "farm/api:2")), "test")
    desired = provider.desired(view, {"pw": SECRET})
    wanted = [dataclasses.replace(r, replace_mode="delete-before-create") for r in desired]
    start = len(cloud.mutations())
    result = Engine(provider, retry=FAST).apply(plan("farm", "test", wanted, provider.observe("farm")))
    assert result.ok
    assert cloud.mutations()[start:] == [("delete", "service/api"), ("create", "service/api")]


def killed_between_the_halves(cloud: MemoryCloud) -> tuple[Deployment, MemoryProvider]:
    """Deploy, then do only the create half of an image change's replace (as if killed after it)."""
    deployment(cloud).apply()
    newer = deployment(cloud, SPEC.replace("farm/api:1", "farm/api:2"))
    (change,) = [c for c in newer.plan().changes if c.action is Action.REPLACE]
    provider = MemoryProvider(cloud=cloud)
    provider.apply("farm", Change(Action.CREATE, change.key, None, change.after), lambda e: None)
    return newer, provider


def test_a_kill_between_the_halves_leaves_two_instances_and_the_next_plan_removes_the_old(cloud):
    newer, provider = killed_between_the_halves(cloud)
    found = [r for r in provider.observe("farm") if r.key == "service/api"]
    assert [r.properties["image"] for r in found] == ["farm/api:1", "farm/api:2"]
    planned = newer.plan()
    acted = [(c.id, c.action) for c in planned.changes if c.action is not Action.NOOP]
    assert acted == [(f"service/api#{found[0].instance}", Action.DELETE)]
    newer.apply(planned)
    assert stored(cloud, "service/api") == ["service/api"]
    assert cloud.apps["farm"]["service/api"]["properties"]["image"] == "farm/api:2"
    assert not newer.plan().has_changes


def test_an_instance_planned_as_stale_that_finished_starting_is_kept_not_deleted(cloud):
    newer, _ = killed_between_the_halves(cloud)
    cloud.break_instance("farm", "service/api", "replica 1 was created but never started")
    planned = newer.plan()  # replace the old instance, delete the broken new one
    steps = sorted((bool(c.instance), c.action.value) for c in planned.changes if c.key == "service/api")
    assert steps == [(False, "replace"), (True, "delete")]
    cloud.apps["farm"]["service/api"]["faults"] = []  # the killed apply's start completes after the plan
    newer.apply(planned)
    assert stored(cloud, "service/api") == ["service/api"]  # the new one kept, the old one deleted
    assert cloud.apps["farm"]["service/api"]["properties"]["image"] == "farm/api:2"
    assert not newer.plan().has_changes


class LateCreate(MemoryProvider):
    """The create a killed apply had sent lands while the next apply waits for health."""

    landed = False

    def health(self, app: str, resource: Resource) -> Health:
        if resource.key == "service/api" and not self.landed:
            self.landed = True
            stale = dataclasses.replace(resource, properties={**resource.properties, "image": "farm/api:0"})
            super().apply(app, Change(Action.CREATE, resource.key, None, stale), lambda e: None)
        return super().health(app, resource)


def test_an_instance_that_appears_during_the_apply_is_removed_before_it_ends(cloud):
    events = []
    result = deployment(cloud, provider=LateCreate(cloud=cloud), on_event=events.append).apply()
    assert result.ok
    assert stored(cloud, "service/api") == ["service/api"]
    assert cloud.apps["farm"]["service/api"]["properties"]["image"] == "farm/api:1"
    assert any("it appeared during the apply" in e.message for e in events)
    assert not deployment(cloud).plan().has_changes


def test_a_retried_replace_deletes_the_old_instance_without_creating_twice(cloud):
    deployment(cloud).apply()
    cloud.inject("delete", "service/api", RetryableError("throttled"))
    newer = deployment(cloud, SPEC.replace("farm/api:1", "farm/api:2"))
    start = len(cloud.mutations())
    result = newer.apply()
    assert result.ok and [s.attempts for s in result.steps] == [1]
    # create, then the old one's delete once the step is done: it failed, and (re-reading: the
    # new instance exists) only the delete is tried again
    assert cloud.mutations()[start:] == [("create", "service/api")] + [("delete", "service/api")] * 2
    assert stored(cloud, "service/api") == ["service/api"]


def test_the_old_instance_of_a_replace_goes_after_what_uses_it_has_moved(cloud):
    # real clouds refuse deleting what is still in use (AWS: a security group with task ENIs
    # in it is a DependencyViolation), so api's update comes between db's create and delete
    deployment(cloud).apply()
    events = []
    text = SPEC.replace("postgres:16", "postgres:17").replace("replicas: 2", "replicas: 3")
    newer = deployment(cloud, text, on_event=events.append)
    start = len(cloud.mutations())
    assert newer.apply().ok
    assert cloud.mutations()[start:] == [("create", "service/db"), ("update", "service/api"), ("delete", "service/db")]
    assert any("it was replaced and what used it has moved" in e.message for e in events)
    assert stored(cloud, "service/db") == ["service/db"] and not newer.plan().has_changes


def test_the_old_instances_of_a_chain_of_replaces_go_users_first(cloud):
    deployment(cloud).apply()
    newer = deployment(cloud, SPEC.replace("postgres:16", "postgres:17").replace("farm/api:1", "farm/api:2"))
    start = len(cloud.mutations())
    assert newer.apply().ok
    assert cloud.mutations()[start:] == [("create", "service/db"), ("create", "service/api"),
                                         ("delete", "service/api"), ("delete", "service/db")]


# --- the check after every step ----------------------------------------------------------


def test_a_provider_that_leaves_a_wrong_result_fails_the_step(cloud):
    cloud.misapply("service/api", replicas=7)
    with pytest.raises(ApplyFailedError) as raised:
        deployment(cloud).apply()
    (failed,) = raised.value.result.failed
    assert failed.key == "service/api" and isinstance(failed.error, InconsistentResultError)
    assert "inconsistent result after apply: replicas: wanted 2, found 7" in str(failed.error)


def test_the_check_names_a_wrong_secret_by_digest_only(cloud):
    cloud.misapply("service/db", env={"POSTGRES_PASSWORD": "something-else"})
    with pytest.raises(ApplyFailedError) as raised:
        deployment(cloud).apply()
    message = str(raised.value.result.failed[0].error)
    assert "env.POSTGRES_PASSWORD: wanted (sensitive value, digest " in message
    assert 'found "something-else"' in message and SECRET not in message


def test_a_delete_that_leaves_the_resource_fails_the_step(cloud):
    class Forgetful(MemoryProvider):
        def apply(self, app, change, emit):
            if change.action is not Action.DELETE:
                super().apply(app, change, emit)

    deployment(cloud).apply()
    with pytest.raises(ApplyFailedError, match="service/api: inconsistent result after apply: still exists"):
        deployment(cloud, SPEC.replace("  api:\n", "  gone:\n"), provider=Forgetful(cloud=cloud)).apply()


# --- broken instances are drift --------------------------------------------------------------


def test_a_dead_replica_is_drift_that_apply_heals(cloud):
    deployment(cloud).apply()
    cloud.break_instance("farm", "service/api", "replica 2 exited (137)")
    again = deployment(cloud)
    planned = again.plan()
    assert planned.has_changes
    assert plan_text(planned).splitlines()[0] == "-/+ service/api replica 2 exited (137)"
    status = {s.service: s for s in again.status()}["api"]
    assert (status.healthy, status.state, status.detail) == (1, "degraded", "replica 2 exited (137)")
    again.apply(planned)
    assert not again.plan().has_changes
    assert {s.service: s.healthy for s in again.status()}["api"] == 2


# --- health is part of what exists --------------------------------------------------------------


def test_an_empty_plan_still_waits_for_what_is_not_healthy_yet(cloud):
    deployment(cloud).apply()
    cloud.health_polls, cloud._polls = 3, {}  # as if an interrupted apply had just started them
    again = deployment(cloud)
    planned = again.plan()
    assert not planned.has_changes
    start, calls = len(cloud.mutations()), len(cloud.calls)
    result = again.apply(planned)
    assert result.ok and result.changed == 0
    waited = {s.key: s.outcome for s in result.steps}
    assert waited == dict.fromkeys(("network/farm", "service/db", "service/api"), "skipped")
    assert cloud.calls[calls:].count(("health", "service/api")) == 4 and cloud.mutations()[start:] == []
    assert deployment(cloud).apply().steps == ()  # healthy now: nothing to wait for, nothing shown


def test_an_empty_plan_fails_when_a_resource_never_becomes_healthy(cloud):
    deployment(cloud).apply()
    cloud.health_polls, cloud._polls = 10**9, {}
    with pytest.raises(ApplyFailedError) as raised:
        deployment(cloud, health_timeout=0.2).apply()
    assert {s.key for s in raised.value.result.failed} >= {"service/api"}
    assert all(isinstance(s.error, HealthTimeoutError) for s in raised.value.result.failed)


class StuckHealth(MemoryProvider):
    """A provider whose health poll blocks until released (a hung emulator)."""

    def __init__(self, cloud: MemoryCloud, release: threading.Event) -> None:
        super().__init__(cloud=cloud)
        self.release = release

    def health(self, app: str, resource: Resource) -> Health:
        self.release.wait()
        return Health(HealthState.HEALTHY)


def test_a_health_poll_that_blocks_cannot_outlast_the_timeout(cloud):
    release = threading.Event()
    try:
        result = Engine(StuckHealth(cloud, release), retry=FAST, health_timeout=0.3).apply(
            deployment(cloud).plan()
        )
    finally:
        release.set()
    assert not result.ok
    (failed,) = result.failed  # the network's wait; everything behind it is blocked
    assert isinstance(failed.error, HealthTimeoutError)
    assert "not healthy after 0.3s: health check did not answer in time" in str(failed.error)
