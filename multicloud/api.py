"""The Python API for deploy scripts: load a spec, then plan, apply and inspect a target."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from typing import Any

from multicloud import capabilities, inputs, saved_plans
from multicloud.backing import bind, connection_urls
from multicloud.certificates import renewal_due
from multicloud.contract import (
    Endpoint,
    EventSink,
    LogLine,
    Provider,
    ServiceStatus,
    SupportsExec,
    SupportsPublicNames,
    SupportsRollback,
)
from multicloud.engine import ApplyResult, Engine
from multicloud.errors import (
    ApplyFailedError,
    CapabilityError,
    Finding,
    SettingsError,
    SpecError,
    UserError,
    spec_finding,
)
from multicloud.fallbacks import as_served
from multicloud.findings import located, spec_complaint
from multicloud.generated import LocalSecretStore, SupportsSecretStore, generated_values, tls_values
from multicloud.lock import app_lock
from multicloud.ownership import refuse_foreign, stamped
from multicloud.planner import KNOWN_AFTER_APPLY, Plan, plan
from multicloud.registry import create_provider
from multicloud.resources import Resource, Sensitive
from multicloud.retry import RetryPolicy
from multicloud.saved_plans import SavedPlan, read, write
from multicloud.settings import locate
from multicloud.spec.certificate import PRIVATE_PARTS, part_name
from multicloud.spec.loader import load
from multicloud.spec.models import Spec, TlsPart
from multicloud.spec.targets import TargetSpec, read_secrets, target_spec
from multicloud.spec.variables import Variables
from multicloud.targeting import Scope, limit, scope
from multicloud.terminal import Terminal

DEFAULT_HEALTH_TIMEOUT = 300.0
"""Seconds each step waits for health when neither the caller nor the provider says otherwise."""


def _noted(resources: list[Resource], notes: Mapping[str, tuple[str, ...]]) -> list[Resource]:
    """The resources with the core's notes about each service added to its `service/NAME` resource."""
    return [replace(r, notes=(*notes[r.name], *r.notes)) if r.kind == "service" and r.name in notes else r
            for r in resources]


