"""The engine: carries out a plan in dependency order, level-based and concurrent."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from multicloud.contract import Event, EventSink, Health, HealthState, Provider
from multicloud.errors import (
    FatalError,
    HealthTimeoutError,
    InconsistentResultError,
    MulticloudError,
    ProviderError,
    RetryableError,
)
from multicloud.planner import Action, Change, Plan, choose, diff, field_changes, retire_order
from multicloud.render import show_value
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy, call_with_retries

Outcome = Literal["done", "skipped", "settled", "failed", "blocked"]


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
        A failed step blocks only its dependents; what was done stays done for the next run.
        When every step succeeded, the resources the plan left alone are waited for too, until
        healthy: an interrupted apply may have left them starting. Those appear in the result
        only when they had to be waited for or never became healthy."""
        acting = [c for c in plan.changes if c.action is not Action.NOOP]
        wanted = {c.key: c.after for c in plan.changes if c.after is not None}
        results = self._run(plan.app, acting, lambda app, change: self._step(app, change, wanted.get(change.key)))
        if all(r.outcome in ("done", "skipped") for r in results.values()):
            retiring = retire_order(acting)
            instances = self._instances(plan.app, len(retiring))
            swept = self._run(plan.app, retiring, lambda app, change: self._sweep(app, change, instances))
            results.update({f"{k}#sweep": r for k, r in swept.items() if r.outcome == "failed"})
        if all(r.outcome in ("done", "skipped") for r in results.values()):
            idle = [c for c in plan.changes if c.action is Action.NOOP and c.after is not None
                    and not (c.before is not None and c.before.healthy)]  # observed healthy: settled
            deadline = time.monotonic() + self.health_timeout  # one for all: they wait side by side
            results.update(self._run(plan.app, idle, lambda app, change: self._settle(app, change, deadline)))
        order = [c.id for c in plan.changes if c.id in results and results[c.id].outcome != "settled"]
        order += [k for k in results if k.endswith("#sweep")]
        return ApplyResult(plan.app, plan.target, tuple(results[k] for k in order))

    def _run(
        self, app: str, changes: list[Change], job: Callable[[str, Change], StepResult]
    ) -> dict[str, StepResult]:
        """Run `job` for each change once the steps it requires among them succeeded."""
        pending = {c.id: c for c in changes}
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
                        results[key] = StepResult(change.key, change.action, "blocked")
                        self._event("blocked", change.key, "not attempted: a step it depends on failed")
                        del pending[key]
                        progressed = True
                    elif all(s in ("done", "skipped", "settled") for s in states):
                        running[pool.submit(job, app, change)] = key
                        del pending[key]
                        progressed = True
                if not running:
                    if not progressed:
                        self._fail_unschedulable(pending, results)
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    results[running.pop(future)] = future.result()
        return results

    def _fail_unschedulable(self, pending: dict[str, Change], results: dict[str, StepResult]) -> None:
        """Nothing runs yet steps remain, so their requirements wait on each other (a planner-made
        plan never does this). Fail the first such step rather than wait forever; the steps
        behind it are then blocked as usual."""
        key, change = next(iter(pending.items()))
        error = FatalError(f"{key}: its required steps form a cycle ({', '.join(change.requires)})")
        results[key] = StepResult(change.key, change.action, "failed", error=error)
        self._event("failed", change.key, str(error))
        del pending[key]

    def _settle(self, app: str, change: Change, deadline: float) -> StepResult:
        """Wait until a resource the plan leaves alone is healthy, at the latest until deadline;
        'settled' (left out of the result) when it already is."""
        started = time.monotonic()
        assert change.after is not None
        try:
            waited = self._wait_healthy(app, change.after, started, deadline)
        except MulticloudError as exc:
            self._event("failed", change.key, str(exc), started)
            return StepResult(change.key, change.action, "failed", 0, time.monotonic() - started, exc)
        if not waited:
            return StepResult(change.key, change.action, "settled")
        self._event("skipped", change.key, "already as desired, now healthy", started)
        return StepResult(change.key, change.action, "skipped", 0, time.monotonic() - started)

    def _instances(self, app: str, keys: int) -> Callable[[str], list[Resource]]:
        """How the sweep first reads a key again: by reading it when it sweeps one key or the provider's
        reads are cheap, else from one observe of the app made when the first key is swept (one list of
        everything costs fewer calls than a read per key, which ran in dependency order; a failed observe
        fails that key's first attempt and the next read tries again)."""
        if keys < 2 or self.provider.capabilities.cheap_reads:
            return lambda key: self.provider.read(app, key)
        lock = threading.Lock()
        seen: list[list[Resource]] = []

        def instances(key: str) -> list[Resource]:
            with lock:
                if not seen:
                    seen.append(self.provider.observe(app))
            return [r for r in seen[0] if r.key == key]

        return instances

    def _sweep(self, app: str, change: Change, instances: Callable[[str], list[Resource]]) -> StepResult:
        """Once every step is done, read a key a step changed again (first from `instances`, on a
        retry by a read) and delete any instance of it other than the one kept: the old instance
        of a create-before-delete replace, now that what used it has moved (dependents' sweeps run
        first), or one an interrupted apply's last calls left (a create the engine was still
        carrying out when the client died). Failures become a failed StepResult; the old instance
        is then deleted by the next apply."""
        started = time.monotonic()
        after = change.after
        assert after is not None
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            found = instances(change.key) if attempts == 1 else self.provider.read(app, change.key)
            _, extra = choose(after, found)
            for instance in extra:
                replaced = change.before is not None and instance.instance == change.before.instance
                why = "it was replaced and what used it has moved" if replaced else "it appeared during the apply"
                delete = Change(Action.DELETE, change.key, instance, None, reason=why)
                self._call(app, delete, started, f"deleting {instance.instance or 'the old instance'}: {why}")
            return bool(extra)

        try:
            deleted, _ = call_with_retries(attempt, self.retry, on_retry=self._retry_note(change.key, started),
                                           sleep=self.sleep, rng=self._rng)
        except MulticloudError as exc:
            self._event("failed", change.key, str(exc), started)
            return StepResult(change.key, Action.DELETE, "failed", attempts, time.monotonic() - started, exc)
        outcome: Outcome = "done" if deleted else "settled"
        return StepResult(change.key, Action.DELETE, outcome, attempts, time.monotonic() - started)

    def _step(self, app: str, change: Change, desired: Resource | None) -> StepResult:
        """Run one step with retries: re-read, act on the difference found, verify, wait for
        health. `desired` is what the plan wants under the step's key, if anything. Failures
        become a failed StepResult; nothing is raised."""
        started = time.monotonic()
        self._event("start", change.key, f"{change.action.value} started", started)
        attempts = 0

        def attempt() -> Action:
            nonlocal attempts
            attempts += 1
            return self._converge(app, change, started, desired)

        try:
            action, _ = call_with_retries(attempt, self.retry, on_retry=self._retry_note(change.key, started),
                                          sleep=self.sleep, rng=self._rng)
            if change.after is not None:  # done now, or by an earlier, interrupted apply: may still be starting
                self._wait_healthy(app, change.after, started)
            if action is Action.NOOP:
                self._event("skipped", change.key, "already as desired", started)
                return StepResult(change.key, change.action, "skipped", attempts, time.monotonic() - started)
        except MulticloudError as exc:
            self._event("failed", change.key, str(exc), started)
            return StepResult(change.key, change.action, "failed", attempts, time.monotonic() - started, exc)
        except Exception as exc:  # a provider bug must not take the other steps down
            error = ProviderError(f"{change.key}: unexpected {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._event("failed", change.key, str(error), started)
            return StepResult(change.key, change.action, "failed", attempts, time.monotonic() - started, error)
        self._event("done", change.key, f"{action.value} complete", started)
        return StepResult(change.key, action, "done", attempts, time.monotonic() - started)

    def _retry_note(self, key: str, started: float) -> Callable[[int, RetryableError, float], None]:
        """The callback that reports a failed attempt about to be retried."""

        def on_retry(number: int, exc: RetryableError, wait_s: float) -> None:
            self._event("retry", key, f"attempt {number} failed ({exc.message}); retrying in {wait_s:.1f}s", started)

        return on_retry

    def _converge(self, app: str, change: Change, started: float, desired: Resource | None) -> Action:
        """One attempt of a step from what exists now: delete the instance the step names
        (unless it has become the one kept for `desired`: an interrupted create finished
        since the plan), or create/update/replace towards the desired resource, then verify.
        Return what was done (NOOP when nothing was needed)."""
        found = self.provider.read(app, change.key)
        if change.after is None:
            assert change.before is not None
            _, stale = choose(desired, found) if desired is not None else (None, found)
            doomed = [r for r in stale if r.instance == change.before.instance]
            for instance in doomed:
                self._call(app, Change(Action.DELETE, change.key, instance, None, reason=change.reason), started)
            if doomed:
                self._verify_gone(app, change.key, change.before.instance)
            return Action.DELETE if doomed else Action.NOOP
        current, others = choose(change.after, found)
        step = diff(change.after, current)
        # the instance the plan meant to replace, no longer the one kept: the new one was made
        # by an earlier attempt of this step, or by an interrupted apply that finished since
        leftover = [r for r in others if change.before is not None and r.instance == change.before.instance != ""]
        after = change.after
        if step.action is Action.CREATE:
            self._call(app, Change(Action.CREATE, change.key, None, after, reason=step.reason), started)
        elif step.action is Action.UPDATE:
            self._call(app, step, started)
        elif step.action is Action.REPLACE:
            assert current is not None
            create = Change(Action.CREATE, change.key, None, after, reason=step.reason)
            delete = Change(Action.DELETE, change.key, current, None, reason=step.reason)
            if after.replace_mode == "create-before-delete":
                # the old instance goes once the steps that use this key are done (see _sweep),
                # as what still refers to it may refuse its removal (AWS DependencyViolation)
                self._call(app, create, started, "replace: creating the new instance beside the old one")
                self._wait_healthy(app, after, started)
            else:
                self._call(app, delete, started, "replace: deleting the old instance first")
                self._call(app, create, started, "replace: creating the new instance")
        retiring = after.replace_mode == "create-before-delete"  # leftovers go in _sweep, after their users
        for instance in [] if retiring else leftover:
            delete = Change(Action.DELETE, change.key, instance, None, reason=step.reason)
            self._call(app, delete, started, "replace: deleting the old instance an earlier attempt left")
        if step.action is Action.NOOP and not leftover:
            return Action.NOOP
        self._verify(app, after)
        if step.action is Action.NOOP:
            return Action.REPLACE if retiring else Action.DELETE
        return step.action

    def _call(self, app: str, change: Change, started: float, say: str = "") -> None:
        """Hand one create, update or delete to the provider, saying first why if asked."""
        if say:
            self._event("progress", change.key, say, started)
        self.provider.apply(app, change, self._sink(started))

    def _verify(self, app: str, desired: Resource) -> None:
        """Re-read after apply; raise InconsistentResultError unless what exists is what was asked for."""
        current, _ = choose(desired, self.provider.read(app, desired.key))
        if current is None:
            raise InconsistentResultError(f"{desired.key}: inconsistent result after apply: it does not exist")
        for change in field_changes(desired, current):
            wanted, found = show_value(change.after, digest=True), show_value(change.before, digest=True)
            raise InconsistentResultError(
                f"{desired.key}: inconsistent result after apply: {change.path}: wanted {wanted}, found {found}",
                hint="the provider reported success but left something else; this is a provider bug",
            )

    def _verify_gone(self, app: str, key: str, instance: str) -> None:
        """Re-read after a delete; raise InconsistentResultError if the instance is still there."""
        if any(r.instance == instance for r in self.provider.read(app, key)):
            raise InconsistentResultError(f"{key}: inconsistent result after apply: still exists after delete")

    def _wait_healthy(self, app: str, resource: Resource, started: float, deadline: float | None = None) -> bool:
        """Poll health until healthy, within health_timeout (or until deadline) even if a poll
        itself hangs; return whether it had to wait. Raise HealthTimeoutError or FatalError
        when it is not healthy."""
        if deadline is None:
            deadline = time.monotonic() + self.health_timeout
        interval = 0.05
        last = ""
        polls = 0
        while True:
            polls += 1
            health = self._poll(app, resource, deadline)
            if health.state is HealthState.HEALTHY:
                return polls > 1
            if health.state is HealthState.UNHEALTHY:
                raise FatalError(f"{resource.key} is unhealthy: {health.message}")
            if health.message != last and time.monotonic() < deadline:
                self._event("waiting", resource.key, f"waiting for health: {health.message}", started)
                last = health.message
            if time.monotonic() >= deadline:
                why = health.message if health.message == last or polls == 1 else f"{last}; then {health.message}"
                raise HealthTimeoutError(
                    f"{resource.key} not healthy after {self.health_timeout:g}s: {why}",
                    hint="check `multicloud logs` for the service; the next apply resumes from here",
                )
            self.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, self.provider.capabilities.health_poll)

    def _poll(self, app: str, resource: Resource, deadline: float) -> Health:
        """One health poll, given up (as still starting) at the deadline: a poll that blocks
        keeps running in a daemon thread, its answer unused."""
        answer: list[Health] = []

        def poll() -> None:
            try:
                answer.append(self.provider.health(app, resource))
            except RetryableError as exc:  # a failed poll is not an unhealthy resource
                answer.append(Health(HealthState.STARTING, f"health check failed ({exc.message}); polling again"))
            except BaseException as exc:  # handed to the waiting thread, raised there
                failure.append(exc)

        failure: list[BaseException] = []
        worker = threading.Thread(target=poll, name="multicloud-health", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if failure:
            raise failure[0]
        if not answer:
            return Health(HealthState.STARTING, "health check did not answer in time")
        return answer[0]

    def _sink(self, started: float) -> EventSink:
        def sink(event: Event) -> None:
            self._event(event.kind, event.resource, event.message, started)

        return sink

    def _event(self, kind: str, key: str, message: str, started: float | None = None) -> None:
        elapsed = time.monotonic() - started if started is not None else 0.0
        with self._emit_lock:
            self.emit(Event(kind, key, message, elapsed))
