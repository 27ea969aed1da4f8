"""The IoT example applied from nothing to each cloud's emulator, with the clouds' own latencies,
against the longest dependency chain of its operations.

Realistic latencies (issue 15): ECS 100 ms a call and 30 s from a deployment to its steady state;
ARM (ACI) 20 s a long-running operation; Cloud Run 10 s an operation. The emulators already had
these settings (aws: gaps.set_latency / set_rollout_seconds; azure: op_seconds; gcp:
faults.slow_operations); --scale multiplies them (default 0.25: about a minute for the three;
1: as the clouds, about three minutes). What does not scale (the API calls' own CPU on this
machine, the pollers' caps: the engine's health poll 0.5 s, Cloud Run's client 1 s) weighs more
in a scaled-down run, so the figures of record are --scale 1.

The chain: each step of the plan costs what the cloud makes it wait at the least (ECS: a call,
and the steady state for a service; ARM: an operation for the container group, which a PUT
creates long-running, and three for a flexible server, one after another: the server, its database,
its firewall rule; Cloud Run: an operation for a service), and the longest path through the
steps' requirements is summed. An apply whose independent steps overlap and which waits for
nothing else comes in just over it. The example's images are given (built and pushed beforehand),
so the apply is the control plane's alone.

Run: .venv/bin/python bench/cloud_apply.py [--scale 0.25] [--clouds aws,azure,gcp] [--trace]
Goal: apply <= 1.2x the longest chain, per cloud.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from multicloud.api import Deployment
from multicloud.planner import Action, Plan
from multicloud.retry import RetryPolicy
from multicloud.spec import load

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iot-backend" / "multicloud.yaml"
GOAL = 1.2
ECS_CALL, ECS_STEADY, ARM_OPERATION, RUN_OPERATION = 0.1, 30.0, 20.0, 10.0
SECRETS = ("IOT_DB_PASSWORD", "IOT_ADMIN_TOKEN", "IOT_BROKER_FEED_TOKEN", "IOT_INGESTION_MQTT_PASSWORD",
           "IOT_REGISTRY_MQTT_PASSWORD", "IOT_DATABASE_URL")
AZURE_OPERATIONS = {"group": 1, "postgres": 3}
"""ARM operations a step waits for, one after another: a container group's PUT; a flexible server's create,
then its database, then its firewall rule for Azure services (a flexible server runs one operation at a
time: another is refused 409 ServerBusy, so Terraform's azurerm locks them per server too)."""
Cost = Callable[[str], float]
"""What one step (by resource kind) costs at the least on a cloud."""


def chain(plan: Plan, cost: Cost) -> float:
    """The longest path through the plan's steps, each costing cost(kind), along their requirements."""
    steps = {c.id: c for c in plan.changes if c.action is not Action.NOOP}
    done: dict[str, float] = {}

    def finish(key: str) -> float:
        if key not in done:
            change = steps[key]
            done[key] = cost(change.resource.kind) + max((finish(r) for r in change.requires if r in steps),
                                                          default=0.0)
        return done[key]

    return max((finish(key) for key in steps), default=0.0)


@contextmanager
def aws(scale: float) -> Iterator[tuple[Any, Cost]]:
    """The ECS emulator at ECS's latencies; yields (provider, cost)."""
    from multicloud_aws import gaps
    from multicloud_aws.emulator import AwsEmulator, client_factory
    from multicloud_aws.provider import AwsEcsProvider

    running = AwsEmulator(registry=None).start()
    gaps.set_latency(ECS_CALL * scale)
    gaps.set_rollout_seconds(ECS_STEADY * scale)
    try:
        provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=client_factory(running.endpoint))
        yield provider, lambda kind: ECS_CALL * scale + (ECS_STEADY * scale if kind == "service" else 0.0)
    finally:
        gaps.set_latency(0.0)
        gaps.set_rollout_seconds(0.0)
        running.stop()


@contextmanager
def azure(scale: float) -> Iterator[tuple[Any, Cost]]:
    """The ARM emulator with ARM's long-running operations; yields (provider, cost)."""
    from multicloud_azure.emulator import AzureEmulator
    from multicloud_azure.provider import AzureAciProvider

    handle = AzureEmulator(op_seconds=ARM_OPERATION * scale).serve()
    os.environ["MULTICLOUD_AZURE_TOKEN"] = handle.token
    settings = {"subscription_id": "00000000-0000-0000-0000-000000000000", "resource_group": "iot",
                "location": "westeurope", "arm_endpoint": handle.endpoint, "ca_bundle": handle.ca_bundle,
                "poll_interval": 0.05}
    try:
        yield AzureAciProvider(settings), lambda kind: ARM_OPERATION * scale * AZURE_OPERATIONS.get(kind, 0)
    finally:
        handle.stop()


