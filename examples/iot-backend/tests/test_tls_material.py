"""TLS pieces without Docker: the development CA's certificates, and the broker's TLS listeners."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest
from iotsim.devca import ensure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "broker"))

import broker_agent


def test_the_dev_ca_signs_a_server_certificate_clients_verify(tmp_path: Path) -> None:
    ca = ensure(tmp_path / "tls")
    assert oct(ca.server_key.stat().st_mode & 0o777) == "0o600" and oct(ca.ca_key.stat().st_mode & 0o777) == "0o600"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(ca.server_cert, ca.server_key)
    client = ssl.create_default_context(cafile=str(ca.ca_cert))
    for name in ("localhost", "127.0.0.1", "broker", "registry"):
        assert _handshake(server, client, name) is None
    assert "mismatch" in str(_handshake(server, client, "elsewhere.example"))
    stranger = ssl.create_default_context()  # the system's CAs do not know the development CA
    assert "certificate verify failed" in str(_handshake(server, stranger, "localhost"))


def test_rerunning_keeps_what_fits_and_reissues_for_other_names(tmp_path: Path) -> None:
    first = ensure(tmp_path)
    ca, cert = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    assert ensure(tmp_path).server_cert.read_bytes() == cert
    again = ensure(tmp_path, ["iot.example.com"])
    assert again.ca_cert.read_bytes() == ca and again.server_cert.read_bytes() != cert


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> Exception | None:
    """Run a TLS handshake in memory; return the client's error, or None when it verified the server."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side, source, target in ((c, c_out, s_in), (s, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                if side is c:
                    return exc
                break
            target.write(source.read())
        try:
            c.do_handshake()
            return None
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLError as exc:
            return exc
    return TimeoutError("no handshake")


@pytest.mark.parametrize(("env", "listeners"), [
    ({"MQTT_PORT": "1883", "MQTTS_PORT": "8883", "WSS_PORT": "8081", "WS_PORT": "0"},
     [("1883", "mqtt", False), ("8883", "mqtt", True), ("8081", "websockets", True)]),
    # WebSockets alone: mosquitto 2.0.11 needs a TCP listener to start, so one on the loopback
    ({"MQTT_PORT": "0", "WS_PORT": "8080", "MQTTS_PORT": "0", "WSS_PORT": "0"},
     [("8080", "websockets", False), ("1883", "mqtt", False)]),
    # behind a platform that ends TLS itself (Cloud Run: ${ports.mqtt-wss.tls} is false): served plain
    ({"MQTT_PORT": "0", "WS_PORT": "0", "MQTTS_PORT": "0", "WSS_PORT": "8081", "WSS_TLS": "false"},
     [("8081", "websockets", False), ("1883", "mqtt", False)]),
])
def test_broker_listeners_carry_the_certificate_only_where_tls(
    env: dict[str, str], listeners: list[tuple[str, str, bool]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("MQTT_PORT", "WS_PORT", "MQTTS_PORT", "WSS_PORT", "MQTTS_TLS", "WSS_TLS"):
        monkeypatch.setenv(key, env.get(key, ""))
    monkeypatch.setenv("BROKER_STATE_DIR", str(tmp_path))
    blocks = broker_agent.render_config(broker_agent.Settings.from_env()).split("listener ")[1:]
    found = [(b.split()[0], b.split("protocol ")[1].split()[0], "certfile" in b) for b in blocks]
    assert found == listeners
    assert all("tls_version tlsv1.2" in b for b in blocks if "certfile" in b)
    assert str(tmp_path) not in "".join(blocks), "the key is never kept in the persistent state volume"
