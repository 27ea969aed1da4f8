"""A generated secret on the emulated AWS account: kept in Secrets Manager (multicloud/APP/NAME) by the
plan's own secret resource, read back by the next plan (nothing changes), never written anywhere else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.provider import AwsEcsProvider

from multicloud.errors import UserError
from multicloud.generated import LocalSecretStore
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.spec import spec_from_dict
from multicloud.testing.specs import generated_token_spec

AWS = {"provider": "aws-ecs", "region": "us-east-1"}


def test_generated_secret_lives_in_secrets_manager(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                   deploy: Any, tagged: Any) -> None:
    provider = make_provider()
    deployment = deploy(generated_token_spec(app_name, "aws", AWS), provider, {})
    try:
        planned = deployment.plan()
        assert deployment.apply(planned).ok
        client = provider.ctx.client("secretsmanager")
        value = client.get_secret_value(SecretId=f"multicloud/{app_name}/token")["SecretString"]
        assert len(value) >= 32
        assert provider.stored_secrets(app_name, ["token", "other"]) == {"token": value}
        assert not LocalSecretStore("aws-ecs", app_name, "aws").directory.exists()
        again = deploy(generated_token_spec(app_name, "aws", AWS), make_provider(), {})
        replanned = again.plan()
        assert not replanned.has_changes
        definitions = client_json(provider, app_name)
        shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), definitions]
        assert not any(value in text for text in shown)
    finally:
        deployment.destroy()
    assert tagged(provider, app_name) == []
    assert provider.stored_secrets(app_name, ["token"]) == {}


def client_json(provider: AwsEcsProvider, app: str) -> str:
    """Every task definition and tag of the app's resources, as text."""
    ecs = provider.ctx.client("ecs")
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    found = [ecs.describe_task_definition(taskDefinition=a, include=["TAGS"]) for a in arns if app in a]
    assert found
    return json.dumps(found, default=str)


def _tls_spec(app: str) -> Any:
    return spec_from_dict({
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"TLS_CERT": "${secrets.tls_cert}", "TLS_KEY": "${secrets.tls_key}"},
                             "ports": [{"name": "https", "port": 8443, "protocol": "https", "expose": "public"}]}},
        "secrets": {"tls": {"generate": {"type": "tls", "names": ["api.example.com"]}}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    })


def test_generated_tls_pair_lives_in_secrets_manager_and_names_the_nlb_from_the_first_apply(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any, tagged: Any) -> None:
    from multicloud.certificates import certificate_names

    provider = make_provider()
    client = provider.ctx.client("secretsmanager")

    def stored() -> dict[str, str]:
        return {part: client.get_secret_value(SecretId=f"multicloud/{app_name}/tls_{part}")["SecretString"]
                for part in ("cert", "key", "ca", "ca_key")}

    deployment = deploy(_tls_spec(app_name), provider, {})
    try:
        first = deployment.plan()
        assert deployment.apply(first).ok
        before = stored()
        # AWS names the NLB only as it creates it; the wildcard names it before, so the pair holds from now on
        assert certificate_names(before["cert"]) == ["api.example.com", "*.elb.us-east-1.amazonaws.com"]
        assert provider.public_names(deployment.target_spec) == ["*.elb.us-east-1.amazonaws.com"]
        dns = provider.ctx.client("elbv2").describe_load_balancers(Names=[f"mc-{app_name}"])["LoadBalancers"][0]
        assert dns["DNSName"].startswith(f"mc-{app_name}-") and dns["DNSName"].endswith(".elb.us-east-1.amazonaws.com")
        assert deployment.certificate_authority() == before["ca"]
        assert not deploy(_tls_spec(app_name), make_provider(), {}).plan().has_changes
        assert stored() == before
        shown = [plan_text(first, verbose=True), json.dumps(plan_json(first)), client_json(provider, app_name)]
        assert not any(value in text for text in shown for value in (before["key"], before["ca_key"]))
    finally:
        deployment.destroy()
    assert tagged(provider, app_name) == []


def test_a_saved_plan_generates_its_secrets_at_apply(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                     deploy: Any, tmp_path: Any) -> None:
    """`plan --out` before the secrets exist stores nothing and records them as generated at apply; `apply FILE`
    in another process (its own deployment) generates them and is not refused; a stored value changed since a
    later saved plan refuses it."""
    spec = spec_from_dict({
        "name": app_name,
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"TOKEN": "${secrets.token}", "TLS_CERT": "${secrets.tls_cert}",
                                     "TLS_KEY": "${secrets.tls_key}"},
                             "ports": [{"name": "https", "port": 8443, "protocol": "https"}]}},
        "secrets": {"token": {"generate": True}, "tls": {"generate": {"type": "tls", "names": ["api.internal"]}}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    })
    names = ["token", "tls_cert", "tls_key", "tls_ca", "tls_ca_key"]
    provider = make_provider()
    saved = tmp_path / "first.plan"
    planned = deploy(spec, provider, {}).save_plan(str(saved))
    assert provider.stored_secrets(app_name, names) == {}, "a plan stores nothing"
    applying = deploy(spec, make_provider(), {})
    try:
        assert applying.apply_saved(str(saved)).ok
        assert "(known after apply)" in plan_text(planned, verbose=True)
        stored = provider.stored_secrets(app_name, names)
        assert sorted(stored) == sorted(names)
        text = saved.read_text()
        assert not any(value in text for value in stored.values())
        assert not any(digest in text for digest in planned.generated.values()), "digests of values never used"
        assert json.loads(text)["secrets"]["token"] == "(known after apply)"
        assert not deploy(spec, make_provider(), {}).plan().has_changes
        # a plan made while the secrets exist, then one of them changed: that plan is stale
        later = tmp_path / "later.plan"
        deploy(spec, make_provider(), {}).save_plan(str(later))
        provider.ctx.client("secretsmanager").put_secret_value(
            SecretId=f"multicloud/{app_name}/token", SecretString="changed-by-someone-else-0123456789")
        with pytest.raises(UserError, match="changed since"):
            deploy(spec, make_provider(), {}).apply_saved(str(later))
    finally:
        applying.destroy()


def test_a_targeted_plan_lists_only_what_its_services_need_and_stores_the_ca_with_the_pair(
        make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any, tmp_path: Any) -> None:
    spec = spec_from_dict({
        "name": app_name,
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"TLS_CERT": "${secrets.tls_cert}", "TLS_KEY": "${secrets.tls_key}"},
                             "ports": [{"name": "https", "port": 8443, "protocol": "https"}]},
                     "worker": {"image": "registry.example.com/worker:1", "env": {"TOKEN": "${secrets.token}"}}},
        "secrets": {"token": {"generate": True}, "tls": {"generate": {"type": "tls", "names": ["api.example.com"]}}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    })
    saved = tmp_path / "api.plan"
    planned = deploy(spec, make_provider(), {}).save_plan(str(saved), services=["api"])
    parts = {f"secret/tls_{part}" for part in ("cert", "key", "ca", "ca_key")}
    assert parts <= {c.key for c in planned.changes} and "secret/token" not in {c.key for c in planned.changes}
    assert sorted(json.loads(saved.read_text())["secrets"]) == sorted(p.removeprefix("secret/") for p in parts)
    applying = deploy(spec, make_provider(), {})
    try:
        assert applying.apply_saved(str(saved)).ok
        rest = deploy(spec, make_provider(), {}).plan()  # the CA was stored with the pair: nothing is issued anew
        changed = {c.key for c in rest.changes if c.action is not Action.NOOP}
        assert changed == {"secret/token", "service/worker", "discovery/worker"}, changed
    finally:
        applying.destroy()
