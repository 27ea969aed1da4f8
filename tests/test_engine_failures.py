"""The engine's failures, retries and health waits, against the in-memory provider."""

from __future__ import annotations

import dataclasses

import pytest

from multicloud.api import Deployment
from multicloud.engine import Engine
from multicloud.errors import ApplyFailedError, FatalError, HealthTimeoutError, ProviderError, RetryableError
from multicloud.planner import plan
from multicloud.retry import RetryPolicy
from multicloud.spec import loads, target_spec
from multicloud.testing import MemoryCloud, MemoryProvider
from tests.engine_shop import ALL, ENV, FAST, SPEC, deployment, outcomes

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
