"""Generated TLS material (`generate: {type: tls}`): a CA made once per app and target and a server
certificate issued by it for the spec's names, kept (0600) in the target's store, stable across applies,
re-issued when the names change or its end nears, never printed; the CA certificate fetched with
`multicloud secrets ca`; a wrong spec gets a file:line error."""

from __future__ import annotations

import datetime
import socket
import ssl
import stat
import textwrap
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from multicloud.certificates import RENEW_DAYS, SERVER_DAYS, certificate_names, fresh_material
from multicloud.errors import SpecError, UserError
from multicloud.spec import loads
from tests.helpers import run_cli, write_spec

SPEC = """\
name: tlsdemo
services:
  web:
    image: registry.example.com/web:1
    env: {CERT_FILE: "${secrets.tls_cert.file}", KEY_FILE: "${secrets.tls_key.file}", TOKEN: "${secrets.token}",
          CERT: "${secrets.tls_cert}"}
secrets:
  token: {generate: true}
  tls: {generate: {type: tls, names: [Web.Example.COM, "*.devices.example.com", 10.0.0.7, "::1"]}}
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""
NAMES = ["web.example.com", "*.devices.example.com", "10.0.0.7", "::1"]


def handshake(tmp_path: Path, cert: str, key: str, ca: str, host: str) -> None:
    """A TLS handshake between a server serving cert/key and a client trusting only `ca` that checks `host`;
    raises ssl.SSLCertVerificationError when the certificate is not valid for host or does not chain."""
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca)
    left, right = socket.socketpair()
    with left, right:
        accepted = threading.Thread(target=lambda: _serve(server, left), daemon=True)
        accepted.start()
        with client.wrap_socket(right, server_hostname=host) as tls:
            tls.sendall(b"ping")
        accepted.join(5)


def _serve(context: ssl.SSLContext, sock: socket.socket) -> None:
    try:
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.recv(4)
    except (ssl.SSLError, OSError):
        pass


def test_apply_makes_a_ca_and_a_certificate_for_every_name_kept_private_and_stable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    f = str(write_spec(tmp_path, SPEC))
    store = _state_dir / "secrets" / "memory" / "tlsdemo" / "mem"
    code, planned = run_cli(capsys, "plan", "-f", f, "-v")
    assert code == 0 and not store.exists(), "a plan keeps nothing"
    code, applied = run_cli(capsys, "apply", "-f", f, "--yes", "-o", "json")
    assert code == 0, applied
    assert sorted(p.name for p in store.iterdir()) == ["tls_ca", "tls_ca_key", "tls_cert", "tls_key", "token"]
    values = {p.name: p.read_text() for p in store.iterdir()}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in store.iterdir())
    code, ca = run_cli(capsys, "secrets", "ca", "-f", f)
    assert code == 0 and ca == values["tls_ca"] and "PRIVATE KEY" not in ca
    cert = x509.load_pem_x509_certificate(values["tls_cert"].encode())
    authority = x509.load_pem_x509_certificate(ca.encode())
    cert.verify_directly_issued_by(authority)
    assert certificate_names(values["tls_cert"]) == NAMES
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.serial_number.bit_length() > 64 and cert.serial_number != authority.serial_number
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= SERVER_DAYS
    for host in ("web.example.com", "sensor-1.devices.example.com", "10.0.0.7", "::1"):
        handshake(tmp_path, values["tls_cert"], values["tls_key"], ca, host)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, values["tls_cert"], values["tls_key"], ca, "other.example.com")
    code, replanned = run_cli(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert code == 0, replanned  # the kept pair fits: nothing changes
    code, reapplied = run_cli(capsys, "apply", "-f", f, "--yes")
    assert code == 0 and {p.name: p.read_text() for p in store.iterdir()} == values
    state = (tmp_path / "state.json").read_text()
    private = [values[name] for name in ("tls_key", "tls_ca_key", "token")]
    for output in (planned, applied, replanned, reapplied, state):
        assert not any(value in output for value in private)
        assert "PRIVATE KEY" not in output and "BEGIN CERTIFICATE" not in output


def test_new_names_reissue_the_certificate_from_the_same_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    spec = write_spec(tmp_path, SPEC)
    store = _state_dir / "secrets" / "memory" / "tlsdemo" / "mem"
    assert run_cli(capsys, "apply", "-f", str(spec), "--yes")[0] == 0
    before = {p.name: p.read_text() for p in store.iterdir()}
    spec.write_text(spec.read_text().replace("10.0.0.7", "mqtt.example.com"))
    code, out = run_cli(capsys, "apply", "-f", str(spec), "--yes")
    assert code == 0 and "service/web" in out, out  # the service gets the new pair
    after = {p.name: p.read_text() for p in store.iterdir()}
    assert after["tls_ca"] == before["tls_ca"] and after["tls_ca_key"] == before["tls_ca_key"]
    assert after["tls_cert"] != before["tls_cert"] and after["tls_key"] != before["tls_key"]
    assert "mqtt.example.com" in certificate_names(after["tls_cert"]) and after["token"] == before["token"]
    assert not list(store.glob("*.new"))


def test_a_wildcard_matches_one_first_label_only(tmp_path: Path) -> None:
    """aws-ecs's public name `*.elb.REGION.amazonaws.com`, issued before AWS names the NLB NAME-ID under it, verifies
    for that name and for none with another label count or region (mosquitto_pub 2.0.11 agrees, tried by hand)."""
    made = fresh_material({}, ["*.elb.us-east-1.amazonaws.com"], issuer="multicloud CA of iot on aws")
    handshake(tmp_path, made["cert"], made["key"], made["ca"], "mc-iot-0123456789abcdef.elb.us-east-1.amazonaws.com")
    for host in ("a.mc-iot-0123456789abcdef.elb.us-east-1.amazonaws.com", "elb.us-east-1.amazonaws.com",
                 "mc-iot-0123456789abcdef.elb.eu-west-1.amazonaws.com"):
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(tmp_path, made["cert"], made["key"], made["ca"], host)


def test_reissued_before_its_end_never_past_its_ca_and_a_foreign_certificate_is_replaced() -> None:
    made = fresh_material({}, ["a.example.com"], issuer="test CA")
    assert sorted(made) == ["ca", "ca_key", "cert", "key"]
    assert fresh_material(made, ["a.example.com"], issuer="test CA") == {}
    end = x509.load_pem_x509_certificate(made["cert"].encode()).not_valid_after_utc
    late = fresh_material(made, ["a.example.com"], issuer="test CA", now=end - datetime.timedelta(days=RENEW_DAYS - 1))
    assert sorted(late) == ["cert", "key"], "the CA stays; the certificate is renewed in its last days"
    ca_end = x509.load_pem_x509_certificate(made["ca"].encode()).not_valid_after_utc
    near = ca_end - datetime.timedelta(days=RENEW_DAYS + 10)
    renewed = fresh_material(made, ["a.example.com"], issuer="test CA", now=near)
    assert sorted(renewed) == ["cert", "key"]
    assert x509.load_pem_x509_certificate(renewed["cert"].encode()).not_valid_after_utc <= ca_end
    other = fresh_material({}, ["a.example.com"], issuer="another CA")
    mixed = {**made, "cert": other["cert"], "key": other["key"]}
    assert sorted(fresh_material(mixed, ["a.example.com"], issuer="test CA")) == ["cert", "key"]
    swapped = {**made, "key": other["key"]}
    assert sorted(fresh_material(swapped, ["a.example.com"], issuer="test CA")) == ["cert", "key"]
    broken = {**made, "ca_key": "not a key"}
    assert sorted(fresh_material(broken, ["a.example.com"], issuer="test CA")) == ["ca", "ca_key", "cert", "key"]


@pytest.mark.parametrize(
    ("generate", "line", "needle"),
    [
        ("{type: rsa}", 6, "unknown type 'rsa'"),
        ("{type: tls, names: [ok.example.com, 'bad name']}", 6, "'bad name' is neither an IP address"),
        ("{type: tls, names: [-bad.example.com]}", 6, "neither an IP address nor a DNS name"),
        ("{type: tls, names: [example.123]}", 6, "neither an IP address nor a DNS name"),
        ("{type: tls, nmes: []}", 6, "did you mean 'names'"),
        ("5", 6, "give generate: true"),
    ],
)
def test_a_wrong_tls_secret_is_an_error_at_its_line(generate: str, line: int, needle: str) -> None:
    text = textwrap.dedent(f"""\
        name: g
        services:
          web: {{image: web, env: {{A: "${{secrets.tls_cert.file}}"}}}}
        secrets:
          tls:
            generate: {generate}
        """)
    with pytest.raises(SpecError) as caught:
        loads(text)
    (problem,) = caught.value.problems
    assert problem.line == line and needle in problem.message, problem


@pytest.mark.parametrize(
    ("use", "needle"),
    [
        ("${secrets.tls_ca_key}", "never leaves the target's secret store"),
        ("${secrets.tls}", "use its parts (tls_cert, tls_key, tls_ca)"),
        ("${secrets.tls_crt}", "unknown secret (known: tls_ca, tls_cert, tls_key)"),
    ],
)
def test_a_service_uses_the_public_parts_only(use: str, needle: str) -> None:
    text = (f'name: g\nservices:\n  web: {{image: web, env: {{A: "{use}"}}}}\n'
            'secrets:\n  tls: {generate: {type: tls}}\n')
    with pytest.raises(SpecError) as caught:
        loads(text)
    (problem,) = caught.value.problems
    assert problem.line == 3 and needle in problem.message, problem


def test_a_certificate_without_any_name_is_refused_at_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    spec = write_spec(tmp_path, SPEC.replace('names: [Web.Example.COM, "*.devices.example.com", 10.0.0.7, "::1"]',
                                             "names: []"))
    code, out = run_cli(capsys, "plan", "-f", str(spec))
    assert code == 2 and "multicloud.yaml:9:" in out and "secrets.tls.generate.names: give the names" in out, out
    with pytest.raises(UserError, match="needs a name"):
        fresh_material({}, [], issuer="test CA")


def test_the_ca_is_asked_for_by_name_and_its_key_never_handed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    from multicloud import Deployment

    spec = write_spec(tmp_path, SPEC)
    deployment = Deployment.from_file(str(spec), "mem")
    with pytest.raises(UserError, match=r"holds no CA for secrets\.tls yet"):
        deployment.certificate_authority()
    deployment.apply()
    assert deployment.certificate_authority("tls").startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(UserError, match="no 'other' among them"):
        deployment.certificate_authority("other")
    with pytest.raises(UserError, match="never leaves the target's secret store"):
        deployment.secret("tls_ca_key")
    assert deployment.secret("tls_key").startswith("-----BEGIN PRIVATE KEY-----")
