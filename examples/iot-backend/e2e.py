"""The IoT backend end to end on one target: local (Docker), or aws, azure or gcp (the ECS, ACI or
Cloud Run emulator with its data plane), as `e2e.sh TARGET` runs it.

It applies the example's one spec (under a fresh app name, target settings pointed at what runs
here; its database is what the spec declares: a container locally, RDS, a flexible server or
Cloud SQL served by the emulator's data plane), registers devices through the registry endpoint,
publishes QoS 1 readings over MQTT over TLS with the simulator's device client (the broker's
certificate verified), reads every acknowledged reading back through the API, re-plans (must be
empty), destroys, and checks that nothing is left. Prints each step's time and the total; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLE), str(EXAMPLE / "tests")]

from iotsim.api import RegistryClient  # noqa: E402
from iotsim.device import Device  # noqa: E402

from multicloud import Deployment, spec_from_dict  # noqa: E402
from multicloud.contract import Endpoint  # noqa: E402

DEVICES = 3
READINGS = 100
STARTED = time.monotonic()
LOCAL_TARGET: dict[str, Any] = {
    "provider": "docker",
    "bind_address": "127.0.0.1",
    "public_host": "127.0.0.1",
    "publish": {"broker.mqtts": 0, "broker.mqtt-wss": 0, "registry.https": 0},
}
"""The local target of the e2e runs: public ports on ports the engine picks, so runs never clash."""


def say(text: str) -> None:
    """One progress line with the seconds since the start."""
    print(f"e2e [{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


@dataclass
class Prepared:
    """A target made ready: the deployment, its secrets, the CA devices trust (None: the one multicloud
    generated for the spec's TLS secret, fetched after the apply), what is left after destroy, and how an
    endpoint the target reports is reached from here (its URL by default)."""

    deployment: Deployment
    environ: dict[str, str]
    ca_file: str | None
    leftovers: Callable[[], list[str]]
    reach: Callable[[Endpoint], str] = lambda endpoint: endpoint.url
    stopped: Callable[[], list[str]] = list
    """What is left once the emulator stopped (every container, network and volume of its data plane)."""


def progress(event: Any) -> None:
    """Say when a service's step starts, builds or pushes, and ends (the slow parts of an apply)."""
    if event.resource.startswith("service/") and event.kind in ("start", "progress", "done", "failed"):
        say(f"{event.resource}: {event.message}")


def certificate_names(spec: dict[str, Any], names: list[str]) -> None:
    """Issue the spec's generated TLS certificate for these names too (what this run reaches the target
    at, where the target itself cannot know it at plan time)."""
    spec["secrets"]["tls"]["generate"]["names"] += names


def session_leftovers(session: str, *, everything: bool = False) -> Callable[[], list[str]]:
    """What is left of an emulator's data-plane session: its containers' and volumes' names (`everything`:
    and its networks', which it keeps while it runs: a VPC's, the groups', the instances' network)."""

    def leftovers() -> list[str]:
        import docker

        api = docker.APIClient(version="1.41")
        selector = {"label": [f"multicloud.dataplane={session}"]}
        found = [c["Names"][0] for c in api.containers(all=True, filters=selector)]
        found += [v["Name"] for v in (api.volumes(filters=selector) or {}).get("Volumes") or []]
        if everything:
            found += [n["Name"] for n in api.networks(filters=selector)]
        return found

    return leftovers


@contextmanager
def local_target(spec: dict[str, Any], work: Path) -> Iterator[Prepared]:
    """The spec on the local engine, its public ports on ports the engine picks."""
    spec["targets"] = {"local": dict(LOCAL_TARGET)}
    environ: dict[str, str] = {}
    deployment = Deployment(spec_from_dict(spec, base_dir=str(EXAMPLE)), "local", environ=environ, health_timeout=300)

    def leftovers() -> list[str]:
        import docker

        api = docker.APIClient(version="1.41")
        selector = {"label": [f"multicloud.app={spec['name']}"]}
        found = [c["Names"][0] for c in api.containers(all=True, filters=selector)]
        found += [n["Name"] for n in api.networks(filters=selector)]
        return found + [v["Name"] for v in (api.volumes(filters=selector) or {}).get("Volumes") or []]

    yield Prepared(deployment, environ, None, leftovers)


@contextmanager
def aws_target(spec: dict[str, Any], work: Path) -> Iterator[Prepared]:
    """The spec on the ECS emulator with its data plane: the provider builds and pushes the images
    to the emulated ECR, secrets go to its Secrets Manager, db is an RDS instance (a real PostgreSQL
    on the tasks' VPC network), and the NLB's DNS name resolves, in this process, to the loopback
    address the emulator reports for it."""
    from multicloud_aws import names
    from multicloud_aws.emulator import AwsEmulator

    with ExitStack() as stack:
        emulator = AwsEmulator(run=True)
        running = stack.enter_context(_stopping(emulator.start()))
        if emulator.data_plane is None or "ECR images are pushed" not in running.notes[0]:
            raise SystemExit(f"e2e: {' / '.join(running.notes)}")
        os.environ.update(running.environment)
        aws = spec["targets"]["aws"]
        spec["targets"] = {"aws": aws}
        environ: dict[str, str] = {}
        say(f"ECS emulator at {running.endpoint}; the NLB will be {names.load_balancer(spec['name'])}-ID.elb."
            f"{aws['region']}.amazonaws.com, which the certificate's *.elb.{aws['region']}.amazonaws.com names")
        parsed = spec_from_dict(spec, base_dir=str(EXAMPLE))
        deployment = Deployment(parsed, "aws", environ=environ, health_timeout=300, on_event=progress)
        session = emulator.data_plane.plane.session
        leftovers, stopped = session_leftovers(session), session_leftovers(session, everything=True)
        hosts: dict[str, str] = {}
        stack.enter_context(resolving(lambda name, service: (hosts[name], service) if name in hosts else None))

        def reach(endpoint: Endpoint) -> str:
            """The NLB's DNS name stands for the address the emulator reports (endpoints' address)."""
            hosts[urllib.parse.urlsplit(endpoint.url).hostname or ""] = endpoint.address
            return endpoint.url

        yield Prepared(deployment, environ, None, leftovers, reach, stopped)


@contextmanager
def _stopping(running: Any) -> Iterator[Any]:
    """A started emulator, stopped when the block ends."""
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def azure_target(spec: dict[str, Any], work: Path) -> Iterator[Prepared]:
    """The spec on the ACI emulator with its data plane; db is an Azure Database for PostgreSQL
    flexible server (a real PostgreSQL on the groups' network)."""
    from multicloud_azure.emulator import AzureEmulator
    from multicloud_azure.emulator.running import group_key

    with ExitStack() as stack:
        handle = AzureEmulator(op_seconds=0.05, run=True).serve()
        stack.callback(handle.stop)
        if handle.backend.runner is None:
            raise SystemExit(f"e2e: {handle.running.notes[0]}")
        os.environ.update(handle.running.environment)
        environ: dict[str, str] = {}
        azure = spec["targets"]["azure"]
        azure.update(
            resource_group=f"e2e-{uuid.uuid4().hex[:6]}",
            arm_endpoint=handle.endpoint,
            ca_bundle=handle.ca_bundle,
            poll_interval=0.2,
        )
        azure["acr"] = container_registry(handle, azure["subscription_id"], azure["resource_group"])
        spec["targets"] = {"azure": azure}  # multicloud builds the services and pushes them to that registry
        address = handle.backend.runner.address(group_key(azure["subscription_id"], azure["resource_group"],
                                                          spec["name"]))
        certificate_names(spec, [address])  # the group's FQDN is in it already; this run reaches its address
        say(f"ACI emulator at {handle.endpoint}; the group's address will be {address}")
        parsed = spec_from_dict(spec, base_dir=str(EXAMPLE))
        deployment = Deployment(parsed, "azure", environ=environ, health_timeout=300)
        session = handle.backend.runner.plane.session
        leftovers, stopped = session_leftovers(session), session_leftovers(session, everything=True)

        def reach(endpoint: Endpoint) -> str:
            """The group's fqdn stands for its loopback address."""
            parts = urllib.parse.urlsplit(endpoint.url)
            return parts._replace(netloc=f"{address}:{parts.port}").geturl()

        yield Prepared(deployment, environ, None, leftovers, reach, stopped)


def container_registry(handle: Any, subscription: str, resource_group: str) -> str:
    """Create an Azure Container Registry in the emulator (as `az acr create` would); its name."""
    import json
    import ssl
    import urllib.request

    name = f"e2e{uuid.uuid4().hex[:8]}"
    path = (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
            f"Microsoft.ContainerRegistry/registries/{name}?api-version=2023-07-01")
    request = urllib.request.Request(  # noqa: S310 - the emulator's https endpoint
        f"{handle.endpoint}{path}", method="PUT", data=json.dumps({"location": "westeurope"}).encode(),
        headers={"Authorization": f"Bearer {handle.token}", "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=handle.ca_bundle)
    with urllib.request.urlopen(request, context=context) as answer:  # noqa: S310
        say(f"ACR {name} at {json.loads(answer.read())['properties']['loginServer']}")
    return name


@contextmanager
def gcp_target(spec: dict[str, Any], work: Path) -> Iterator[Prepared]:
    """The spec on the Cloud Run emulator with its data plane: secrets in its Secret Manager, db a
    Cloud SQL instance (a real PostgreSQL its data plane runs), and run.app names resolved to its TLS front."""
    from multicloud_gcp.emulator import CloudRunEmulator

    with ExitStack() as stack:
        running = CloudRunEmulator(run=True).start()
        stack.callback(running.stop)
        if not running.front or running.model.runner is None:
            raise SystemExit(f"e2e: {running.notes[-1]}")
        environ: dict[str, str] = {}
        gcp = spec["targets"]["gcp"]
        gcp.update(running.settings(project=gcp["project"], region=gcp["region"]))
        gcp["project_number"] = running.model.project_number
        os.environ.update(running.environment)  # its Artifact Registry, where multicloud pushes the builds
        spec["targets"] = {"gcp": gcp}
        for name, source in spec["secrets"].items():  # Secret Manager holds the values on Cloud Run
            if "from_env" in source:  # (multicloud writes the generated ones there itself)
                running.model.secret_values[name] = environ[source["from_env"]]
        front_host, front_port = running.front.rsplit(":", 1)
        stack.enter_context(resolving(lambda name, service: (front_host, int(front_port)) if name.lower().endswith(
            ".run.app") and str(service) in ("443", "None") else None))
        say(f"Cloud Run emulator at {running.endpoint}; run.app URLs stand for the front at {running.front}")
        parsed = spec_from_dict(spec, base_dir=str(EXAMPLE))
        deployment = Deployment(parsed, "gcp", environ=environ, health_timeout=300)
        session = running.model.runner.plane.session
        yield Prepared(deployment, environ, running.front_ca, session_leftovers(session),
                       stopped=session_leftovers(session, everything=True))


@contextmanager
def resolving(lookup: Callable[[str, Any], tuple[str, Any] | None]) -> Iterator[None]:
    """Make this process resolve (name, service) to what `lookup` answers (host, port), where it answers."""
    original = socket.getaddrinfo

    def getaddrinfo(name: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        found = lookup(name, service) if isinstance(name, str) else None
        return original(*(found or (name, service)), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = original


TARGETS = {"local": local_target, "aws": aws_target, "azure": azure_target, "gcp": gcp_target}


def flow(ready: Prepared, work: Path) -> int:
    """Register devices, publish QoS 1 readings over MQTT over TLS (gcp: over WebSockets over TLS),
    read every acknowledged one back; return the count."""
    if ready.ca_file is None:  # the CA multicloud generated, as `multicloud secrets ca` prints it
        ready.ca_file = str(work / "ca.crt")
        Path(ready.ca_file).write_text(ready.deployment.certificate_authority(), encoding="utf-8")
    public = {(e.service, e.port): e for e in ready.deployment.endpoints() if e.public}
    say(f"endpoints: {', '.join(sorted(e.url + (f' ({e.address})' if e.address else '') for e in public.values()))}")
    registry = ready.reach(next(e for (service, _), e in public.items() if service == "registry"))
    api = RegistryClient(registry, ready.deployment.secret("admin_token"), ca_file=ready.ca_file)
    brokers = {port: e for (service, port), e in public.items() if service == "broker"}
    broker = ready.reach(brokers.get("mqtts") or brokers.get("mqtt-wss") or next(iter(brokers.values())))
    ca_file = ready.ca_file
    deadline = time.monotonic() + 180
    while True:  # the registry serves once it has its database schema and its broker session
        try:
            api.devices(limit=1)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"e2e: the registry at {registry} did not answer within 180 s: {exc}") from exc
            time.sleep(1)
    say(f"the registry answers at {registry}")
    devices = []
    for index in range(DEVICES):
        answer = api.register(name=f"e2e-{index}", wait_active=30)
        device = Device(answer["id"], answer["mqtt"]["password"], broker, ca_file=ca_file)
        device.connect(timeout=30, retry_refused=10)
        devices.append(device)
    say(f"{DEVICES} devices registered through {registry}; each publishes {READINGS} QoS 1 readings to {broker}")
    for device in devices:
        for _ in range(READINGS):
            device.publish(qos=1)
    if not all(d.wait_acked(60) for d in devices):
        raise SystemExit("e2e: not every reading was acknowledged within 60 s")
    acked = sum(len(d.stats.acked_seqs) for d in devices)
    deadline = time.monotonic() + 60
    while True:
        missing = sum(
            len(set(d.stats.acked_seqs) - {r["seq"] for r in api.readings(d.device_id, limit=10000)}) for d in devices
        )
        if not missing:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"e2e: {missing} of {acked} acknowledged readings are not readable through the API")
        time.sleep(0.5)
    for device in devices:
        device.close()
    return acked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    target = parser.parse_args().target
    spec: dict[str, Any] = yaml.safe_load((EXAMPLE / "multicloud.yaml").read_text(encoding="utf-8"))
    spec["name"] = f"iot-e2e-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="iot-e2e-") as work, TARGETS[target](spec, Path(work)) as ready:
        deployment, leftovers = ready.deployment, ready.leftovers
        try:
            say(f"applying {spec['name']} to {target}")
            deployment.apply()
            acked = flow(ready, Path(work))
            say(f"all {acked} acknowledged readings read back through the API")
            if deployment.plan().has_changes:
                raise SystemExit(f"e2e: the re-plan is not empty:\n{deployment.plan()}")
            say("re-plan: no changes")
        finally:
            say("destroying")
            deployment.destroy(volumes=True)
        deadline = time.monotonic() + 60
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.5)
        if leftovers():
            raise SystemExit(f"e2e: left behind after destroy: {leftovers()}")
        say("destroyed: nothing left")
    if ready.stopped():
        raise SystemExit(f"e2e: left behind after the emulator stopped: {ready.stopped()}")
    if target != "local":
        say("emulator stopped: no container, network or volume of its data plane left")
    say(f"PASS {target} in {time.monotonic() - STARTED:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
