"""The contract of a provider that provides `postgres` resources (see multicloud.backing): subclass
`PostgresContract` (a ProviderContract: the same fixtures, every test of both) where the provider
lists "postgres" in `Capabilities.resources`::

    class TestMyProvider(PostgresContract): ...

One test, so a slow platform pays for its applies and destroys only once.
"""

from __future__ import annotations

import json
from typing import Any

from multicloud.contract import Provider
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.spec import spec_from_dict
from multicloud.testing.contract import SECRET_VALUE, ProviderContract, contract_data


def postgres_data(app: str, service: dict[str, Any], **hints: Any) -> dict[str, Any]:
    """The contract's spec with a database `db` the worker reaches by URL (a secret file where the
    target has files, else the value) and by its parts."""
    data: dict[str, Any] = contract_data(app, service)
    env = data["services"]["worker"]["env"]
    env.update(DATABASE_URL="${resources.db.url}", DB_HOST="${resources.db.host}", DB_PORT="${resources.db.port}",
               DB_NAME="${resources.db.name}")
    data["resources"] = {"db": {"type": "postgres", "version": 15, **hints}}
    return data


class PostgresContract(ProviderContract):
    """Behaviour of every provider of `postgres` resources, besides every provider's."""

    def test_a_database_is_made_first_stays_put_is_never_shown_and_kept_by_destroy(
        self, provider: Provider, app: str, contract_service: dict[str, Any]
    ) -> None:
        assert "postgres" in provider.capabilities.resources
        data = postgres_data(app, contract_service)
        deploy = self.deployment(spec_from_dict(data), provider)
        planned = deploy.plan()
        steps = {c.key: c for c in planned.changes}
        assert steps["postgres/db"].action is Action.CREATE
        workers = [c for c in planned.changes if c.resource.service == "worker"]
        assert any("postgres/db" in c.requires or "postgres/db" in c.resource.depends_on for c in workers)
        assert deploy.apply(planned).ok
        values = deploy._secret_values()
        again = self.deployment(spec_from_dict(data), provider)
        replanned = again.plan()
        assert not replanned.has_changes, plan_text(replanned)
        shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), repr(provider.observe(app))]
        secret = [values["resources_db_password"], values["resources_db_url"], SECRET_VALUE]
        assert not any(value in text for value in secret for text in shown)

        gone = again.plan(destroy=True)
        assert gone.kept, "destroy must keep the database or its data"
        assert again.destroy(gone).ok
        assert provider.observe(app), "what holds the data is still there"
        back = self.deployment(spec_from_dict(data), provider)
        assert back.apply().ok  # on the kept data, with the kept password
        assert back._secret_values()["resources_db_url"] == values["resources_db_url"]
        assert back.destroy(volumes=True).ok
        assert provider.observe(app) == []
        data["resources"]["db"]["deletion"] = "delete"
        deleting = self.deployment(spec_from_dict(data), provider)
        assert deleting.apply().ok
        assert not deleting.plan(destroy=True).kept
