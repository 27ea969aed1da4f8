"""Placeholders resolve per target; secret-bearing values become Sensitive and never show."""

from __future__ import annotations

import pytest

from multicloud.addressing import DirectAddressing, resolve_service
from multicloud.errors import SpecError
from multicloud.resources import Sensitive, from_jsonable, to_jsonable
from multicloud.spec import loads, target_spec
from multicloud.spec.placeholders import (
    PlaceholderSyntaxError,
    SecretRef,
    ServiceRef,
    parse_reference,
    references,
    resolve,
    secret_files,
    whole_secret,
)

SPEC = """\
name: iot
services:
  broker:
    image: mosquitto
    ports:
      - {name: mqtt, port: 1883, protocol: mqtt, expose: public}
      - {name: mqtt-ws, port: 8080, protocol: mqtt-ws, expose: public}
  api:
    image: api
    ports: [{name: http, port: 8000, protocol: http}, {name: rpc, port: 9000, protocol: grpc}]
  ingest:
    image: ingest
    command: [ingest, --broker, "${services.broker.url}", "--token=${secrets.token}"]
    env:
      HOST: "${services.broker.host}"
      PORT: "${services.broker.port}"
      WS_PORT: "${services.broker.port.mqtt-ws}"
      URL: "${services.broker.url}"
      WS_URL: "${services.broker.url.mqtt-ws}"
      API: "${services.api.url}"
      RPC: "${services.api.url.rpc}"
      DB: "postgres://app:${secrets.db_password}@db:5432/app"
      PRICE: "$$5 and $${services.api.host}"
      PLAIN: hello
secrets:
  token: {from_env: TOKEN}
  db_password: {from_env: DB_PASSWORD}
targets:
  t: {provider: memory}
"""
SECRETS = {"token": "tok-SECRET-1", "db_password": "pw-SECRET-2"}


@pytest.fixture
def resolved():
    view = target_spec(loads(SPEC), "t")
    address = DirectAddressing(view.services, host=lambda name: f"{name}.iot.internal")
    return resolve_service(view.services["ingest"], address, SECRETS, app=view.app)


def test_host_port_and_named_port(resolved):
    assert resolved.env["HOST"] == "broker.iot.internal"
    assert resolved.env["PORT"] == "1883"  # the first port when none is named
    assert resolved.env["WS_PORT"] == "8080"


def test_urls_take_their_scheme_from_the_protocol(resolved):
    assert resolved.env["URL"] == "mqtt://broker.iot.internal:1883"
    assert resolved.env["WS_URL"] == "ws://broker.iot.internal:8080/mqtt"
    assert resolved.env["API"] == "http://api.iot.internal:8000"
    assert resolved.env["RPC"] == "grpc://api.iot.internal:9000"


def test_escapes_and_plain_values(resolved):
    assert resolved.env["PRICE"] == "$5 and ${services.api.host}"
    assert resolved.env["PLAIN"] == "hello"


def test_command_arguments_resolve(resolved):
    assert resolved.command is not None
    assert resolved.command[:3] == ["ingest", "--broker", "mqtt://broker.iot.internal:1883"]
    token = resolved.command[3]
    assert isinstance(token, Sensitive)
    assert token.reveal() == "--token=tok-SECRET-1"


def test_secrets_become_sensitive_and_never_show(resolved):
    db = resolved.env["DB"]
    assert isinstance(db, Sensitive)
    assert db.reveal() == "postgres://app:pw-SECRET-2@db:5432/app"
    for shown in (str(db), repr(db), f"{db}", f"{db!r}", repr(resolved), str(resolved.env), repr(to_jsonable(db))):
        assert "SECRET" not in shown, shown
    assert str(db) == "(sensitive)"


def test_sensitive_compares_by_digest():
    a, b, c = Sensitive.of("x", app="iot"), Sensitive.of("x", app="iot"), Sensitive.of("y", app="iot")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert a != "x"
    observed = from_jsonable(to_jsonable({"env": {"K": a}}))
    assert observed == {"env": {"K": a}}
    restored = observed["env"]["K"]
    assert isinstance(restored, Sensitive) and restored.value is None
    with pytest.raises(ValueError, match="observed, not given"):
        restored.reveal()


def test_secret_digests_are_keyed_per_app_and_stretched():
    """Equal secrets in two apps give different digests (labels and tags of one app tell nothing
    about another's); the digest is PBKDF2 with 20,000 rounds, not one hash per guess."""
    import hashlib

    one, again, other = Sensitive.of("hunter2", app="iot"), Sensitive.of("hunter2", app="iot"), Sensitive.of(
        "hunter2", app="billing")
    assert one == again and one.digest != other.digest and one != other
    salt = b"multicloud-sensitive-v2\0iot"
    assert one.digest == hashlib.pbkdf2_hmac("sha256", b"hunter2", salt, 20_000, dklen=16).hex()
    assert one.digest not in (hashlib.sha256(b"hunter2").hexdigest()[:32], hashlib.md5(b"hunter2").hexdigest())


