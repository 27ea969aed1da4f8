"""What the aws data-plane tests share: the task server they run, `multicloud emulate aws` with its data
plane, and how they read tasks, their containers and the NLB listener."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from multicloud import Deployment
from multicloud.testing.emulate import emulate

SERVER = ("$|=1; my $s=IO::Socket::INET->new(LocalPort=>7000, Listen=>16, ReuseAddr=>1) or die qq(listen: $!); "
          "print qq(listening as $ENV{GREETING}\\n); while (my $c=$s->accept) { print $c qq(task $ENV{HOSTNAME}\\n); "
          "close $c; }")
COMMAND = ["perl", "-MIO::Socket::INET", "-e", SERVER]
"""A TCP server in the stand-in base image (perl-base is all it has): one line naming the task per connection."""


def docker_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI's run of these arguments (output captured, never raising)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=False)


@dataclass
class Running:
    """A `multicloud emulate aws` process: its endpoint, what it exports, the owner label of its objects."""

    endpoint: str
    exports: dict[str, str]
    owner: str


@contextmanager
def emulated_aws() -> Iterator[Running]:
    """`multicloud emulate aws` (with its data plane; a skip when no engine or base image), its exports in
    os.environ while it runs; after it stops, no container, network or volume of it is left."""
    if docker_cli("image", "inspect", "debian:bookworm-slim").returncode != 0:
        pytest.skip("no Docker engine with debian:bookworm-slim (scripts/setup-engine.sh)")
    with emulate("aws", timeout=120) as emulated:
        if not any(c.startswith("# data plane: ECS services run") for c in emulated.comments):
            pytest.skip(" / ".join(emulated.comments))
        owner = f"{socket.gethostname()}:{emulated.pid}"
        saved = {k: os.environ.get(k) for k in emulated.exports}
        os.environ.update(emulated.exports)
        try:
            yield Running(emulated.exports["AWS_ENDPOINT_URL"], dict(emulated.exports), owner)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    selector = f"label=multicloud.dataplane.owner={owner}"
    assert not docker_cli("ps", "-aq", "--filter", selector).stdout.strip()
    assert not docker_cli("network", "ls", "-q", "--filter", selector).stdout.strip()
    assert not docker_cli("volume", "ls", "-q", "--filter", selector).stdout.strip()


def service_tasks(ecs: Any, cluster: str, status: str = "RUNNING") -> list[dict[str, Any]]:
    """The tasks of the cluster's service `web` in this desired status, described."""
    arns = ecs.list_tasks(cluster=cluster, serviceName="web", desiredStatus=status)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def task_address(task: dict[str, Any]) -> str:
    """A task's private IPv4 address."""
    return str(task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"])


def member_container(running: Running, address: str) -> str:
    """The id of the member container of the task at `address`."""
    listed = docker_cli("ps", "-q", "--filter", f"label=multicloud.dataplane.owner={running.owner}",
                     "--filter", "label=multicloud.dataplane.role=member").stdout.split()
    for ident in listed:
        mode = docker_cli("inspect", "-f", "{{.HostConfig.NetworkMode}}", ident).stdout.strip()
        holder = mode.removeprefix("container:")
        networks = docker_cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                              holder).stdout
        if address in networks.split():
            return ident
    raise AssertionError(f"no container for task address {address}: {listed}")


def listener(deployment: Deployment) -> str:
    """The loopback address the NLB's DNS name (the public endpoint's host) stands for, as endpoints say."""
    return next(e.address for e in deployment.endpoints() if e.public)


SLOW = 15.0
"""How long a probe waits for its line: an answer that is slow on a busy machine (seen: 5 s at load 20)
is still an answer; a refused, reset or timed-out connection, or one closed without a line, is not."""


def hit(address: str) -> str:
    """The line a task answers through the NLB listener ("" when the connection closed without one), or ERR."""
    try:
        with socket.create_connection((address, 7000), timeout=SLOW) as conn:
            return conn.recv(100).decode().strip()
    except OSError as exc:
        return f"ERR {exc}"


