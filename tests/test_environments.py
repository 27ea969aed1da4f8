"""Environments: a target's `app:` names the app there (default: the spec's name) and its
`defaults:` change every service beneath the per-service overrides; errors point into them."""

from __future__ import annotations

from multicloud.spec import target_spec
from tests.helpers import problems, spec, where

SPEC = """\
name: iot
services:
  broker: {image: broker, replicas: 3, env: {LEVEL: info}}
  api: {image: api, resources: {cpu: 2}}
targets:
  prod: {provider: memory}
  staging:
    provider: memory
    app: iot-staging
    defaults: {replicas: 1, env: {STAGE: staging}, resources: {memory: 256Mi}}
    overrides:
      api: {replicas: 2, env: {STAGE: qa}}
"""


def test_app_and_defaults_per_target() -> None:
    loaded = spec(SPEC)
    prod, staging = target_spec(loaded, "prod"), target_spec(loaded, "staging")
    assert (prod.app, staging.app) == ("iot", "iot-staging")
    assert "app" not in loaded.targets["staging"].settings and "defaults" not in loaded.targets["staging"].settings
    broker, api = staging.services["broker"], staging.services["api"]
    assert (broker.replicas, broker.env) == (1, {"LEVEL": "info", "STAGE": "staging"})
    assert (api.replicas, api.env) == (2, {"STAGE": "qa"})  # the override beats the defaults
    assert (api.resources.cpu, api.resources.memory) == (2, 256 * 1024 * 1024)  # merged key by key
    assert prod.services["broker"].replicas == 3 and "STAGE" not in prod.services["broker"].env


def test_errors_point_into_defaults_once() -> None:
    text = SPEC.replace("defaults: {replicas: 1,", "defaults: {replicas: -1, colour: red,")
    found = problems(text)
    assert sorted((p.field, (p.line, p.column)) for p in found) == [
        ("targets.staging.defaults.colour", where(text, "colour")),
        ("targets.staging.defaults.replicas", where(text, "replicas: -1")),
    ]


def test_app_must_be_a_name() -> None:
    (found,) = problems(SPEC.replace("app: iot-staging", "app: Iot_Staging"))
    assert found.field == "targets.staging.app" and found.line == where(SPEC, "app: iot-staging")[0]
