"""Runs the IoT stack as multicloud.yaml declares it (local target) with plain `docker build`/`docker run` (tests)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from multicloud_docker.postgres import as_service
from multicloud_docker.provider import DockerProvider

from multicloud.addressing import DirectAddressing, resolve_service
from multicloud.backing import bind
from multicloud.build import build_hash, context_path
from multicloud.fallbacks import as_served
from multicloud.resources import Sensitive
from multicloud.spec.backing import password_secret, url_secret
from multicloud.spec.loader import load
from multicloud.spec.models import Build, Service, Spec
from multicloud.spec.placeholders import SECRETS_DIR, secret_files
from multicloud.spec.targets import target_spec

EXAMPLE = Path(__file__).resolve().parents[1]
SPEC = EXAMPLE / "multicloud.yaml"
TARGET = "local"
# What the tests run differently from the spec, and why: devices and the API speak plain mqtt:// and
# http:// unless a stack is given `tls` (then the broker's TLS listeners are the spec's), and the
# ws:// tests need the broker's plain WebSockets listener, which the spec leaves off.
HARNESS_ENV = {
    "broker": {"MQTTS_PORT": "0", "WSS_PORT": "0", "MQTT_TLS_CERT_FILE": "", "MQTT_TLS_KEY_FILE": "",
               "WS_PORT": "8080"},
    "registry": {"TLS_CERT_FILE": "", "TLS_KEY_FILE": ""},
}
# (service, container port) -> the name under which DockerStack.ports records its host port
HARNESS_PORTS = {("broker", 1883): "mqtt", ("broker", 8080): "ws", ("broker", 8883): "mqtts", ("broker", 8081): "wss",
                 ("registry", 8000): "registry", ("ingestion", 8002): "ingestion"}
SERVICES = ("db", "auth", "broker", "ingestion", "registry")
IMAGE_PREFIX = "iot-backend-test"
DB_BUILD = Build(context="./services/db")
"""The image the harness runs the `db` resource from: the example's own, as the offline postgres:15 stand-in."""