class Deployment:
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
        secrets: dict[str, str] = {}
        pending: dict[str, str] = {}
        if not destroy:
            self.check()
            secrets = self._secret_values()
            self.check_secrets(secrets)
            desired = self._desired(secrets)
            pending = saved_plans.pending_stand_ins(self.target_spec, secrets, self._fresh_secrets)
        observed = self.provider.observe(self.app) if observed is None else list(observed)
        refuse_foreign(self.app, self.target, observed)
        limited = self.scope(services, destroy=destroy).services if services else None

        def scoped(desired: list[Resource]) -> tuple[list[Resource], list[Resource]]:
            found = limit(desired, observed, limited) if limited is not None else (desired, list(observed))
            return stamped(found[0], self.target), found[1]

        desired, seen = scoped(desired)
        planned = plan(self.app, self.target, desired, seen, delete_persistent=destroy and volumes)
        digests = {name: Sensitive.of(value, app=self.app).digest for name, value in secrets.items()}
        shown = planned
        if pending:  # rendered with stand-ins too, for a plan applied later to find again
            planned = replace(planned, generated={name: digests[name] for name in pending})
            marked = saved_plans.with_stand_ins_marked(self._desired({**secrets, **pending}), self.app, pending)
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

    def _secret_values(self) -> dict[str, str]:
        """Every used secret's value: read from its source, generated (the stored value, else a
        fresh one that apply keeps), or composed (a resource's URL, from its generated password)."""
        environ = inputs.environ() if self._environ is None else self._environ
        values = read_secrets(self.target_spec, environ)
        store = self._secret_store()
        generated, fresh = generated_values(store, self.app, self.target_spec.generated_secrets())
        # a fresh value already planned (or handed out by secret()) stays the one apply keeps
        planned = self._fresh_secrets
        self._fresh_secrets = {name: planned.get(name, value) for name, value in fresh.items()}
        values.update({**generated, **self._fresh_secrets})
        if self.target_spec.tls_secrets():
            tls, fresh = self._tls_values(store, planned)
            self._fresh_secrets.update({**{n: v for n, v in planned.items() if n in tls}, **fresh})
            values.update(tls)
            certificates = [tls[part_name(name, "cert")] for name in self.target_spec.tls_secrets()]
            self.renewal_due = min(renewal_due(pem) for pem in certificates)
        if isinstance(store, LocalSecretStore):
            store.note_kept(self._fresh_secrets)  # a compiled form of this plan holds once the apply keeps them
        used = set(self.target_spec.used_secrets())
        return {**values, **{k: v for k, v in connection_urls(self.target_spec, values).items() if k in used}}

    def _tls_values(self, store: SupportsSecretStore, planned: Mapping[str, str]) -> tuple[dict[str, str],
                                                                                           dict[str, str]]:
        """The parts of the TLS secrets the target uses and the fresh ones among them (see
        multicloud.generated.tls_values); a SpecError at the secret for one with no name to issue for."""
        names = self.provider.public_names(self.target_spec) if isinstance(self.provider, SupportsPublicNames) else []
        try:
            return tls_values(store, self.target_spec, names, planned)
        except UserError as exc:
            finding = spec_finding(exc.message)
            if type(exc) is not UserError or finding is None:
                raise
            raise SpecError(locate(self.spec.source, (), [finding])) from exc

    def certificate_authority(self, name: str | None = None) -> str:
        """The CA certificate (PEM) of the generated TLS secret `name` (None: the only one the target uses)
        as the target's secret store holds it, for devices and operators to trust; UserError when the target
        uses no such secret or holds no CA yet (apply makes it). Reads only."""
        used = self.target_spec.tls_secrets()
        if name is None and len(used) == 1:
            name = next(iter(used))
        if name not in used:
            listed = ", ".join(used) or "none"
            which = "name one" if name is None else f"no {name!r} among them"
            raise UserError(f"target {self.target!r} uses these generated TLS secrets: {listed} ({which})")
        ca = part_name(name, "ca")
        stored = self._secret_store().stored_secrets(self.app, [ca])
        if ca not in stored:
            raise UserError(f"target {self.target!r} holds no CA for secrets.{name} yet",
                            hint="`multicloud apply` makes it (and keeps it in the target's secret store)")
        return stored[ca]

    def secret(self, name: str) -> str:
        """The value this target uses for a secret the spec's services use (read from its source, or the
        generated one its store keeps, e.g. an operator token a deploy script hands to a client); UserError
        for a name no service here uses. multicloud itself never prints it."""
        if isinstance(part := self.target_spec.secrets.get(name), TlsPart) and part.part in PRIVATE_PARTS:
            raise UserError(f"secret {name!r} is the CA's private key of secrets.{part.of}: it never leaves the "
                            "target's secret store")
        values = self._secret_values()
        if name not in values:
            raise UserError(f"no secret {name!r} is used on target {self.target!r} (used: {', '.join(values)})")
        return values[name]

    def _secret_store(self) -> SupportsSecretStore:
        """The provider when it keeps secrets itself, else the machine-local store for this target."""
        if isinstance(self.provider, SupportsSecretStore):
            return self.provider
        return LocalSecretStore(self.provider.name, self.app, self.target)

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

    def _keep_fresh_secrets(self) -> None:
        """Store the secrets this deployment generated (locally kept ones; providers keep theirs, by the
        plan's own resources) and forget them as fresh: the next plan reads them from the store."""
        store = self._secret_store()
        if self._fresh_secrets and isinstance(store, LocalSecretStore):
            renewed = [n for n in self._fresh_secrets if isinstance(self.target_spec.secrets.get(n), TlsPart)]
            store.keep(self._fresh_secrets, replace=renewed)
        self._fresh_secrets = {}

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
