"""Retries with capped exponential backoff and full jitter, for RetryableError only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from multicloud.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter delay before retry number `attempt` (1-based)."""
        growth = 2.0 ** min(attempt - 1, 64)  # capped: many attempts must not overflow a float
        return rng.uniform(0, min(self.max_delay, self.base_delay * growth))


def call_with_retries(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, RetryableError, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Run operation, retrying RetryableError; return (result, attempts). Other errors
    propagate at once; the last RetryableError propagates when attempts run out."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return operation(), attempt
        except RetryableError as exc:
            if attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, rng)
            if exc.retry_after is not None:
                wait = max(wait, min(exc.retry_after, policy.max_delay))
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
            attempt += 1
