"""Cloud Run behaviour the emulator used to hide (issue 16 items 20 and 21), each against the emulator
taught the real behaviour: rollback skips revisions that never became ready and sends its etag;
project_number is checked against the URLs Cloud Run returns; `uri` is the hash URL and the
deterministic one is in `urls` only when it fits a DNS label; traffic to a revision that is not
ready is refused; at most 1000 environment variables per container."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from multicloud_gcp.emulator import ApiError, CloudRunModel, RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.errors import ApplyFailedError, CapabilityError, SettingsError, UserError
from multicloud.spec import spec_from_dict, target_spec

PARENT = "projects/demo-project/locations/europe-west1"
HTTP = [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}]


def _spec(app: str, image: str, env: dict[str, str] | None = None, **extra: Any) -> Any:
    return spec_from_dict({
        "name": app, "secrets": {"token": {"from_env": "TOKEN"}},
        "services": {"api": {"image": image, "ports": HTTP, "env": env or {}}, **extra},
        "targets": {"gcp": {"provider": "gcp-cloudrun"}},
    })


def test_rollback_skips_a_revision_that_never_became_ready(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    provider = provider_for("rest")
    assert deploy(_spec("rb", "api:1"), provider, env={}).apply().ok
    model, name = cloudrun.model, f"{PARENT}/services/rb-api"
    model.known_secrets = {"other"}  # the next revision's secret is missing: it never becomes ready
    body = model.get_service(name)
    secret = {"secretKeyRef": {"secret": "token", "version": "latest"}}
    body["template"]["containers"][0].update(image="api:2", env=[{"name": "TOKEN", "valueSource": secret}])
    assert "error" in model.update_service(body)
    body = model.get_service(name)
    body["template"]["containers"][0].update(image="api:3", env=[])
    assert "error" not in model.update_service(body)
    first, failed, _ = sorted(cloudrun.model.revisions)
    message = deploy(_spec("rb", "api:3"), provider, env={}).rollback("api")
    assert message.endswith(f"to {first.rsplit('/', 1)[-1]} (100%)"), message
    with pytest.raises(ApiError, match="is not ready and cannot serve traffic"):  # and Cloud Run refuses it
        body = cloudrun.model.get_service(f"{PARENT}/services/rb-api")
        body["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "percent": 100,
                            "revision": failed.rsplit("/", 1)[-1]}]
        cloudrun.model.update_service(body)


def test_rollback_sends_its_etag_so_a_change_made_meanwhile_survives(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    provider = provider_for("rest")
    for image in ("api:1", "api:2"):
        assert deploy(_spec("et", image), provider, env={}).apply().ok
    model: CloudRunModel = cloudrun.model
    name = f"{PARENT}/services/et-api"

    def someone_else(method: str, resource: str) -> None:
        """Between the rollback's read and its update, someone labels the service (once)."""
        if method == "ListRevisions" and not model.get_service(name).get("description"):
            body = model.get_service(name)
            model.call("UpdateService", name, lambda: model.update_service({**body, "description": "theirs"}))

    model.watchers.append(someone_else)
    deploy(_spec("et", "api:2"), provider, env={}).rollback("api")
    assert model.get_service(name)["description"] == "theirs"  # refused (ABORTED), read again, kept
    assert model.get_service(name)["traffic"][0]["revision"] == sorted(model.revisions)[0].rsplit("/", 1)[-1]


def test_a_wrong_project_number_is_caught_from_the_urls_cloud_run_returns(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    provider = provider_for("rest", project_number="42424242")
    with pytest.raises(ApplyFailedError, match=r"project_number 42424242 is not this project's.*123456789012"):
        deploy(_spec("pn", "api:1"), provider, env={}).apply()
    with pytest.raises(SettingsError, match="set project_number: 123456789012"):
        deploy(_spec("pn", "api:1"), provider, env={}).plan()


def test_uri_is_the_hash_url_and_the_deterministic_one_only_fits_a_dns_label() -> None:
    model = CloudRunModel(project_number="12345678901234567890")
    body = {"template": {"containers": [{"image": "x:1"}]}}
    model.create_service(PARENT, "short", body)
    model.create_service(PARENT, "a-name-of-fifty-characters-less-one-xxxxxxxxxxxx", body)
    short, long = model.get_service(f"{PARENT}/services/short"), model.list_services(PARENT)["services"][0]
    assert short["uri"].endswith("-ew.a.run.app") and short["urls"] == [
        "https://short-12345678901234567890.europe-west1.run.app", short["uri"]]
    assert long["urls"] == [long["uri"]]  # 48 + 1 + 20 characters: no deterministic URL
    spec = spec_from_dict({"name": "an-app-name-of-forty-characters-xxxxxxxx", "services": {
        "one": {"image": "x:1", "ports": HTTP}, "two": {"image": "x:1", "env": {"U": "${services.one.url}"}}},
        "targets": {"gcp": {"provider": "gcp-cloudrun"}}})
    settings = {"project": "demo-project", "region": "europe-west1", "project_number": "12345678901234567890"}
    with pytest.raises(UserError, match="no deterministic URL"):
        CloudRunProvider(settings).desired(target_spec(spec, "gcp"), {})


def test_more_than_1000_environment_variables_are_refused() -> None:
    env = {f"V{i}": "x" for i in range(1001)}
    spec = spec_from_dict({"name": "many", "services": {"api": {"image": "x:1", "ports": HTTP, "env": env}},
                           "targets": {"gcp": {"provider": "gcp-cloudrun"}}})
    settings = {"project": "demo-project", "region": "europe-west1", "project_number": "123456789012"}
    with pytest.raises(CapabilityError, match="1001 environment variables; Cloud Run sets at most 1000"):
        CloudRunProvider(settings).desired(target_spec(spec, "gcp"), {})
    container = {"image": "x:1", "env": [{"name": k, "value": v} for k, v in env.items()]}
    with pytest.raises(ApiError, match="at most 1000 per container"):
        CloudRunModel().create_service(PARENT, "many", {"template": {"containers": [container]}})