def test_resolve_only_calls_secrets_for_secret_references():
    asked: list[str] = []

    def secret(name: str) -> str:
        asked.append(name)
        return "s3cr3t"

    assert resolve("no placeholders", lambda ref: "h", secret, app="iot") == "no placeholders"
    value = resolve("a ${secrets.x} b", lambda ref: "h", secret, app="iot")
    assert isinstance(value, Sensitive) and value.reveal() == "a s3cr3t b"
    assert asked == ["x"]


@pytest.mark.parametrize(
    ("body", "ref"),
    [
        ("secrets.db", SecretRef("db")),
        ("services.web.host", ServiceRef("web", "host")),
        ("services.web.port", ServiceRef("web", "port")),
        ("services.web.port.admin", ServiceRef("web", "port", "admin")),
        ("services.web.url.admin", ServiceRef("web", "url", "admin")),
        (" services.web.url ", ServiceRef("web", "url")),
    ],
)
def test_parse_reference(body, ref):
    assert parse_reference(body) == ref


@pytest.mark.parametrize(
    "body",
    [
        "", "secrets", "secrets.", "secrets.a.b", "services.web", "services.web.ip", "services.web.host.x",
        "env.", "env.9X", "vars.a.b", "var.x",
    ],
)
def test_malformed_references(body):
    with pytest.raises(PlaceholderSyntaxError):
        parse_reference(body)


def test_references_lists_every_placeholder_but_not_escapes():
    text = "$${secrets.no} ${secrets.a}:${services.b.port.x} $$"
    assert list(references(text)) == [SecretRef("a"), ServiceRef("b", "port", "x")]


FILES = """\
name: files
secrets:
  pw: {from_env: PW}
  key: {from_env: KEY}
services:
  api:
    image: api
    secrets: [key]
    ports: [{name: https, port: 8443, protocol: https, expose: public}]
    command: [api, --password-file, "${secrets.pw.file}"]
    env:
      PW_FILE: "${secrets.pw.file}"
      KEY_FILE: "${secrets.key.file}"
      BROKER: "${services.broker.url.mqtts}"
      WSS: "${services.broker.url.mqtt-wss}"
  broker:
    image: mosquitto
    ports:
      - {name: mqtt, port: 1883, protocol: mqtt}
      - {name: mqtts, port: 8883, protocol: mqtts, expose: public}
      - {name: mqtt-wss, port: 8081, protocol: mqtt-wss, expose: public}
targets:
  local: {provider: docker}
"""


def test_a_secret_file_placeholder_is_its_path_and_not_sensitive():
    spec = target_spec(loads(FILES), "local")
    api = spec.services["api"]
    address = DirectAddressing(spec.services, host=lambda n: n)
    resolved = resolve_service(api, address, {"pw": "p4ss", "key": "k3y"}, app=spec.app)
    assert resolved.env["PW_FILE"] == "/run/secrets/pw"
    assert resolved.env["KEY_FILE"] == "/run/secrets/key"
    assert resolved.command == ["api", "--password-file", "/run/secrets/pw"]
    assert not any(isinstance(v, Sensitive) for v in resolved.env.values())
    assert resolved.env["BROKER"] == "mqtts://broker:8883"
    assert resolved.env["WSS"] == "wss://broker:8081/mqtt"
    other = resolve_service(api, address, {}, lambda n: f"/x/{n}/{n}", app=spec.app)
    assert other.env["PW_FILE"] == "/x/pw/pw"


def test_secret_files_and_used_secrets_count_file_placeholders():
    spec = target_spec(loads(FILES), "local")
    assert secret_files(spec.services["api"]) == ["key", "pw"]
    assert spec.used_secrets() == ["pw", "key"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${secrets.a}", SecretRef("a")),
        (" ${ secrets.a.file } ", SecretRef("a", file=True)),
        ("x${secrets.a}", None),
        ("${services.a.host}", None),
        ("$$", None),
        ("${secrets.a.nope}", None),
    ],
)
def test_whole_secret(text, expected):
    assert whole_secret(text) == expected


def test_file_reference_parses_and_other_suffixes_do_not():
    assert parse_reference("secrets.db.file") == SecretRef("db", file=True)
    with pytest.raises(PlaceholderSyntaxError, match=r"\$\{secrets.NAME.file\}"):
        parse_reference("secrets.db.path")


def test_an_unknown_secret_file_is_reported_at_its_field():
    text = FILES.replace("${secrets.pw.file}\"\n      KEY", "${secrets.nope.file}\"\n      KEY")
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert "services.api.env.PW_FILE" in str(caught.value) and "unknown secret" in str(caught.value)
