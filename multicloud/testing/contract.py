"""The provider contract suite: every provider, ours or a third party's, runs it.

Subclass `ProviderContract` in a test module and give it a `provider` fixture::

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider(self):
            return MyProvider({"region": "test"}, client_factory=emulator_clients())

Optional fixtures to override: `contract_service` (the fields every service starts from,
e.g. an image that exists locally and a long-running command listening on port 8080).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from multicloud.api import Deployment
from multicloud.contract import Capabilities, Provider
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.spec.targets import target_spec

SECRET_VALUE = "contract-s3cr3t-Value-1f0a"  # noqa: S105 - a marker to search output for


def contract_spec(app: str, service: dict[str, Any], *, worker_env: str = "1", with_extra: bool = False) -> Any:
    """The contract's spec: an `api` with a public HTTP port and a `worker` that uses it."""
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
    return spec_from_dict(
        {
            "name": app,
            "services": services,
            "secrets": {"token": {"from_env": "CONTRACT_TOKEN"}},
            "targets": {"test": {"provider": "contract"}},
        }
    )


class ProviderContract:
    """Behaviour every provider must show; subclasses supply the `provider` fixture."""

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

    def deployment(self, spec: Any, provider: Provider) -> Deployment:
        """A Deployment of spec on the provider, with fast retries and the contract's secret."""
        return Deployment(
            spec,
            "test",
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
        assert acted and all(c.action is Action.DELETE and c.resource.service == "extra" for c in acted)
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

    def test_secret_values_never_shown(self, provider: Provider, app: str, contract_service: dict[str, Any]) -> None:
        deployment = self.deployment(contract_spec(app, contract_service), provider)
        planned = deployment.plan()
        assert SECRET_VALUE not in plan_text(planned, verbose=True)
        assert SECRET_VALUE not in str(plan_json(planned))
        deployment.apply(planned)
        shown = [repr(provider.observe(app)), repr(deployment.status()), repr(deployment.endpoints())]
        shown.append(plan_text(deployment.plan(), verbose=True))
        assert not any(SECRET_VALUE in text for text in shown)
