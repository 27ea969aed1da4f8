"""The provider contract suite: every provider, ours or a third party's, runs it.

Subclass `ProviderContract` in a test module and give it a `provider` fixture::

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider(self):
            return MyProvider({"region": "test"}, client_factory=emulator_clients())

Fixtures to give: `provider_factory` (a fresh provider of the same target on each call;
the purity test needs several), and optionally `contract_service` (the fields every service
starts from, e.g. an image that exists locally and a long-running command listening on 8080).

Class attributes to give: `replace_edits` maps each `kind.property` of your `replace_on`
sets to a SpecEdit that changes it (one parametrised test per entry checks the replace
converges in one apply); `replace_unreachable` maps the ones no spec edit can change to why.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from multicloud.api import Deployment
from multicloud.contract import Capabilities, Provider
from multicloud.errors import ApplyFailedError, InconsistentResultError, UserError
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.resources import Resource
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.spec.targets import target_spec

SECRET_VALUE = "contract-s3cr3t-Value-1f0a"  # noqa: S105 - a marker to search output for


def contract_data(app: str, service: dict[str, Any], *, worker_env: str = "1", with_extra: bool = False) -> Any:
    """The contract's spec as data: an `api` with a public HTTP port and a `worker` that uses it."""
    services: dict[str, Any] = {
        "api": {**service, "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}]},
        "worker": {
            **service,
            "depends_on": ["api"],
            "env": {"API_URL": "${services.api.url}", "TOKEN": "${secrets.token}", "LEVEL": worker_env},
        },
    }
    if with_extra:
        services["extra"] = dict(service)
    return {
        "name": app,
        "services": services,
        "secrets": {"token": {"from_env": "CONTRACT_TOKEN"}},
        "targets": {"test": {"provider": "contract"}},
    }


def contract_spec(app: str, service: dict[str, Any], *, worker_env: str = "1", with_extra: bool = False) -> Any:
    """The contract's spec (see contract_data), loaded."""
    return spec_from_dict(contract_data(app, service, worker_env=worker_env, with_extra=with_extra))


SpecEdit = Callable[[dict[str, Any]], None]
"""Changes the contract's spec data in place so that one provider property changes."""

WRONG = "(not what was asked for)"


class Misreporting:
    """The provider under test, but `read` reports a wrong value in every resource's first
    property (as a buggy provider would leave it): the engine's check must fail the step."""

    def __init__(self, provider: Provider) -> None:
        self.inner = provider
        self.name = provider.name
        self.capabilities = provider.capabilities

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def read(self, app: str, key: str) -> list[Resource]:
        """What the provider reads, with the first property replaced by WRONG."""
        found = self.inner.read(app, key)
        return [replace(r, properties={**r.properties, min(r.properties): WRONG}) if r.properties else r for r in found]


class ProviderContract:
    """Behaviour every provider must show; subclasses supply the `provider` and
    `provider_factory` fixtures and declare how to change each replace_on property."""

    replace_edits: ClassVar[dict[str, SpecEdit]] = {}
    replace_unreachable: ClassVar[dict[str, str]] = {}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One run of the replace test per declared replace_on property."""
        if "replace_field" in metafunc.fixturenames:
            fields = sorted(self.replace_edits)
            metafunc.parametrize("replace_field", fields or [pytest.param("", marks=pytest.mark.skip("none declared"))])

    @pytest.fixture
    def provider_factory(self) -> Callable[[], Provider]:
        """Fresh providers of the target under test; every provider must give this."""
        pytest.fail("give a provider_factory fixture returning a fresh provider on each call")

    @pytest.fixture
    def contract_service(self) -> dict[str, Any]:
        """Fields every contract service starts from."""
        return {"image": "registry.example.com/contract/app:1"}

    @pytest.fixture
    def app(self, provider: Provider) -> Iterator[str]:
        """A fresh app name, destroyed (volumes too) after the test."""
        name = f"ct-{uuid.uuid4().hex[:8]}"
        yield name
        spec = spec_from_dict({"name": name, "services": {"x": {"image": "x"}}, "targets": {"test": {"provider": "c"}}})
        self.deployment(spec, provider).destroy(volumes=True)

    def deployment(self, spec: Any, provider: Provider, target: str = "test") -> Deployment:
        """A Deployment of spec on the provider, with fast retries and the contract's secret."""
        return Deployment(
            spec,
            target,
            provider=provider,
            environ={"CONTRACT_TOKEN": SECRET_VALUE},
            retry=RetryPolicy(attempts=5, base_delay=0.2),
            health_timeout=120,
        )

    def test_capabilities_are_declared(self, provider: Provider) -> None:
        assert isinstance(provider.capabilities, Capabilities)
        assert isinstance(provider.name, str) and provider.name

    def test_desired_is_deterministic_and_closed(self, provider: Provider, contract_service: dict[str, Any]) -> None:
        spec = target_spec(contract_spec("ct-pure", contract_service), "test")
        first = provider.desired(spec, {"token": SECRET_VALUE})
        second = provider.desired(spec, {"token": SECRET_VALUE})
        assert first == second
        keys = [r.key for r in first]
        assert len(keys) == len(set(keys)), "resource keys must be unique"
        for resource in first:
            assert set(resource.depends_on) <= set(keys), f"{resource.key} depends on something not desired"
        assert {r.service for r in first} >= {"api", "worker"}

    def test_desired_is_pure_whatever_ran_before(
        self, provider_factory: Callable[[], Provider], app: str, contract_service: dict[str, Any]
    ) -> None:
        spec = contract_spec(app, contract_service, with_extra=True)
        self.deployment(spec, provider_factory()).apply()
        view = target_spec(spec, "test")
        secrets = {"token": SECRET_VALUE}
        runs = []
        for observe_first in (True, False, True, False):  # twice each way, each in a fresh provider
            fresh = provider_factory()
            seen = fresh.observe(app) if observe_first else None
            rendered = fresh.desired(view, secrets)
            runs.append((rendered, [r.payload for r in rendered], fresh.observe(app), seen))
        first, first_payloads, observed, _ = runs[0]
        for rendered, payloads, seen_after, seen_before in runs[1:]:
            assert rendered == first and payloads == first_payloads, "desired() depends on what ran before it"
            assert seen_after == observed, "observe() depends on whether desired() ran before it"
            assert seen_before in (None, observed)
        # what apply needs travels in the plan: a plan (a change and a removal) made by one
        # provider, applied by a fresh one
        changed = contract_spec(app, contract_service, worker_env="2")
        planned = self.deployment(changed, provider_factory()).plan()
        assert self.deployment(changed, provider_factory()).apply(planned).ok
        assert not self.deployment(changed, provider_factory()).plan().has_changes

    def test_every_replace_on_property_is_declared(self, provider: Provider, contract_service: dict[str, Any]) -> None:
        spec = target_spec(contract_spec("ct-fields", contract_service), "test")
        fields = {f"{r.kind}.{f}" for r in provider.desired(spec, {"token": SECRET_VALUE}) for f in r.replace_on}
        undeclared = sorted(fields - set(self.replace_edits) - set(self.replace_unreachable))
        assert not undeclared, f"declare in replace_edits (or replace_unreachable, with why): {undeclared}"

    def test_each_replace_on_property_converges_in_one_apply(
        self, provider: Provider, app: str, contract_service: dict[str, Any], replace_field: str
    ) -> None:
        base = contract_data(app, contract_service)
        self.deployment(spec_from_dict(base), provider).apply()
        data = copy.deepcopy(base)
        self.replace_edits[replace_field](data)
        changed = self.deployment(spec_from_dict(data), provider)
        planned = changed.plan()
        kind, _, name = replace_field.partition(".")
        forced = {
            (c.resource.kind, f.path.split(".")[0].split("[")[0])
            for c in planned.changes
            if c.action is Action.REPLACE
            for f in c.fields
            if f.forces_replace
        }
        assert (kind, name) in forced, f"the edit does not force a replace through {replace_field}:\n" + plan_text(
            planned
        )
        assert changed.apply(planned).ok
        again = changed.plan()
        assert not again.has_changes, "one apply must converge (plan --detailed-exitcode = 0):\n" + plan_text(again)

    def test_a_wrong_result_after_apply_fails_the_step(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        deployment = self.deployment(contract_spec(app, contract_service), Misreporting(provider))
        with pytest.raises(ApplyFailedError) as raised:
            deployment.apply()
        failed = raised.value.result.failed
        assert failed and all(isinstance(s.error, InconsistentResultError) for s in failed)
        assert all("inconsistent result after apply: " in str(s.error) and WRONG in str(s.error) for s in failed)

    def test_unknown_app_observes_nothing(self, provider: Provider) -> None:
        assert provider.observe(f"ct-absent-{uuid.uuid4().hex[:8]}") == []

    def test_apply_converges_and_reapply_changes_nothing(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        deployment = self.deployment(contract_spec(app, contract_service), provider)
        first = deployment.apply()
        assert first.ok and first.changed > 0
        desired = provider.desired(deployment.target_spec, {"token": SECRET_VALUE})
        observed = {r.key: set(r.depends_on) for r in provider.observe(app)}
        expected = {r.key: set(r.depends_on) for r in desired}
        assert observed == expected, "observe must return what apply made, with its depends_on"
        assert not deployment.plan().has_changes, plan_text(deployment.plan())
        again = deployment.apply()
        assert again.changed == 0
        services = {s.service: s for s in deployment.status()}
        assert set(services) >= {"api", "worker"}
        assert all(s.desired == 1 for s in services.values())
        public = [e for e in deployment.endpoints() if e.public]
        assert [(e.service, e.port) for e in public] == [("api", "http")]

    def test_env_change_touches_only_that_service(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        self.deployment(contract_spec(app, contract_service), provider).apply()
        changed = self.deployment(contract_spec(app, contract_service, worker_env="2"), provider)
        planned = changed.plan()
        touched = {c.resource.service for c in planned.changes if c.action is not Action.NOOP}
        assert touched == {"worker"}, plan_text(planned)
        changed.apply(planned)
        assert not changed.plan().has_changes

    def test_removing_a_service_deletes_only_it(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        self.deployment(contract_spec(app, contract_service, with_extra=True), provider).apply()
        smaller = self.deployment(contract_spec(app, contract_service), provider)
        planned = smaller.plan()
        acted = [c for c in planned.changes if c.action is not Action.NOOP]
        deleted = [c for c in acted if c.action is Action.DELETE]
        assert deleted and all(c.resource.service == "extra" for c in deleted), plan_text(planned)
        # a resource the services share may be updated to leave it out (ACI re-sends the whole group),
        # or replaced where the platform cannot resize it in place (an ACI group)
        shared = (Action.UPDATE, Action.REPLACE)
        assert all(c.action in shared and c.resource.service is None for c in acted if c not in deleted)
        smaller.apply(planned)
        assert "extra" not in {r.service for r in provider.observe(app)}

    def test_destroy_removes_the_app_and_nothing_else(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        other = f"ct-{uuid.uuid4().hex[:8]}"
        mine = self.deployment(contract_spec(app, contract_service), provider)
        theirs = self.deployment(contract_spec(other, contract_service), provider)
        mine.apply()
        theirs.apply()
        try:
            before = provider.observe(other)
            mine.destroy(volumes=True)
            assert provider.observe(app) == []
            assert provider.observe(other) == before
        finally:
            theirs.destroy(volumes=True)
        assert provider.observe(other) == []

    def test_two_targets_of_one_spec_coexist(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        data = contract_data(app, contract_service)
        staging_app = f"{app}-stg"
        data["targets"] = {
            "test": {"provider": "contract"},  # prod; the app fixture destroys it afterwards
            "staging": {"provider": "contract", "app": staging_app, "defaults": {"env": {"STAGE": "staging"}}},
        }
        spec = spec_from_dict(data)
        prod, staging = self.deployment(spec, provider), self.deployment(spec, provider, "staging")
        assert (prod.app, staging.app) == (app, staging_app)
        prod.apply()
        planned = staging.plan()
        assert {c.action for c in planned.changes} == {Action.CREATE}, plan_text(planned)
        try:
            staging.apply(planned)
            assert not prod.plan().has_changes and not staging.plan().has_changes
            worker = next(s for s in staging.target_spec.services.values() if "API_URL" in s.env)
            assert worker.env["STAGE"] == "staging" and "STAGE" not in prod.target_spec.services["worker"].env
            before = provider.observe(app)
        finally:
            staging.destroy(volumes=True)
        assert provider.observe(staging_app) == []
        assert provider.observe(app) == before
        assert not prod.plan().has_changes

    def test_a_target_never_plans_against_another_targets_app(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        data = contract_data(app, contract_service)
        data["targets"] = {"test": {"provider": "contract"}, "staging": {"provider": "contract"}}  # one app name
        spec = spec_from_dict(data)
        prod, staging = self.deployment(spec, provider), self.deployment(spec, provider, "staging")
        prod.apply()
        before = provider.observe(app)
        # what a provider finds by tags reports its target; a few kinds found otherwise (AWS Cloud Map
        # markers, ECR repository names) report none, which counts as this target's
        assert before and {r.target for r in before} <= {"test", ""} and any(r.target == "test" for r in before)
        for destroy in (False, True):
            with pytest.raises(UserError, match=r"(?s)belongs to target 'test'.*targets.staging.app"):
                staging.plan(destroy=destroy)
        assert provider.observe(app) == before and not prod.plan().has_changes

    def test_secret_values_never_shown(self, provider: Provider, app: str, contract_service: dict[str, Any]) -> None:
        deployment = self.deployment(contract_spec(app, contract_service), provider)
        planned = deployment.plan()
        assert SECRET_VALUE not in plan_text(planned, verbose=True)
        assert SECRET_VALUE not in str(plan_json(planned))
        deployment.apply(planned)
        shown = [repr(provider.observe(app)), repr(deployment.status()), repr(deployment.endpoints())]
        shown.append(plan_text(deployment.plan(), verbose=True))
        assert not any(SECRET_VALUE in text for text in shown)
