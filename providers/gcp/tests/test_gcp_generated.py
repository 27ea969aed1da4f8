"""Generated secrets on Cloud Run: written to the emulated Secret Manager (secret APP-NAME, labelled,
its digest in an annotation) by the plan's own secret resource, referenced by the services, read
back by the next plan (nothing changes, one version), never printed, deleted by destroy. Over the
unmodified secretmanager_v1 client, REST and gRPC."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.errors import ApplyFailedError, UserError
from multicloud.generated import LocalSecretStore
from multicloud.render import plan_json, plan_text
from multicloud.spec import spec_from_dict
from multicloud.testing.specs import generated_token_spec

GCP = {"provider": "gcp-cloudrun"}


def test_generated_secret_lives_in_secret_manager(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], transport: str,
    deploy: Callable[..., Deployment],
) -> None:
    provider = provider_for(transport)
    deployment = deploy(generated_token_spec("gen", "gcp", GCP), provider, env={})
    planned = deployment.plan()
    assert [c.key for c in planned.changes] == ["secret/token", "service/api"]
    assert deployment.apply(planned).ok
    stored = cloudrun.model.secrets.get_secret("projects/demo-project/secrets/gen-token")
    assert stored["labels"] == {"multicloud-app": "gen", "multicloud-target": "gcp"}
    value = cloudrun.model.secret_values["gen-token"]
    assert len(value) >= 32 and value not in json.dumps(stored)
    assert provider.stored_secrets("gen", ["token", "other"]) == {"token": value}
    assert not LocalSecretStore("gcp-cloudrun", "gen", "gcp").directory.exists()
    (container,) = cloudrun.model.services[f"{provider.settings.parent}/services/gen-api"]["template"]["containers"]
    assert container["env"] == [
        {"name": "TOKEN", "valueSource": {"secretKeyRef": {"secret": "gen-token", "version": "latest"}}}]
    again = deploy(generated_token_spec("gen", "gcp", GCP), provider_for(transport), env={})
    replanned = again.plan()
    assert not replanned.has_changes  # the stored value is read back: stable across applies
    assert again.apply(replanned).ok
    assert cloudrun.model.secrets.access("projects/p/secrets/gen-token/versions/latest")["name"].endswith("/1")
    shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), json.dumps(cloudrun.model.services)]
    assert not any(value in text for text in shown)
    deployment.destroy()
    assert provider.stored_secrets("gen", ["token"]) == {} and "gen-token" not in cloudrun.model.secret_values


def test_a_secret_of_that_name_that_is_not_the_apps_is_left_alone(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    cloudrun.model.secret_values["theirs-token"] = "someone else's"
    with pytest.raises(ApplyFailedError, match="already exists in Secret Manager and is not app 'theirs'"):
        deploy(generated_token_spec("theirs", "gcp", GCP), provider_for("rest"), env={}).apply()
    assert cloudrun.model.secret_values["theirs-token"] == "someone else's"


def test_a_spec_that_writes_no_secret_needs_no_secret_manager_role(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    plain = spec_from_dict({"name": "plain", "services": {"api": {"image": "registry.example.com/api:1"}},
                            "targets": {"gcp": {"provider": "gcp-cloudrun"}}})
    cloudrun.model.faults.fail("ListSecrets", "PERMISSION_DENIED", times=5)
    deployment = deploy(plain, provider_for("rest"), env={})
    assert deployment.apply().ok and not deployment.plan().has_changes
    deployment.destroy()


def test_generated_tls_pair_is_issued_for_the_run_app_host_and_kept_in_secret_manager(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    from multicloud.certificates import certificate_names

    spec = spec_from_dict({
        "name": "tlsgen",
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"CERT_FILE": "${secrets.tls_cert.file}", "KEY_FILE": "${secrets.tls_key.file}"},
                             "ports": [{"name": "grpc", "port": 8080, "protocol": "grpc", "expose": "public"}]}},
        "secrets": {"tls": {"generate": {"type": "tls", "names": ["api.example.com"]}}},
        "targets": {"gcp": {"provider": "gcp-cloudrun"}},
    })
    provider = provider_for("rest")
    deployment = deploy(spec, provider, env={})
    planned = deployment.plan()
    assert {c.key for c in planned.changes} == {"secret/tls_cert", "secret/tls_key", "secret/tls_ca",
                                                "secret/tls_ca_key", "service/api"}
    # the pair is stored after its CA, so a plan limited to the service reading it stores the CA too
    assert {c.key for c in deployment.plan(services=["api"]).changes} == {c.key for c in planned.changes}
    assert deployment.apply(planned).ok
    values = {part: cloudrun.model.secret_values[f"tlsgen-tls_{part}"] for part in ("cert", "key", "ca", "ca_key")}
    (host,) = provider.public_names(deployment.target_spec)
    assert host.endswith(".run.app") and certificate_names(values["cert"]) == ["api.example.com", host]
    assert deployment.certificate_authority() == values["ca"]
    assert not deploy(spec, provider_for("rest"), env={}).plan().has_changes
    shown = [plan_text(planned, verbose=True), json.dumps(plan_json(planned)), json.dumps(cloudrun.model.services)]
    assert not any(values[part] in text for text in shown for part in ("key", "ca_key"))
    deployment.destroy()
    assert provider.stored_secrets("tlsgen", ["tls_ca_key"]) == {}


def test_a_saved_plan_generates_its_secrets_at_apply(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment],
    tmp_path: Path,
) -> None:
    """`plan --out` before the secrets exist stores nothing in Secret Manager and records them as generated at
    apply; `apply FILE` from another deployment generates them and is not refused; a stored value changed
    since a later saved plan refuses that one."""
    spec = spec_from_dict({
        "name": "savedgen",
        "services": {"api": {"image": "registry.example.com/api:1",
                             "env": {"TOKEN": "${secrets.token}", "CERT_FILE": "${secrets.tls_cert.file}",
                                     "KEY_FILE": "${secrets.tls_key.file}"},
                             "ports": [{"name": "http", "port": 8080, "protocol": "http"}]}},
        "secrets": {"token": {"generate": True}, "tls": {"generate": {"type": "tls", "names": ["api.internal"]}}},
        "targets": {"gcp": {"provider": "gcp-cloudrun"}},
    })
    names = ["token", "tls_cert", "tls_key", "tls_ca", "tls_ca_key"]
    provider = provider_for("rest")
    saved = tmp_path / "first.plan"
    planned = deploy(spec, provider, env={}).save_plan(str(saved))
    assert provider.stored_secrets("savedgen", names) == {}, "a plan stores nothing"
    applying = deploy(spec, provider_for("rest"), env={})
    try:
        assert applying.apply_saved(str(saved)).ok
        assert "(known after apply)" in plan_text(planned, verbose=True)
        stored = provider.stored_secrets("savedgen", names)
        assert sorted(stored) == sorted(names)
        assert not any(value in saved.read_text() for value in stored.values())
        assert not deploy(spec, provider_for("rest"), env={}).plan().has_changes
        later = tmp_path / "later.plan"
        deploy(spec, provider_for("rest"), env={}).save_plan(str(later))
        cloudrun.model.secret_values["savedgen-token"] = "changed-by-someone-else-0123456789"
        with pytest.raises(UserError, match="changed since"):
            deploy(spec, provider_for("rest"), env={}).apply_saved(str(later))
    finally:
        applying.destroy()
