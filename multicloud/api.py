"""The Python API for deploy scripts: load a spec, then plan, apply and inspect a target."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from typing import Any

from multicloud import capabilities, saved_plans
from multicloud.backing import bind
from multicloud.contract import (
    Endpoint,
    EventSink,
    LogLine,
    Provider,
    ServiceStatus,
    SupportsExec,
    SupportsRollback,
)
from multicloud.deployment_secrets import DeploymentSecrets
from multicloud.engine import ApplyResult, Engine
from multicloud.errors import (
    ApplyFailedError,
    CapabilityError,
    Finding,
    SettingsError,
    SpecError,
    UserError,
)
from multicloud.fallbacks import as_served
from multicloud.findings import located, spec_complaint
from multicloud.generated import LocalSecretStore
from multicloud.lock import app_lock
from multicloud.ownership import refuse_foreign, stamped
from multicloud.planner import KNOWN_AFTER_APPLY, Plan, plan
from multicloud.registry import create_provider
from multicloud.resources import Resource, Sensitive
from multicloud.retry import RetryPolicy
from multicloud.saved_plans import SavedPlan, read, write
from multicloud.settings import locate
from multicloud.spec.loader import load
from multicloud.spec.models import Spec
from multicloud.spec.targets import TargetSpec, target_spec
from multicloud.spec.variables import Variables
from multicloud.targeting import Scope, limit, needed_secrets, scope
from multicloud.terminal import Terminal

DEFAULT_HEALTH_TIMEOUT = 300.0
"""Seconds each step waits for health when neither the caller nor the provider says otherwise."""


def _noted(resources: list[Resource], notes: Mapping[str, tuple[str, ...]]) -> list[Resource]:
    """The resources with the core's notes about each service added to its `service/NAME` resource."""
    return [replace(r, notes=(*notes[r.name], *r.notes)) if r.kind == "service" and r.name in notes else r
            for r in resources]