@contextmanager
def gcp(scale: float) -> Iterator[tuple[Any, Cost]]:
    """The Cloud Run emulator with Cloud Run's operations; yields (provider, cost)."""
    from multicloud_gcp.emulator import CloudRunEmulator
    from multicloud_gcp.provider import CloudRunProvider

    running = CloudRunEmulator().start()
    running.model.faults.slow_operations(RUN_OPERATION * scale)
    settings = {**running.settings("grpc", project="my-project"), "project_number": "123456789012",
                "vpc_network": "iot-vpc", "vpc_subnet": "iot-run"}
    try:
        yield CloudRunProvider(settings), lambda kind: RUN_OPERATION * scale if kind == "service" else 0.0
    finally:
        running.stop()


CLOUDS: Mapping[str, Callable[[float], Any]] = {"aws": aws, "azure": azure, "gcp": gcp}


def secrets() -> dict[str, str]:
    """Values for the example's secrets (URL-safe; a throwaway certificate pair is not needed by an emulator)."""
    values = {name: f"bench-{name.lower()}-value" for name in SECRETS}
    values["IOT_DATABASE_URL"] = "postgresql://iot:bench@db.example.com:5432/iot"
    return values


IMAGES = "\n".join(
    ["targets:"] + [
        f"  {target}:\n    overrides:\n" + "".join(
            f"      {service}: {{build: null, image: registry.example.com/iot-backend/{service}:1.0}}\n"
            for service in ("auth", "broker", "ingestion", "registry")
        )
        for target in ("aws", "azure", "gcp")
    ]
)
"""The example's images given (built and pushed beforehand), so that the apply is the control plane's alone."""


def one(cloud: str, scale: float, work: Path, trace: bool = False) -> tuple[float, float, Plan]:
    """Apply the example to a fresh emulator of one cloud; (seconds, chain seconds, the plan)."""
    environ = {**os.environ, **secrets()}
    images = work / "images.yaml"
    images.write_text(IMAGES)
    spec = load([EXAMPLE, images])
    with CLOUDS[cloud](scale) as (provider, cost):
        deployment = Deployment(spec, cloud, provider=provider, environ=environ, concurrency=8,
                                retry=RetryPolicy(attempts=8, base_delay=0.05), health_timeout=600)
        planned = deployment.plan()
        started = time.perf_counter()
        spans: dict[str, list[float]] = {}

        def note(event: Any) -> None:
            if event.kind in ("start", "done", "skipped", "failed"):
                spans.setdefault(event.resource, []).append(time.perf_counter() - started)

        deployment.on_event = note
        deployment.apply(planned)
        seconds = time.perf_counter() - started
        if trace:
            for key, marks in sorted(spans.items(), key=lambda item: item[1][0]):
                print(f"    {marks[0]:7.2f} -> {marks[-1]:7.2f}  {key}")
        return seconds, chain(planned, cost), planned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25, help="latencies times this (1: as the clouds)")
    parser.add_argument("--clouds", default="aws,azure,gcp")
    parser.add_argument("--trace", action="store_true", help="print when each step started and ended")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cloud-apply-"))
    os.environ.setdefault("MULTICLOUD_STATE_DIR", str(work / "state"))
    print(f"cloud_apply: the IoT example from nothing, latencies x{args.scale:g} (ECS {ECS_CALL:g} s a call, "
          f"{ECS_STEADY:g} s to steady; ARM {ARM_OPERATION:g} s an operation; Cloud Run {RUN_OPERATION:g} s)")
    for cloud in args.clouds.split(","):
        seconds, longest, planned = one(cloud, args.scale, work, args.trace)
        kinds = sorted({c.resource.kind for c in planned.changes})
        verdict = "met" if seconds <= GOAL * longest else "NOT met"
        print(f"  {cloud:6} apply {seconds:7.2f} s  longest chain {longest:7.2f} s  ratio {seconds / longest:5.2f}x"
              f"  ({len(planned.changes)} steps: {', '.join(kinds)})  goal <= {GOAL}x: {verdict}")


if __name__ == "__main__":
    main()
