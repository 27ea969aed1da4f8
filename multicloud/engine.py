"""The engine: carries out a plan in dependency order, level-based and concurrent."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Literal

from multicloud.contract import Event, EventSink, Health, HealthState, Provider
from multicloud.errors import FatalError, HealthTimeoutError, MulticloudError, ProviderError, RetryableError
from multicloud.planner import Action, Change, Plan, diff
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy, call_with_retries

Outcome = Literal["done", "skipped", "failed", "blocked"]


@dataclass(frozen=True)
class StepResult:
    """What happened to one plan step."""

    key: str
    action: Action
    outcome: Outcome
    attempts: int = 0
    seconds: float = 0.0
    error: MulticloudError | None = None


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of an apply or destroy, step by step."""

    app: str
    target: str
    steps: tuple[StepResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no step failed or was blocked by a failure."""
        return all(s.outcome in ("done", "skipped") for s in self.steps)

    @property
    def failed(self) -> list[StepResult]:
        """The steps that failed (not those blocked behind them)."""
        return [s for s in self.steps if s.outcome == "failed"]

    @property
    def changed(self) -> int:
        """How many steps changed something."""
        return sum(1 for s in self.steps if s.outcome == "done")


def _ignore(_: Event) -> None:
    return None


class Engine:
    """Applies plans against one provider; holds no state between applies."""

    def __init__(
        self,
        provider: Provider,
        *,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        health_timeout: float = 300.0,
        emit: EventSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        self.provider = provider
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryPolicy()
        self.health_timeout = health_timeout
        self.emit = emit or _ignore
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._emit_lock = threading.Lock()

    def apply(self, plan: Plan) -> ApplyResult:
        """Run every step whose requirements succeeded; independent steps run concurrently.
        A failed step blocks only its dependents; what was done stays done for the next run."""
        pending = {c.key: c for c in plan.changes if c.action is not Action.NOOP}
        steps = set(pending)
        results: dict[str, StepResult] = {}
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="multicloud-step") as pool:
            while pending or running:
                progressed = False
                for key, change in list(pending.items()):
                    # a requirement that is not a step of this apply (a no-op) is already met
                    states = [results[r].outcome if r in results else None for r in change.requires if r in steps]
                    if any(s in ("failed", "blocked") for s in states):
                        results[key] = StepResult(key, change.action, "blocked")
                        self._event("blocked", key, "not attempted: a step it depends on failed")
                        del pending[key]
                        progressed = True
                    elif all(s in ("done", "skipped") for s in states):
                        running[pool.submit(self._step, plan.app, change)] = key
                        del pending[key]
                        progressed = True
                if not running:
                    if not progressed:
                        self._fail_unschedulable(pending, results)
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    results[running.pop(future)] = future.result()
        order = [c.key for c in plan.changes if c.key in results]
        return ApplyResult(plan.app, plan.target, tuple(results[k] for k in order))

    def _fail_unschedulable(self, pending: dict[str, Change], results: dict[str, StepResult]) -> None:
        """Nothing runs yet steps remain, so their requirements wait on each other (a planner-made
        plan never does this). Fail the first such step rather than wait forever; the steps
        behind it are then blocked as usual."""
        key, change = next(iter(pending.items()))
        error = FatalError(f"{key}: its required steps form a cycle ({', '.join(change.requires)})")
        results[key] = StepResult(key, change.action, "failed", error=error)
        self._event("failed", key, str(error))
        del pending[key]

    def _step(self, app: str, change: Change) -> StepResult:
        started = time.monotonic()
        self._event("start", change.key, f"{change.action.value} started", started)
        attempts = 0

        def attempt() -> Change:
            nonlocal attempts
            attempts += 1
            current = self.provider.read(app, change.key)
            if change.after is None and current is None:
                return replace(change, action=Action.NOOP)
            step = replace(diff(change.after, current), requires=change.requires)
            if step.action is not Action.NOOP:
                self.provider.apply(app, step, self._sink(started))
            return step

        def on_retry(number: int, exc: RetryableError, wait_s: float) -> None:
            message = f"attempt {number} failed ({exc.message}); retrying in {wait_s:.1f}s"
            self._event("retry", change.key, message, started)

        try:
            step, _ = call_with_retries(attempt, self.retry, on_retry=on_retry, sleep=self.sleep, rng=self._rng)
            if step.action is Action.NOOP:
                if change.after is not None:  # done by an earlier, interrupted apply: may still be starting
                    self._wait_healthy(app, change.after, started)
                self._event("skipped", change.key, "already as desired", started)
                return StepResult(change.key, change.action, "skipped", attempts, time.monotonic() - started)
            if step.after is not None:
                self._wait_healthy(app, step.after, started)
        except MulticloudError as exc:
            self._event("failed", change.key, str(exc), started)
            return StepResult(change.key, change.action, "failed", attempts, time.monotonic() - started, exc)
        except Exception as exc:  # a provider bug must not take the other steps down
            error = ProviderError(f"{change.key}: unexpected {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._event("failed", change.key, str(error), started)
            return StepResult(change.key, change.action, "failed", attempts, time.monotonic() - started, error)
        self._event("done", change.key, f"{step.action.value} complete", started)
        return StepResult(change.key, step.action, "done", attempts, time.monotonic() - started)

    def _wait_healthy(self, app: str, resource: Resource, started: float) -> None:
        """Poll health until healthy; raise HealthTimeoutError or FatalError when it is not."""
        deadline = time.monotonic() + self.health_timeout
        interval = 0.05
        last = ""
        while True:
            try:
                health = self.provider.health(app, resource)
            except RetryableError as exc:  # a failed poll is not an unhealthy resource
                health = Health(HealthState.STARTING, f"health check failed ({exc.message}); polling again")
            if health.state is HealthState.HEALTHY:
                return
            if health.state is HealthState.UNHEALTHY:
                raise FatalError(f"{resource.key} is unhealthy: {health.message}")
            if health.message != last:
                self._event("waiting", resource.key, f"waiting for health: {health.message}", started)
                last = health.message
            if time.monotonic() >= deadline:
                raise HealthTimeoutError(
                    f"{resource.key} not healthy after {self.health_timeout:.0f}s: {health.message}",
                    hint="check `multicloud logs` for the service; the next apply resumes from here",
                )
            self.sleep(interval)
            interval = min(interval * 2, 0.5)

    def _sink(self, started: float) -> EventSink:
        def sink(event: Event) -> None:
            self._event(event.kind, event.resource, event.message, started)

        return sink

    def _event(self, kind: str, key: str, message: str, started: float | None = None) -> None:
        elapsed = time.monotonic() - started if started is not None else 0.0
        with self._emit_lock:
            self.emit(Event(kind, key, message, elapsed))
