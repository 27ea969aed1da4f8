"""Port fallbacks: where a target cannot serve a port (no raw TCP), its `fallback` stands in for it:
the port is left out, references to it and health checks on it move to the fallback."""

from __future__ import annotations

import textwrap

import pytest

from multicloud.api import Deployment
from multicloud.errors import CapabilityError
from multicloud.spec import loads
from tests.helpers import problem, where

SPEC = """\
name: fb
services:
  broker:
    image: broker
    ports:
      - {name: mqtt, port: 1883, protocol: mqtt, expose: public, fallback: mqtt-ws}
      - {name: mqtt-ws, port: 8080, protocol: mqtt-ws, expose: public}
    healthcheck: {tcp: 1883}
  ingestion:
    image: ingestion
    env:
      MQTT_URL: "${services.broker.url.mqtt}"
      FIRST: "${services.broker.url}"
      PORT: "${services.broker.port.mqtt}"
      HOST: "${services.broker.host}"
      WS: "${services.broker.url.mqtt-ws}"
    command: [run, "--broker=${services.broker.url.mqtt}"]
targets:
  tcp: {provider: memory, state_file: "%(state)s"}
  notcp: {provider: memory, state_file: "%(state)s", raw_tcp_ingress: false}
"""


@pytest.fixture
def spec(tmp_path):
    return loads(textwrap.dedent(SPEC % {"state": tmp_path / "state.json"}))


def test_a_target_without_raw_tcp_uses_the_fallback(spec) -> None:
    deployment = Deployment(spec, "notcp", environ={})
    view = deployment.target_spec
    broker, ingestion = view.services["broker"], view.services["ingestion"]
    assert [p.name for p in broker.ports] == ["mqtt-ws"]
    assert broker.healthcheck is not None and broker.healthcheck.tcp == 8080
    assert ingestion.env == {
        "MQTT_URL": "${services.broker.url.mqtt-ws}",
        "FIRST": "${services.broker.url.mqtt-ws}",
        "PORT": "${services.broker.port.mqtt-ws}",
        "HOST": "${services.broker.host}",
        "WS": "${services.broker.url.mqtt-ws}",
    }
    assert ingestion.command == ["run", "--broker=${services.broker.url.mqtt-ws}"]
    planned = deployment.plan()  # no capability error: the plan resolves the fallback's URL
    env = next(c.resource for c in planned.changes if c.key == "service/ingestion").properties["env"]
    assert env["MQTT_URL"] == env["WS"] and env["MQTT_URL"].startswith("ws://") and env["PORT"] == "8080"
    assert deployment.written.services["broker"].ports[0].name == "mqtt"  # the spec itself is unchanged


def test_a_target_with_raw_tcp_keeps_the_port(spec) -> None:
    view = Deployment(spec, "tcp", environ={}).target_spec
    assert [p.name for p in view.services["broker"].ports] == ["mqtt", "mqtt-ws"]
    assert view.services["ingestion"].env["MQTT_URL"] == "${services.broker.url.mqtt}"


def test_without_a_fallback_the_plan_says_to_give_one(spec) -> None:
    text = SPEC.replace(", fallback: mqtt-ws", "")
    deployment = Deployment(loads(textwrap.dedent(text % {"state": "/nonexistent/x"})), "notcp", environ={})
    with pytest.raises(CapabilityError, match="fallback: PORT"):
        deployment.check()


def test_a_fallback_names_another_port_of_the_service() -> None:
    text = textwrap.dedent(SPEC % {"state": "x"}).replace("fallback: mqtt-ws", "fallback: nope")
    found = problem(text)
    assert found.field == "services.broker.ports[0].fallback" and found.line == where(text, "fallback")[0]
    assert "ports: mqtt, mqtt-ws" in found.message


def test_a_volume_not_required_is_left_out_where_the_target_has_none() -> None:
    from multicloud.contract import Capabilities
    from multicloud.fallbacks import without_optional_volumes
    from multicloud.spec import loads
    from multicloud.spec.targets import target_spec

    spec = target_spec(loads(
        "name: v\nservices:\n  broker:\n    image: x\n    volumes: [\"state:/state\", \"keys:/keys\"]\n"
        "volumes:\n  state: {required: false}\n  keys: {}\ntargets:\n  t: {provider: p}\n"), "t")
    assert without_optional_volumes(spec, Capabilities()) is spec
    kept = without_optional_volumes(spec, Capabilities(volumes=False)).services["broker"].volumes
    assert [m.source for m in kept] == ["keys"]  # a required one stays, and the capability check refuses it
