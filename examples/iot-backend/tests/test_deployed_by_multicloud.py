"""The example as users run it: applied by multicloud's Docker provider, then used over TLS.

The other tests here run the images with plain `docker run` so they can stop and restart
single containers; this one proves the spec itself: apply, devices' readings flow over mqtts://
and wss:// with the broker's certificate verified against the CA multicloud generated for the spec's
TLS secret (`multicloud secrets ca`), a client that does not trust that CA is refused, no secret value
is in any container's environment, re-plan is
empty, destroy leaves nothing.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import engine_up
from e2e import LOCAL_TARGET
from helpers import eventually, new_device, stored_seqs
from iotsim.api import RegistryClient
from iotsim.device import Device

from multicloud import Deployment, spec_from_dict
from multicloud.generated import LocalSecretStore
from multicloud.planner import Action

pytestmark = pytest.mark.docker
EXAMPLE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Deployed:
    """The applied example, the secret values it was given (none) and those it generated (all: the TLS pair,
    its database's password and URL, ...), and the CA its certificate chains to."""

    deployment: Deployment
    environ: dict[str, str]
    ca_file: str

    @property
    def values(self) -> dict[str, str]:
        """Every secret value the deployment uses and hands out (all but the CA's key), by the secret's name."""
        return {name: self.deployment.secret(name) for name in self.deployment.target_spec.used_secrets()
                if not name.endswith("_ca_key")}

    def endpoint(self, service: str, port: str) -> str:
        """The URL a public port is reached at."""
        return next(e.url for e in self.deployment.endpoints() if (e.service, e.port) == (service, port))

    def api(self) -> RegistryClient:
        """A registry client over HTTPS that trusts the development CA."""
        return RegistryClient(self.endpoint("registry", "https"), self.deployment.secret("admin_token"),
                              ca_file=self.ca_file)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The example applied to the local engine under a fresh app name, on ports the engine picks."""
    pytest.importorskip("paho.mqtt", reason="the device simulator needs paho-mqtt>=2.1")
    if not engine_up():
        pytest.skip("no Docker engine (scripts/setup-engine.sh starts one)")
    subprocess.run([str(EXAMPLE.parents[1] / "scripts" / "postgres-image.sh")], check=True, capture_output=True,
                   timeout=1800)  # the db resource's postgres:15 (an offline stand-in)
    data: dict[str, Any] = yaml.safe_load((EXAMPLE / "multicloud.yaml").read_text())
    data["name"] = f"iot-e2e-{uuid.uuid4().hex[:6]}"
    data["targets"] = {"local": dict(LOCAL_TARGET)}
    environ: dict[str, str] = {}
    deployment = Deployment(spec_from_dict(data, base_dir=str(EXAMPLE)), "local", environ=environ, health_timeout=240)
    try:
        deployment.apply()
        ca_file = tmp_path_factory.mktemp("tls") / "ca.crt"
        ca_file.write_text(deployment.certificate_authority())
        yield Deployed(deployment, environ, str(ca_file))
    finally:
        deployment.destroy(volumes=True)


def test_endpoints_show_tls_schemes(deployed: Deployed) -> None:
    public = {(e.service, e.port): e.url for e in deployed.deployment.endpoints() if e.public}
    assert set(public) == {("broker", "mqtts"), ("broker", "mqtt-wss"), ("registry", "https")}
    assert public[("broker", "mqtts")].startswith("mqtts://127.0.0.1:")
    assert public[("broker", "mqtt-wss")].startswith("wss://127.0.0.1:") and public[("broker", "mqtt-wss")].endswith(
        "/mqtt")
    assert public[("registry", "https")].startswith("https://127.0.0.1:")


def test_readings_flow_over_mqtts_and_wss(deployed: Deployed) -> None:
    api = deployed.api()
    started = time.time()
    mqtts, wss = deployed.endpoint("broker", "mqtts"), deployed.endpoint("broker", "mqtt-wss")
    tls = [new_device(api, mqtts, f"e2e-tls-{i}", ca_file=deployed.ca_file) for i in range(3)]
    ws = new_device(api, wss, "e2e-wss", ca_file=deployed.ca_file)
    for device in tls:
        for _ in range(100):
            device.publish()
    for _ in range(20):
        ws.publish()
    devices = [*tls, ws]
    assert all(d.wait_acked(15) for d in devices)

    def all_stored() -> bool:
        return all(sorted(stored_seqs(api, d.device_id)) == sorted(d.stats.acked_seqs) for d in devices)

    assert eventually(all_stored, timeout=5.0), "readings not all visible through the API within 5 s"
    for device in devices:
        assert api.device(device.device_id)["last_seen"] is not None
        device.close()
    assert time.time() - started < 120


def test_clients_that_do_not_trust_the_ca_are_refused(deployed: Deployed) -> None:
    api = deployed.api()
    answer = api.register(name="untrusting", wait_active=5)
    password = answer["mqtt"]["password"]
    for url in (deployed.endpoint("broker", "mqtts"), deployed.endpoint("broker", "mqtt-wss")):
        device = Device(answer["id"], password, url)  # the system's CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            device.connect(timeout=5)
        device.close()
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        RegistryClient(deployed.endpoint("registry", "https"), deployed.deployment.secret("admin_token")).devices()
    # plain MQTT to the TLS port: the broker never answers with a CONNACK
    parts = urllib.parse.urlsplit(deployed.endpoint("broker", "mqtts"))
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        sock.settimeout(5)
        try:
            reply = sock.recv(16)
        except (TimeoutError, ConnectionResetError):
            reply = b""
    assert not reply.startswith(b"\x20"), "the TLS port answered plain MQTT"


def test_no_secret_value_is_in_any_containers_environment(deployed: Deployed) -> None:
    app = deployed.deployment.spec.name
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=multicloud.app={app}"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert len(ids) == 6, ids  # db, auth, broker, 2 x ingestion, registry
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                          check=True).stdout)
    public = ("tls_cert", "tls_key", "tls_ca")  # certificates are public; the key is checked line by line
    secret = {k: v for k, v in deployed.values.items() if k not in public}
    app = deployed.deployment.app
    ca_key = LocalSecretStore("docker", app, "local").stored_secrets(app, ["tls_ca_key"])["tls_ca_key"]
    values = [line for key in (deployed.values["tls_key"], ca_key) for line in key.splitlines()
              if "PRIVATE KEY" not in line]
    for container in inspected:
        env = "\n".join(container["Config"]["Env"] or [])
        labels = json.dumps(container["Config"]["Labels"])
        leaked = [k for k, v in secret.items() if v in env or v in labels]
        assert not leaked and not any(v in env or v in labels for v in values), (container["Name"], leaked)
        assert any("_FILE=/run/secrets/" in e for e in container["Config"]["Env"]), container["Name"]


def test_the_deployed_stack_matches_its_spec(deployed: Deployed) -> None:
    planned = deployed.deployment.plan()
    assert [c.key for c in planned.changes if c.action is not Action.NOOP] == []
    statuses = {s.service: s for s in deployed.deployment.status()}
    assert statuses["ingestion"].healthy == 2
    assert all(s.running == s.desired for s in statuses.values())