class Deployment(DeploymentSecrets):
    """One spec on one target. Methods return typed results and print nothing."""

    def __init__(
        self,
        spec: Spec,
        target: str,
        *,
        provider: Provider | None = None,
        environ: Mapping[str, str] | None = None,
        on_event: EventSink | None = None,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        health_timeout: float | None = None,
    ) -> None:
        self.spec = spec
        self.target = target
        self.written: TargetSpec = target_spec(spec, target)
        """The spec as this target's section writes it, before port fallbacks."""
        self._provider = provider
        self._environ = environ
        self.on_event = on_event
        self.concurrency = concurrency
        self.retry = retry
        self.health_timeout = health_timeout
        """Seconds each step waits for health; None: the provider's capabilities.health_timeout, else 300."""
        self._fresh_secrets: dict[str, str] = {}
        self.last_plan: SavedPlan | None = None
        """The last plan this deployment made, with what it was made against."""
        self.renewal_due: datetime | None = None
        """When the first generated TLS certificate the last plan used is due to be re-issued (None: none used)."""

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        target: str,
        *,
        vars: Mapping[str, str] | None = None,
        var_files: Sequence[str | os.PathLike[str]] = (),
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Deployment:
        """Load a spec file (or several: later ones override, as `-f` repeated) with its variables
        (`vars` as `--var`, `var_files` as `--var-file`; `environ` answers MULTICLOUD_VAR_name,
        `${env.NAME}` and secrets) and deploy it to target."""
        spec = load(path, Variables(values=dict(vars or {}), files=var_files, environ=environ))
        return cls(spec, target, environ=environ, **options)

    @cached_property
    def target_spec(self) -> TargetSpec:
        """The spec as this target runs it: its section applied, served as the provider serves it
        (multicloud.fallbacks.as_served: port fallbacks, TLS ports plain behind a platform that
        terminates TLS, no optional volume where it has none, `${ports...}` bound), and
        `${resources...}` bound to where it puts them."""
        return bind(as_served(self.written, self.provider.capabilities), self.provider)

    @cached_property
    def provider(self) -> Provider:
        """The target's provider, loaded from its plugin on first use."""
        if self._provider is not None:
            return self._provider
        try:
            return create_provider(self.written.provider, self.written.settings)
        except SettingsError as exc:
            raise self._located(exc) from exc

    def _located(self, error: SettingsError) -> SpecError:
        """Turn a provider's complaints about target settings into a spec error at their lines."""
        return SpecError(locate(self.spec.source, ("targets", self.target), error.problems))

    @property
    def app(self) -> str:
        """The app's name on this target (its `app:`, else the spec's name), which labels everything it owns."""
        return self.written.app

    def check(self) -> None:
        """Raise CapabilityError if the target cannot run the spec, each finding at its line;
        touches nothing."""
        self._refuse(capabilities.violations(self.target_spec, self.provider.capabilities))

    def check_secrets(self, values: Mapping[str, str]) -> None:
        """Raise CapabilityError for secret values the target cannot store (e.g. empty ones on
        Secrets Manager), at their `secrets.NAME`; touches nothing."""
        self._refuse(capabilities.secret_violations(self.target_spec, values, self.provider.capabilities))

    def _refuse(self, found: list[Finding]) -> None:
        if found:
            raise located(self.spec, self.target, CapabilityError(self.target, self.provider.name, found))

    def _desired(self, secrets: Mapping[str, str]) -> list[Resource]:
        """The provider's desired resources; its findings about the spec or the settings come
        back at their lines."""
        try:
            return _noted(self.provider.desired(self.target_spec, secrets), self.target_spec.notes)
        except SettingsError as exc:
            raise self._located(exc) from exc
        except CapabilityError as exc:
            raise located(self.spec, self.target, exc) from exc
        except UserError as exc:
            complaint = spec_complaint(self.spec, self.target, self.provider.name, exc)
            if complaint is None:
                raise
            raise complaint from exc

    def validate(self) -> None:
        """Check that the target can run the spec, rendering its resources offline (secret
        values stand in as placeholders); raise UserError subclasses. Touches nothing."""
        self._offline_desired()

    def _offline_desired(self) -> list[Resource]:
        """The desired resources after the capability check, placeholders standing in for secret values."""
        self.check()
        return self._desired({name: f"validate-{name}" for name in self.target_spec.used_secrets()})

    def plan(
        self, *, destroy: bool = False, volumes: bool = False, services: Sequence[str] = (),
        observed: Sequence[Resource] | None = None,
    ) -> Plan:
        """Compare the spec with what exists and return the plan (limited to `services` and what they
        need, or for a destroy what needs them, when named); changes nothing. `observed`: what the
        provider's observe returned a moment ago, if the caller has it (else observed now)."""
        return self._plan(destroy=destroy, volumes=volumes, services=services, observed=observed).plan

    def desired_plan(self, *, services: Sequence[str] = ()) -> Plan:
        """The plan as if nothing existed on the target: what the spec becomes there (limited to
        `services` and what they need). Reads nothing from the target and needs no secret value
        (placeholders stand in, as for validate); changes nothing."""
        desired = self._offline_desired()
        if services:
            desired, _ = limit(desired, [], self.scope(services).services)
        return plan(self.app, self.target, stamped(desired, self.target), [])

    def scope(self, services: Sequence[str], *, destroy: bool = False) -> Scope:
        """The services a plan limited to `services` acts on, and why each other one is taken in."""
        return scope(self.target_spec.services, services, destroy=destroy)

    def _plan(
        self, *, destroy: bool, volumes: bool, services: Sequence[str], observed: Sequence[Resource] | None = None
    ) -> SavedPlan:
        """The plan, with what it was made against (see saved_plans): `observed`, else what is observed now."""
        desired: list[Resource] = []
        values: dict[str, str] = {}
        secrets: dict[str, str] = {}  # those the plan's services need: listed by digest, kept by its apply
        pending: dict[str, str] = {}
        limited = self.scope(services, destroy=destroy).services if services else None
        if not destroy:
            self.check()
            values = self._secret_values()
            self.check_secrets(values)
            desired = self._desired(values)  # every service: the plan is limited below
            secrets = values
            if limited is not None:
                needed = set(needed_secrets(self.target_spec, limited))
                secrets = {name: value for name, value in values.items() if name in needed}
                self._fresh_secrets = {name: value for name, value in self._fresh_secrets.items() if name in needed}
            pending = saved_plans.pending_stand_ins(self.target_spec, secrets, self._fresh_secrets)
        observed = self.provider.observe(self.app) if observed is None else list(observed)
        refuse_foreign(self.app, self.target, observed)

        def scoped(desired: list[Resource]) -> tuple[list[Resource], list[Resource]]:
            found = limit(desired, observed, limited) if limited is not None else (desired, list(observed))
            return stamped(found[0], self.target), found[1]

        desired, seen = scoped(desired)
        planned = plan(self.app, self.target, desired, seen, delete_persistent=destroy and volumes)
        digests = {name: Sensitive.of(value, app=self.app).digest for name, value in secrets.items()}
        shown = planned
        if pending:  # rendered with stand-ins too, for a plan applied later to find again
            planned = replace(planned, generated={name: digests[name] for name in pending})
            marked = saved_plans.with_stand_ins_marked(self._desired({**values, **pending}), self.app, pending)
            shown = plan(self.app, self.target, scoped(marked)[0], seen, delete_persistent=destroy and volumes)
            digests.update(dict.fromkeys(pending, KNOWN_AFTER_APPLY))
        self.last_plan = SavedPlan(self.app, self.target, tuple(services), destroy, volumes,
                                   saved_plans.observed_fingerprint(seen), saved_plans.plan_steps(shown), digests,
                                   plan=planned, desired=tuple(desired))
        return self.last_plan

    def save_plan(self, path: str, *, destroy: bool = False, volumes: bool = False,
                  services: Sequence[str] = ()) -> Plan:
        """Plan and write the plan to `path`: no secret values, a secret it would generate recorded as
        generated at apply (stored nowhere: `apply FILE` generates it). Writes only the file."""
        saved = self._plan(destroy=destroy, volumes=volumes, services=services)
        write(path, saved)
        return saved.plan

    def saved_plan(self, path: str) -> Plan:
        """The plan saved in `path`, if planning again gives exactly it; UserError saying what changed if not."""
        saved = read(path)
        now = self._plan(destroy=saved.destroy, volumes=saved.volumes, services=saved.services)
        saved_plans.refuse_if_changed(path, saved, now)
        return now.plan

    def apply_saved(self, path: str) -> ApplyResult:
        """Apply exactly the plan saved in `path` under the app lock, after checking (under the lock)
        that what exists, the spec and its secrets are as they were; refuses touching nothing if not."""
        saved = read(path)
        with app_lock(self.app, self.target, "destroy" if saved.destroy else "apply"):
            return self._run(self.saved_plan(path))

    def apply(self, planned: Plan | None = None, *, services: Sequence[str] = ()) -> ApplyResult:
        """Apply a plan (a fresh one when none is given, limited to `services` and what they need when
        named) under the app lock; raise ApplyFailedError carrying the result if any step failed.
        Steps re-read state first."""
        with app_lock(self.app, self.target, "apply"):
            return self._run(planned or self.plan(services=services))

    def destroy(
        self, planned: Plan | None = None, *, volumes: bool = False, services: Sequence[str] = ()
    ) -> ApplyResult:
        """Delete everything the app owns on the target (volumes only when asked), or only `services`
        and what needs them, by the given destroy plan or a fresh one; steps re-read state first."""
        with app_lock(self.app, self.target, "destroy"):
            planned = planned or self.plan(destroy=True, volumes=volumes, services=services)
            result = self._run(planned)
            store = self._secret_store()
            if not planned.kept and not services and isinstance(store, LocalSecretStore):
                store.forget()  # no volume is left whose data a generated password guards
            return result

    def status(self) -> list[ServiceStatus]:
        """Replica counts and state per service."""
        return self.provider.status(self.app)

    def endpoints(self) -> list[Endpoint]:
        """Where each exposed port is reached."""
        return self.provider.endpoints(self.app)

    def logs(
        self, service: str | None = None, *, follow: bool = False, tail: int | None = 100,
        since: datetime | None = None,
    ) -> Iterator[LogLine]:
        """Log lines of one service or of all: of the history, those written at or after `since`, then
        the last `tail` of them (None: all; 0: none, only new lines with follow)."""
        if since is None:  # providers written before `since` existed keep working
            return self.provider.logs(self.app, service, follow=follow, tail=tail)
        return self.provider.logs(self.app, service, follow=follow, tail=tail, since=since)

    def rollback(self, service: str) -> str:
        """Return a service to its previous revision (providers that keep revisions)."""
        if service not in self.target_spec.services:
            known = ", ".join(self.target_spec.services)
            raise UserError(f"no service {service!r} on target {self.target!r} (services: {known})")
        provider = self.provider
        if not isinstance(provider, SupportsRollback):
            raise UserError(f"target {self.target!r} ({provider.name}) keeps no revisions to roll back to")
        with app_lock(self.app, self.target, "rollback"):
            return provider.rollback(self.app, service)

    def exec(self, service: str, command: Sequence[str], *, replica: int = 1, terminal: Terminal) -> int:
        """Run a command in a running replica (1-based) of a service; return its exit status."""
        if service not in self.target_spec.services:
            known = ", ".join(self.target_spec.services)
            raise UserError(f"no service {service!r} on target {self.target!r} (services: {known})")
        if not command:
            raise UserError("say what to run after --, e.g. multicloud exec SERVICE -- sh")
        if replica < 1:
            raise UserError(f"--replica {replica}: replicas are numbered from 1")
        provider = self.provider
        if not isinstance(provider, SupportsExec):
            raise UserError(f"target {self.target!r} ({provider.name}) cannot run commands in a service")
        return provider.exec(self.app, service, list(command), replica=replica, terminal=terminal)

    @property
    def effective_health_timeout(self) -> float:
        """The health timeout in force: the one given, else the provider's usual one, else 300 s."""
        if self.health_timeout is not None:
            return self.health_timeout
        return self.provider.capabilities.health_timeout or DEFAULT_HEALTH_TIMEOUT

    def _run(self, planned: Plan) -> ApplyResult:
        self._keep_fresh_secrets()
        engine = Engine(
            self.provider,
            concurrency=self.concurrency,
            retry=self.retry,
            health_timeout=self.effective_health_timeout,
            emit=self.on_event,
        )
        result = engine.apply(planned)
        if not result.ok:
            failed = "; ".join(f"{s.key}: {s.error}" for s in result.failed)
            raise ApplyFailedError(
                f"{len(result.failed)} step(s) failed: {failed}",
                hint="fix the cause and apply again; it resumes from what exists now",
                result=result,
            )
        return result
