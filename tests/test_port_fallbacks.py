"""Port fallbacks: where a target cannot serve a port (no raw TCP), its `fallback` stands in for it:
the port is left out, references to it and health checks on it move to the fallback."""

from __future__ import annotations

import textwrap

import pytest

from multicloud.api import Deployment
from multicloud.errors import CapabilityError
from multicloud.render import plan_text
from multicloud.spec import loads
from tests.helpers import problem, problems, where

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


SERVED = """\
name: sv
services:
  broker:
    image: broker
    ports:
      - {name: mqtt, port: 1883, protocol: mqtt, expose: public, fallback: wss}
      - {name: mqtts, port: 8883, protocol: mqtts, expose: public, fallback: wss}
      - {name: wss, port: 8081, protocol: mqtt-wss, expose: public}
    env: {MQTT: "${ports.mqtt}", MQTTS: "${ports.mqtts}", WSS: "${ports.wss}", WSS_TLS: "${ports.wss.tls}",
          MQTTS_TLS: "${ports.mqtts.tls}"}
    healthcheck: {tcp: 1883}
targets:
  tcp: {provider: memory, state_file: "%(state)s"}
  run: {provider: memory, state_file: "%(state)s", raw_tcp_ingress: false, terminates_tls: true}
"""


def test_ports_placeholders_say_what_the_container_serves_on_each_target(tmp_path) -> None:
    spec = loads(SERVED % {"state": tmp_path / "state.json"})
    tcp = Deployment(spec, "tcp", environ={}).target_spec.services["broker"]
    assert tcp.env == {"MQTT": "1883", "MQTTS": "8883", "WSS": "8081", "WSS_TLS": "true", "MQTTS_TLS": "true"}
    run = Deployment(spec, "run", environ={})
    broker = run.target_spec.services["broker"]
    # Cloud Run-like: no TCP, so mqtt and mqtts fall back to wss, which the container serves plain at 8081
    assert broker.env == {"MQTT": "0", "MQTTS": "0", "WSS": "8081", "WSS_TLS": "false", "MQTTS_TLS": "false"}
    assert [(p.name, p.protocol) for p in broker.ports] == [("wss", "mqtt-ws")]
    assert broker.healthcheck is not None and broker.healthcheck.tcp == 8081  # follows the port
    text = plan_text(run.plan())
    assert "# port mqtts (8883/mqtts) is not served on target 'run'" in text and "fallback wss stands in" in text
    assert "# port wss (8081/mqtt-wss) is served plain (mqtt-ws) by the container" in text


def test_an_unknown_port_in_a_ports_placeholder_is_an_error_at_its_line() -> None:
    text = SERVED.replace('WSS: "${ports.wss}"', 'WSS: "${ports.ws}"') % {"state": "x"}
    found = problem(text)
    assert found.field == "services.broker.env.WSS" and found.line == where(text, "${ports.ws}")[0]
    assert "no port named 'ws' (ports: mqtt, mqtts, wss)" in found.message
    only_mqtt = "terminates_tls: true,\n        overrides: {broker: {ports: [{name: mqtt, port: 1883}]}}}"
    overridden = text.replace('WSS: "${ports.ws}"', 'WSS: "${ports.wss}"').replace("terminates_tls: true}", only_mqtt)
    found = problems(overridden)
    assert {p.field for p in found} == {"services.broker.env.WSS", "services.broker.env.WSS_TLS",
                                        "services.broker.env.MQTTS", "services.broker.env.MQTTS_TLS"}
    assert "no port named 'mqtts' (ports: mqtt) (on target 'run', after its overrides)" in found[0].message
    assert problem(text.replace("${ports.ws}", "${ports.wss.port}")).message.endswith("takes only .tls (whether "
                                                                                       "it is served over TLS)")


CERTIFIED = """\
name: cf
services:
  broker:
    image: broker
    ports:
      - {name: mqtts, port: 8883, protocol: mqtts, expose: public, fallback: wss}
      - {name: wss, port: 8081, protocol: mqtt-wss, expose: public}
    env: {CERT_FILE: "${secrets.tls_cert.file}", ARGS: "--key=${secrets.tls_key.file} --ca=${secrets.tls_ca.file}"}
    secrets: [tls_key]
  grpc:
    image: grpc
    ports: [{name: grpc, port: 8443, protocol: grpc, expose: public}]
    env: {CERT: "${secrets.tls_cert}"}
secrets:
  tls: {generate: {type: tls, names: [broker.example.com]}}
targets:
  tcp: {provider: memory, state_file: "%(state)s"}
  run: {provider: memory, state_file: "%(state)s", raw_tcp_ingress: false, terminates_tls: true}
"""


def test_a_service_left_without_tls_of_its_own_is_handed_no_certificate_or_key(tmp_path) -> None:
    spec = loads(CERTIFIED % {"state": tmp_path / "state.json"})
    run = Deployment(spec, "run", environ={})
    broker, grpc = run.target_spec.services["broker"], run.target_spec.services["grpc"]
    # mqtts falls back to wss, served plain behind the platform's TLS: the pair stays in the store, the CA is public
    assert broker.env == {"CERT_FILE": "", "ARGS": "--key= --ca=${secrets.tls_ca.file}"} and broker.secrets == []
    assert grpc.env == {"CERT": "${secrets.tls_cert}"}  # no TLS port in the spec: what it reads it for is its own
    text = plan_text(run.plan())
    assert "# tls_cert and tls_key not handed to it: it serves no TLS itself on target 'run'" in text
    tcp = Deployment(spec, "tcp", environ={}).target_spec.services["broker"]
    assert tcp.secrets == ["tls_key"] and tcp.env["CERT_FILE"] == "${secrets.tls_cert.file}"
