"""The core retry's deadline mode and wait_for: one place for backoff with jitter, bounded by time."""

from __future__ import annotations

import random

import pytest

from multicloud.errors import FatalError, RetryableError
from multicloud.retry import RetryPolicy, call_with_retries, wait_for


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_deadline_policy_retries_until_the_next_wait_would_pass_it() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def busy() -> None:
        calls.append(clock.now)
        raise RetryableError(f"busy {len(calls)}")

    policy = RetryPolicy.within(30.0, base_delay=1.0, max_delay=4.0)
    with pytest.raises(RetryableError) as caught:
        call_with_retries(busy, policy, sleep=clock.sleep, clock=clock, rng=random.Random(1))
    assert caught.value.message == f"busy {len(calls)}"  # the last error propagates
    assert len(calls) > 5  # far more tries than the attempt-count default
    assert clock.now - 100.0 <= 30.0 and max(clock.sleeps) <= 4.0


def test_a_deadline_stops_retries_even_with_attempts_left() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def busy() -> None:
        calls.append(1)
        raise RetryableError("busy", retry_after=7.0)

    with pytest.raises(RetryableError):
        call_with_retries(busy, RetryPolicy(attempts=50, base_delay=0, max_delay=10.0, deadline=20.0),
                          sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [7.0, 7.0] and len(calls) == 3  # a third wait would end at 21 s


def test_retry_on_limits_which_retryable_errors_are_retried() -> None:
    calls: list[str] = []

    def operation() -> str:
        calls.append("x")
        if len(calls) == 1:
            raise RetryableError("operation already in progress")
        raise RetryableError("quota exceeded")

    with pytest.raises(RetryableError, match="quota exceeded"):
        call_with_retries(operation, RetryPolicy(attempts=9, base_delay=0), sleep=lambda s: None,
                          retry_on=lambda exc: "already in progress" in exc.message)
    assert len(calls) == 2


def test_wait_for_returns_what_the_probe_found_once_it_finds_it() -> None:
    clock = FakeClock()
    answers = [None, None, RetryableError("throttled"), "ready"]

    def probe() -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    found = wait_for(probe, RetryPolicy.within(60.0, base_delay=0.5), sleep=clock.sleep, clock=clock,
                     timed_out=lambda: RetryableError("too slow"))
    assert found == "ready" and len(clock.sleeps) == 3


def test_wait_for_raises_the_callers_error_when_time_runs_out() -> None:
    clock = FakeClock()
    with pytest.raises(RetryableError, match="still draining") as caught:
        wait_for(lambda: None, RetryPolicy.within(10.0, base_delay=1.0, max_delay=2.0), sleep=clock.sleep,
                 clock=clock, timed_out=lambda: RetryableError("still draining"))
    assert caught.value.__cause__ is None and clock.now - 100.0 <= 10.0


def test_wait_for_lets_other_errors_through_at_once() -> None:
    calls: list[int] = []

    def probe() -> None:
        calls.append(1)
        raise FatalError("gone wrong")

    with pytest.raises(FatalError):
        wait_for(probe, RetryPolicy.within(60.0), sleep=lambda s: None, timed_out=lambda: RetryableError("x"))
    assert calls == [1]