def until(check: Any, timeout: float = 60) -> Any:
    """What `check` returns once it is truthy, or at the deadline (every 0.3 s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


LIFECYCLE = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING",
             "STOPPED")
"""The lastStatus a service task behind a load balancer passes through, in order (ECS's task lifecycle)."""


def watch_starts(ecs: Any, cluster: str, known: set[str], done: threading.Event) -> dict[str, list[dict[str, Any]]]:
    """Describe the service's tasks not in `known` every 0.02 s until `done` is set: task ARN -> its
    description each time its lastStatus changed, in order (ACTIVATING lasts a scheduler pass, 0.5 s:
    polled this often, a busy machine's stall would have to last most of that for both tasks to miss it)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    while not done.is_set():
        for task in service_tasks(ecs, cluster):
            if task["taskArn"] not in known:
                history = seen.setdefault(task["taskArn"], [])
                if not history or history[-1]["lastStatus"] != task["lastStatus"]:
                    history.append(task)
        time.sleep(0.02)
    return seen


def assert_started_as_ecs(seen: dict[str, list[dict[str, Any]]]) -> None:
    """Each task went through the lifecycle in order to RUNNING, its containers running from ACTIVATING on,
    with the times ECS sets in order; one at least was seen ACTIVATING (a pass long: registering)."""
    statuses_of = {arn: [t["lastStatus"] for t in history] for arn, history in seen.items()}
    assert any("ACTIVATING" in statuses for statuses in statuses_of.values()), statuses_of
    for arn, history in seen.items():
        statuses = statuses_of[arn]
        assert statuses[-1] == "RUNNING" and [LIFECYCLE.index(s) for s in statuses] == sorted(
            {LIFECYCLE.index(s) for s in statuses}), statuses
        for task in history:
            running = task["lastStatus"] in ("ACTIVATING", "RUNNING")
            assert {c["lastStatus"] for c in task["containers"]} == {"RUNNING" if running else "PENDING"}, task
            assert ("startedAt" in task) == (task["lastStatus"] == "RUNNING"), task
            assert ("pullStoppedAt" in task) >= running and ("connectivityAt" in task) >= running, task
        last = history[-1]
        assert last["connectivity"] == "CONNECTED", last
        assert last["createdAt"] <= last["connectivityAt"] <= last["pullStartedAt"] <= last["pullStoppedAt"] <= \
            last["startedAt"], last


def events_of(messages: list[str], text: str) -> list[tuple[str, list[str]]]:
    """The messages that hold `text`, each with the task IDs it lists as `(task ID)`."""
    return [(m, re.findall(r"\(task ([0-9a-f]+)\)", m)) for m in messages if text in m]


@dataclass
class Stops:
    """What DescribeTasks and DescribeTargetHealth showed of tasks on their way to STOPPED."""

    statuses: dict[str, list[str]]
    """Task ARN -> each lastStatus seen, in order (a repeat kept once)."""
    deactivating: dict[str, dict[str, Any]]
    """Task ARN -> its first description while DEACTIVATING."""
    targets: dict[str, set[str]]
    """Task ARN -> the states DescribeTargetHealth gave its address while it was DEACTIVATING."""
    reasons: set[tuple[str, str]]
    """(State, Reason) of every draining target seen."""
    last: list[dict[str, Any]]
    """The tasks as last described."""
    during: Any = None
    """What `during` returned, called once while every task was DEACTIVATING."""


def watch_stops(ecs: Any, elb: Any, cluster: str, arns: list[str], group: str, *,
                during: Callable[[], Any] | None = None, timeout: float = 120) -> Stops:
    """Describe the tasks and their target group's health every 0.1 s until every task is STOPPED (or the
    deadline); call `during` once when all of them are DEACTIVATING."""
    seen = Stops({arn: [] for arn in arns}, {}, {arn: set() for arn in arns}, set(), [])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        seen.last = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        health = elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        states = {h["Target"]["Id"]: h["TargetHealth"] for h in health}
        seen.reasons |= {(h["State"], h.get("Reason", "")) for h in states.values() if h["State"] == "draining"}
        for task in seen.last:
            history = seen.statuses[task["taskArn"]]
            if not history or history[-1] != task["lastStatus"]:
                history.append(task["lastStatus"])
            if task["lastStatus"] == "DEACTIVATING":
                seen.deactivating.setdefault(task["taskArn"], task)
                seen.targets[task["taskArn"]].add(states.get(task_address(task), {}).get("State", "absent"))
        if during is not None and seen.during is None and all(h[-1:] == ["DEACTIVATING"]
                                                              for h in seen.statuses.values()):
            seen.during = during()
        if all(h and h[-1] == "STOPPED" for h in seen.statuses.values()):
            break
    return seen


def assert_stopped_as_ecs(seen: Stops, code: str, reason: str) -> None:
    """Each task went RUNNING -> DEACTIVATING (its target draining, desiredStatus STOPPED with its reason
    and code already) -> ... -> STOPPED in lifecycle order, its stop times in order, its target gone."""
    for arn, history in seen.statuses.items():
        assert history[-1] == "STOPPED" and "DEACTIVATING" in history, (arn, history)
        assert [LIFECYCLE.index(s) for s in history] == sorted({LIFECYCLE.index(s) for s in history}), history
        draining = seen.deactivating[arn]
        assert (draining["desiredStatus"], draining["stopCode"]) == ("STOPPED", code), draining
        assert draining["stoppedReason"].startswith(reason) and "stoppedAt" not in draining, draining
        assert "draining" in seen.targets[arn], seen.targets[arn]  # (the pass deregisters it just after)
    assert seen.reasons == {("draining", "Target.DeregistrationInProgress")}, seen.reasons
    for task in seen.last:
        assert task["desiredStatus"] == "STOPPED" and {c["lastStatus"] for c in task["containers"]} == {"STOPPED"}
        assert task["stoppingAt"] <= task["executionStoppedAt"] <= task["stoppedAt"], task
