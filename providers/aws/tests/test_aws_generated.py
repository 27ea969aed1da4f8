"""A generated secret on the emulated AWS account: kept in Secrets Manager (multicloud/APP/NAME) by the
plan's own secret resource, read back by the next plan (nothing changes), never written anywhere else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from multicloud_aws.provider import AwsEcsProvider

from multicloud.generated import LocalSecretStore
from multicloud.render import plan_json, plan_text
from multicloud.spec import spec_from_dict


def _spec(app: str) -> Any:
    return spec_from_dict({
        "name": app,
        "services": {"api": {"image": "registry.example.com/api:1", "env": {"TOKEN": "${secrets.token}"},
                             "ports": [{"name": "http", "port": 8080, "protocol": "http"}]}},
        "secrets": {"token": {"generate": True}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    })


def test_generated_secret_lives_in_secrets_manager(make_provider: Callable[..., AwsEcsProvider], app_name: str,
                                                   deploy: Any, tagged: Any) -> None:
    provider = make_provider()
    deployment = deploy(_spec(app_name), provider, {})
    try:
        planned = deployment.plan()
        assert deployment.apply(planned).ok
        client = provider.ctx.client("secretsmanager")
        value = client.get_secret_value(SecretId=f"multicloud/{app_name}/token")["SecretString"]
        assert len(value) >= 32
        assert provider.stored_secrets(app_name, ["token", "other"]) == {"token": value}
        assert not LocalSecretStore("aws-ecs", app_name, "aws").directory.exists()
        again = deploy(_spec(app_name), make_provider(), {})
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
