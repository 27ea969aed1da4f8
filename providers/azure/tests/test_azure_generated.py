"""A generated secret on the emulated ACI: ACI has no secret store (multicloud does not use Key Vault), so
the value is kept in the machine-local 0600 store; a later plan from a fresh provider changes nothing, the
group carries only its digest, and a destroy that leaves no volume forgets it."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

from multicloud_azure.provider import AzureAciProvider

from multicloud.api import Deployment
from multicloud.render import plan_json, plan_text
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict


def _deployment(provider: AzureAciProvider, app: str) -> Deployment:
    spec = spec_from_dict({
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1", "env": {"TOKEN": "${secrets.token}"},
                             "ports": [{"name": "http", "port": 8080, "protocol": "http"}]}},
        "secrets": {"token": {"generate": True}},
        "targets": {"azure": {"provider": "azure-aci"}},
    })
    return Deployment(spec, "azure", provider=provider, environ={}, retry=RetryPolicy(attempts=5, base_delay=0.05))


def test_generated_secret_on_aci_is_kept_locally(make_provider: Callable[..., AzureAciProvider],
                                                 resource_group: str, _state_dir: Path) -> None:
    app = f"gen-{resource_group[3:]}"
    first = _deployment(make_provider(), app)
    planned = first.plan()
    assert first.apply(planned).ok
    kept = _state_dir / "secrets" / "azure-aci" / app / "azure" / "token"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    value = kept.read_text()
    provider = make_provider()
    again = _deployment(provider, app)
    assert not again.plan().has_changes
    groups = [r.payload for r in provider.observe(app)]
    shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), json.dumps(groups, default=str)]
    assert not any(value in text for text in shown)
    again.destroy()
    assert provider.observe(app) == [] and not kept.exists()