def docker(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120) -> str:
    """Run a docker CLI command and return its stdout."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def build_images(services: tuple[str, ...] = SERVICES) -> dict[str, str]:
    """Build each service image as the spec's `build:` says (context, Dockerfile, target) unless built; return
    name -> tag. Tags are the core's context hash (what .dockerignore keeps, the Dockerfile, the target), so
    another checkout building at the same time (a CI clone, another engineer's tree) never swaps its images
    in under this one's name, and an unchanged context is not built again.
    """
    spec = load(SPEC)
    tags = {}
    for name in services:
        build = DB_BUILD if name == "db" else spec.services[name].build
        if build is None:
            raise RuntimeError(f"{SPEC}: services.{name} has no build")
        tag = f"{IMAGE_PREFIX}/{name}:{build_hash(spec.source.base_dir, name, build)}"
        if not docker("images", "-q", tag):
            context = context_path(spec.source.base_dir, build)
            target = ["--target", build.target] if build.target else []
            docker("build", "-q", "-t", tag, "-f", str(context / build.dockerfile), *target, str(context), timeout=1800)
        tags[name] = tag
    return tags


def new_secrets() -> dict[str, str]:
    """Fresh random secrets, URL-safe (the database password goes inside a URL)."""
    names = ("db_password", "admin_token", "broker_feed_token", "ingestion_mqtt_password", "registry_mqtt_password")
    return {name: secrets.token_urlsafe(18) for name in names}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DockerStack:
    """One running copy of the stack on its own user-defined network, published on 127.0.0.1."""

    images: dict[str, str]
    ingestion_replicas: int = 2
    prefix: str = field(default_factory=lambda: f"iotbe-{secrets.token_hex(3)}")
    secrets: dict[str, str] = field(default_factory=new_secrets)
    ports: dict[str, int] = field(default_factory=dict)
    containers: list[str] = field(default_factory=list)
    tls: Path | None = None
    spec: Spec = field(default_factory=lambda: load(SPEC))
    secret_dir: Path | None = None
    """A folder made by iotsim.devca: the broker then also serves mqtts (8883) and wss (8081) with its certificate."""

    @property
    def services(self) -> dict[str, Service]:
        """The spec's services as the local target runs them (served and its resources bound as the docker
        provider does), and `db`, the container the docker provider runs for the db resource."""
        provider = DockerProvider({})
        bound = bind(as_served(target_spec(self.spec, TARGET), provider.capabilities), provider)
        db = as_service("db", self.spec.resources["db"], self.images["db"])
        return {**bound.services, "db": db}

    @property
    def network(self) -> str:
        """The user-defined network's name."""
        return self.prefix

    @property
    def api_url(self) -> str:
        """The registry's URL from the host."""
        return f"http://127.0.0.1:{self.ports['registry']}"

    @property
    def mqtt_url(self) -> str:
        """The broker's MQTT (TCP) URL from the host."""
        return f"mqtt://127.0.0.1:{self.ports['mqtt']}"

    @property
    def ws_url(self) -> str:
        """The broker's MQTT-over-WebSockets URL from the host."""
        return f"ws://127.0.0.1:{self.ports['ws']}/mqtt"

    @property
    def mqtts_url(self) -> str:
        """The broker's MQTT over TLS URL from the host (with `tls` only)."""
        return f"mqtts://127.0.0.1:{self.ports['mqtts']}"

    @property
    def wss_url(self) -> str:
        """The broker's MQTT over WebSockets over TLS URL from the host (with `tls` only)."""
        return f"wss://127.0.0.1:{self.ports['wss']}/mqtt"

    @property
    def admin_token(self) -> str:
        """The bootstrap operator token."""
        return self.secrets["admin_token"]

    def name(self, service: str, replica: int = 1) -> str:
        """A container's name."""
        return f"{self.prefix}-{service}-{replica}"

    def database_url(self) -> str:
        """The services' database URL (inside the network)."""
        return f"postgresql://iot:{self.secrets['db_password']}@db:5432/iot"

    def _run(self, service: str, env: dict[str, str], publish: dict[int, int], replica: int = 1) -> None:
        """Start one replica as the spec runs it: its volumes, its secrets as files in /run/secrets, `env`."""
        name = self.name(service, replica)
        args = ["run", "-d", "--name", name, "--hostname", name, "--network", self.network,
                "--network-alias", service, "--label", f"iot-backend-test={self.prefix}"]
        for host_port, container_port in publish.items():
            args += ["-p", f"127.0.0.1:{host_port}:{container_port}"]
        for mount in self.services[service].volumes:
            args += ["-v", f"{self.prefix}-{mount.source.replace('.', '-')}:{mount.target}"]
        for secret in secret_files(self.services[service]):  # those its environment still points at
            if f"{SECRETS_DIR}/{secret}" in env.values():
                args += ["-v", f"{self.secret_dir / secret}:{SECRETS_DIR}/{secret}:ro"]
        for key in env:
            args += ["-e", key]  # values travel in the environment, never on the command line
        docker(*args, self.images[service], env={**os.environ, **env})
        self.containers.append(name)

    def spec_secrets(self) -> dict[str, str]:
        """The value of each of the spec's secrets in this stack (the TLS pair only with `tls`)."""
        values = {**self.secrets, password_secret("db"): self.secrets["db_password"],
                  url_secret("db"): self.database_url()}
        if self.tls is not None:
            values.update(tls_cert=(self.tls / "server.crt").read_text(), tls_key=(self.tls / "server.key").read_text())
        return values

    def env(self, service: str) -> dict[str, str]:
        """A service's environment as the spec gives it on the local target, then HARNESS_ENV (and, with
        `tls`, the broker's TLS listeners as the spec has them)."""
        address = DirectAddressing(self.services, host=lambda name: name)
        resolved = resolve_service(self.services[service], address, self.spec_secrets(), app=self.prefix).env
        env = {k: v.reveal() if isinstance(v, Sensitive) else str(v) for k, v in resolved.items()}
        overrides = dict(HARNESS_ENV.get(service, {}))
        if service == "broker" and self.tls is not None:
            overrides = {k: v for k, v in overrides.items() if k == "WS_PORT"}
        return {**env, **overrides}

    def start(self) -> DockerStack:
        """Write the secret files, create the network and every container, then wait until the stack answers."""
        self.secret_dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-secrets-"))
        for secret, value in self.spec_secrets().items():
            path = self.secret_dir / secret
            path.write_text(value, encoding="utf-8")
            path.chmod(0o644)  # read by the containers' own users; the folder is private (0700)
        docker("network", "create", "--label", f"iot-backend-test={self.prefix}", self.network)
        for service in ("db", "auth", "broker"):
            self._run(service, self.env(service), self._publish(service))
        for replica in range(1, self.ingestion_replicas + 1):
            self._run("ingestion", self.env("ingestion"), self._publish("ingestion", replica), replica=replica)
        self._run("registry", self.env("registry"), self._publish("registry"))
        self.wait_healthy()
        return self

    def _publish(self, service: str, replica: int = 1) -> dict[int, int]:
        """host port -> container port for what the tests reach (HARNESS_PORTS; the broker's TLS listeners
        only with `tls`), each recorded in `ports`; a port the spec no longer has is an error."""
        publish = {}
        for (owner, number), key in HARNESS_PORTS.items():
            if owner != service or (key in ("mqtts", "wss") and self.tls is None):
                continue
            if key != "ws" and number not in {p.port for p in self.services[service].ports}:
                raise RuntimeError(f"{SPEC}: services.{service} has no port {number} (tests/stack.py HARNESS_PORTS)")
            self.ports[f"ingestion-{replica}" if service == "ingestion" else key] = host = free_port()
            publish[host] = number
        return publish

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait until the registry and every ingestion replica answer /healthz with 200."""
        urls = [f"{self.api_url}/healthz"] + [self.metrics_url(r).replace("/metrics", "/healthz")
                                              for r in range(1, self.ingestion_replicas + 1)]
        deadline = time.monotonic() + timeout
        for url in urls:
            while not self._ok(url):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} not healthy after {timeout} s\n{self.logs()}")
                time.sleep(0.3)
        status = urllib.request.Request(f"{self.api_url}/broker/status",
                                        headers={"Authorization": f"Bearer {self.admin_token}"})
        while not self._ok(status):  # the registry reaches auth and auth has the broker's feed
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry cannot reach auth\n{self.logs()}")
            time.sleep(0.3)
        while not self.ingestion_connected(timeout=0):  # the broker admits and subscribes the service account
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingestion not connected to the broker\n{self.logs()}")
            time.sleep(0.2)

    @staticmethod
    def _ok(url: str | urllib.request.Request) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics_url(self, replica: int = 1) -> str:
        """An ingestion replica's /metrics URL from the host."""
        return f"http://127.0.0.1:{self.ports[f'ingestion-{replica}']}/metrics"

    def health(self, replica: int = 1) -> dict[str, object]:
        """An ingestion replica's /healthz body (status 503 included)."""
        url = self.metrics_url(replica).replace("/metrics", "/healthz")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                body: dict[str, object] = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        return body

    def subscribed(self, replica: int) -> bool:
        """Whether an ingestion replica reports its MQTT subscriptions granted (`mqtt_subscribed`: the share
        group's and the wills'; connected alone, a replica may not be in the group yet)."""
        try:
            return bool(self.health(replica).get("mqtt_subscribed"))
        except OSError:
            return False

    def ingestion_connected(self, timeout: float = 30.0) -> bool:
        """True once every running ingestion replica is `subscribed`."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self.subscribed(r) for r in range(1, self.ingestion_replicas + 1)
                   if self.running(self.name("ingestion", r))):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def metric(self, name: str, replica: int = 1, labels: str = "") -> float:
        """One sample of an ingestion replica's metrics (0 when absent)."""
        with urllib.request.urlopen(self.metrics_url(replica), timeout=3) as response:
            text = response.read().decode()
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            key, _, value = line.rpartition(" ")
            if key == wanted:
                return float(value)
        return 0.0

    def running(self, container: str) -> bool:
        """Whether a container is running."""
        return docker("inspect", "-f", "{{.State.Running}}", container, check=False) == "true"

    def start_load(self, devices: list[dict[str, str]], count: int, rate: float) -> subprocess.Popen[str]:
        """Start iotsim.load (iotsim.fastpub) in a container on the network: `count` QoS 1 readings from
        these devices ({"id", "password"}), paced at `rate` per second (0: flat out); see load_result."""
        env = {**os.environ, "LOAD_DEVICES": json.dumps(devices)}  # passwords travel in the environment
        broker = ["mqtts://broker:8883", "--ca", "/tls/ca.crt"] if self.tls is not None else ["mqtt://broker:1883"]
        return subprocess.Popen(
            ["docker", "run", "--rm", "--network", self.network, "-e", "LOAD_DEVICES", "-e", "PYTHONPATH=/opt/sim",
             "-v", f"{EXAMPLE / 'iotsim'}:/opt/sim/iotsim:ro", *self.ca_mount(), "--entrypoint", "python3",
             self.images["ingestion"], "-m", "iotsim.load", "--broker", *broker, "--count", str(count),
             "--rate", str(rate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )

    def ca_mount(self) -> list[str]:
        """docker run arguments that put the development CA at /tls/ca.crt (none without `tls`)."""
        return [] if self.tls is None else ["-v", f"{self.tls / 'ca.crt'}:/tls/ca.crt:ro"]

    @staticmethod
    def load_result(process: subprocess.Popen[str], timeout: float = 600) -> dict[str, float]:
        """Wait for a load container; return its figures (sent, acked, failed, first_publish, last_ack)."""
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"iotsim.load failed: {err.strip()[-2000:]}")
        result: dict[str, float] = json.loads(out.splitlines()[-1])
        return result

    def psql(self, sql: str) -> str:
        """Run SQL in the db container (tests only) and return the unaligned output."""
        return docker("exec", "-e", "PGPASSWORD", self.name("db"), "psql", "-h", "127.0.0.1", "-U", "iot", "-d",
                      "iot", "-At", "-c", sql, env={**os.environ, "PGPASSWORD": self.secrets["db_password"]})

    def logs(self, tail: int = 30) -> str:
        """The last lines of every container's log (secrets are never logged by the services)."""
        out = []
        for name in self.containers:
            result = subprocess.run(["docker", "logs", "--tail", str(tail), name], capture_output=True, text=True,
                                    check=False)
            out.append(f"--- {name}\n{result.stdout}{result.stderr}")
        return "\n".join(out)

    def stop(self) -> None:
        """Remove every container, the volumes and the network."""
        if self.containers:
            docker("rm", "-f", "-v", *self.containers, check=False)
        for volume in self.spec.volumes:
            docker("volume", "rm", "-f", f"{self.prefix}-{volume}", check=False)
        docker("network", "rm", self.network, check=False)
        if self.secret_dir is not None:
            shutil.rmtree(self.secret_dir, ignore_errors=True)
