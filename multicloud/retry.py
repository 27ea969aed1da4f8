"""Retries with capped exponential backoff and full jitter, for RetryableError only: a number of
tries (the engine's steps) or as many as fit before a deadline (a provider waiting for the cloud)."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from multicloud.errors import MulticloudError, RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure: at most `attempts` tries and,
    with `deadline`, no wait that would end more than `deadline` seconds after the first try."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    deadline: float | None = None

    @classmethod
    def within(cls, seconds: float, *, base_delay: float = 0.25, max_delay: float = 10.0) -> RetryPolicy:
        """A policy bounded by time only: retry for `seconds`, however many tries that takes."""
        return cls(attempts=sys.maxsize, base_delay=base_delay, max_delay=max_delay, deadline=seconds)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter delay before retry number `attempt` (1-based)."""
        growth = 2.0 ** min(attempt - 1, 64)  # capped: many attempts must not overflow a float
        return rng.uniform(0, min(self.max_delay, self.base_delay * growth))


def call_with_retries(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    retry_on: Callable[[RetryableError], bool] | None = None,
    on_retry: Callable[[int, RetryableError, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """Run operation, retrying RetryableError (those retry_on accepts, when given); return
    (result, attempts). Other errors propagate at once; the last RetryableError propagates when
    the policy's attempts or deadline run out."""
    rng = rng or random.Random()
    stop = None if policy.deadline is None else clock() + policy.deadline
    attempt = 1
    while True:
        try:
            return operation(), attempt
        except RetryableError as exc:
            if attempt >= policy.attempts or (retry_on is not None and not retry_on(exc)):
                raise
            wait = policy.delay(attempt, rng)
            if exc.retry_after is not None:
                wait = max(wait, min(exc.retry_after, policy.max_delay))
            if stop is not None and clock() + wait > stop:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
            attempt += 1


class _Pending(RetryableError):
    """What wait_for's probe found is not what it waits for yet."""


def wait_for(
    probe: Callable[[], T | None],
    policy: RetryPolicy,
    *,
    timed_out: Callable[[], MulticloudError],
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call probe until it returns something other than None, backing off as the policy says;
    raise timed_out() when the policy runs out. A RetryableError from probe is waited out too (the
    last one propagates if the policy ends on it); other errors propagate at once."""

    def attempt() -> T:
        found = probe()
        if found is None:
            raise _Pending("not yet")
        return found

    try:
        return call_with_retries(attempt, policy, sleep=sleep, rng=rng, clock=clock)[0]
    except _Pending:
        raise timed_out() from None
