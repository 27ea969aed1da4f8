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
from multicloud.testing.specs import generated_token_spec


def _deployment(provider: AzureAciProvider, app: str) -> Deployment:
    spec = generated_token_spec(app, "azure", {"provider": "azure-aci"})
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


def test_generated_tls_pair_is_issued_for_the_groups_fqdn(make_provider: Callable[..., AzureAciProvider],
                                                        resource_group: str, _state_dir: Path) -> None:
    from multicloud.certificates import certificate_names

    app = f"tls-{resource_group[3:]}"
    spec = spec_from_dict({
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"CERT_FILE": "${secrets.tls_cert.file}", "KEY_FILE": "${secrets.tls_key.file}"},
                             "ports": [{"name": "https", "port": 8443, "protocol": "https", "expose": "public"}]}},
        "secrets": {"tls": {"generate": {"type": "tls", "names": ["api.example.com"]}}},
        "targets": {"azure": {"provider": "azure-aci"}},
    })
    provider = make_provider()
    deployment = Deployment(spec, "azure", provider=provider, environ={},
                            retry=RetryPolicy(attempts=5, base_delay=0.05))
    assert deployment.apply().ok
    store = _state_dir / "secrets" / "azure-aci" / app / "azure"
    assert sorted(p.name for p in store.iterdir()) == ["tls_ca", "tls_ca_key", "tls_cert", "tls_key"]
    (fqdn,) = provider.public_names(deployment.target_spec)
    groups = [r.payload for r in provider.observe(app)]
    assert fqdn.endswith(f".{provider.settings.location}.azurecontainer.io")
    assert certificate_names((store / "tls_cert").read_text()) == ["api.example.com", fqdn]
    assert not Deployment(spec, "azure", provider=make_provider(), environ={}).plan().has_changes
    private = [(store / name).read_text() for name in ("tls_key", "tls_ca_key")]
    assert groups and not any(value in json.dumps(groups, default=str) for value in private)
    deployment.destroy()
    assert not store.exists()
