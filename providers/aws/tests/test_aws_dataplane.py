"""The aws emulator's data plane, for real, as `multicloud emulate aws` runs it: an ECS service's
tasks run as containers on the local Docker engine, read back by boto3 through DescribeServices,
ListTasks and DescribeTasks; its NLB listener forwards to healthy tasks at the address the
endpoint's DNS name stands for; awslogs reach CloudWatch Logs; stopping the emulator leaves
nothing. One emulator and one deployment serve the module (the stand-in base image, already on
the engine: building and pushing to the emulated ECR is what `e2e.sh aws` runs); what is made
through boto3 alone is in test_aws_dataplane_direct.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from multicloud_aws.dataplane import balancer_address
from multicloud_aws.emulator import client_factory

from multicloud import Deployment, spec_from_dict
from multicloud.testing.emulate import emulate
from providers.aws.tests.aws_plane import (
    COMMAND,
    Running,
    Stops,
    assert_started_as_ecs,
    assert_stopped_as_ecs,
    docker_cli,
    events_of,
    hit,
    listener,
    member_container,
    service_tasks,
    task_address,
    until,
    watch_starts,
    watch_stops,
)

pytestmark = pytest.mark.docker
SECRET = "s3cret-Qm27x"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """A two-task service with a public TCP port, an env value and a secret."""
    return {
        "name": f"dp-{uuid.uuid4().hex[:6]}",
        "services": {"web": {"image": "debian:bookworm-slim", "command": COMMAND, "replicas": 2,
                             "resources": {"cpu": 0.25, "memory": "512Mi"}, "user": "65534", "read_only": True,
                             "env": {"GREETING": "hi", "TOKEN": "${secrets.token}"},
                             "ports": [{"name": "echo", "port": 7000, "protocol": "tcp", "expose": "public"}]}},
        "secrets": {"token": {"from_env": "TOKEN"}},
        "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}},
    }


@pytest.fixture(scope="module")
def deployed(running: Running, spec: dict[str, Any]) -> Iterator[tuple[Deployment, Any, str]]:
    """The service applied through the provider; (deployment, ecs client, cluster)."""
    ecs = client_factory(running.endpoint)("ecs")
    deployment = Deployment(spec_from_dict(spec), "aws", environ={"TOKEN": SECRET}, health_timeout=120)
    deployment.apply()
    try:
        yield deployment, ecs, spec["name"]
    finally:
        deployment.destroy()


def target_group(running: Running, ecs: Any, app: str) -> tuple[Any, str]:
    """An elbv2 client and the ARN of the service's target group."""
    service = ecs.describe_services(cluster=app, services=["web"])["services"][0]
    return client_factory(running.endpoint)("elbv2"), str(service["loadBalancers"][0]["targetGroupArn"])


@contextmanager
def drain_of(elb: Any, group: str, seconds: int) -> Iterator[None]:
    """The target group's deregistration delay set to `seconds` for a while, then back to the provider's."""
    from multicloud_aws.desired import DEREGISTRATION_DELAY

    def delay(value: int) -> None:
        elb.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(value)}])

    delay(seconds)
    try:
        yield
    finally:
        delay(DEREGISTRATION_DELAY)


def test_tasks_run_from_the_task_definition(running: Running, deployed: tuple[Deployment, Any, str]) -> None:
    _, ecs, app = deployed
    service = ecs.describe_services(cluster=app, services=["web"])["services"][0]
    assert (service["desiredCount"], service["runningCount"]) == (2, 2)
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    tasks = service_tasks(ecs, app)
    assert len(tasks) == 2 and {t["lastStatus"] for t in tasks} == {"RUNNING"}
    addresses = {task_address(t) for t in tasks}
    assert len(addresses) == 2  # awsvpc: an address of its own per task
    member = member_container(running, next(iter(addresses)))
    shape = "{{json .Config.Env}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}} " \
            "{{.HostConfig.NanoCpus}}"
    info = docker_cli("inspect", "-f", shape, member).stdout
    assert f'"TOKEN={SECRET}"' in info and '"GREETING=hi"' in info  # valueFrom resolved at task start
    assert info.split()[-4:] == ["65534", "true", str(512 * 1024 * 1024), str(256 * 10**9 // 1024)]
    resolved = docker_cli("exec", member, "getent", "hosts", f"web.{app}.internal").stdout.split()
    assert set(resolved[::2]) == addresses  # the Cloud Map name answers with every task


def test_the_nlb_forwards_to_healthy_targets(running: Running, deployed: tuple[Deployment, Any, str]) -> None:
    deployment, ecs, app = deployed
    address = listener(deployment)
    assert address.startswith("127.") and address != "127.0.0.1"
    answers = {hit(address) for _ in range(12)}
    assert len(answers) == 2 and all(a.startswith("task ") for a in answers), answers
    elb = client_factory(running.endpoint)("elbv2")
    arn = ecs.describe_services(cluster=app, services=["web"])["services"][0]["loadBalancers"][0]["targetGroupArn"]
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert {(h["Target"]["Id"], h["TargetHealth"]["State"]) for h in health} == {
        (task_address(t), "healthy") for t in service_tasks(ecs, app)}


def test_awslogs_reach_cloudwatch(deployed: tuple[Deployment, Any, str]) -> None:
    deployment, ecs, app = deployed
    tasks = {t["taskArn"].rsplit("/", 1)[-1][:8] for t in service_tasks(ecs, app)}
    lines = until(lambda: [line for line in deployment.logs() if line.message == "listening as hi"], 10)
    assert {line.instance for line in lines} >= {f"web-{t}" for t in tasks}


def test_a_killed_task_is_replaced_and_traffic_resumes(running: Running, deployed: tuple[Deployment, Any, str]) -> None:
    deployment, ecs, app = deployed
    address = listener(deployment)
    victim = service_tasks(ecs, app)[0]
    docker_cli("kill", member_container(running, task_address(victim)))
    stopped = until(lambda: [t for t in service_tasks(ecs, app, "STOPPED") if t["taskArn"] == victim["taskArn"]])
    assert stopped, "the killed task was not stopped"
    assert stopped[0]["stoppedReason"] == "Essential container in task exited"
    assert stopped[0]["stopCode"] == "EssentialContainerExited" and stopped[0]["containers"][0]["exitCode"] == 137
    replaced = until(lambda: len([t for t in service_tasks(ecs, app) if t["lastStatus"] == "RUNNING"]) == 2)
    assert replaced, service_tasks(ecs, app)
    assert victim["taskArn"] not in {t["taskArn"] for t in service_tasks(ecs, app)}
    assert until(lambda: ecs.describe_services(cluster=app, services=["web"])["services"][0]["runningCount"] == 2)
    messages = [e["message"] for e in ecs.describe_services(cluster=app, services=["web"])["services"][0]["events"]]
    started = {i for _, listed in events_of(messages, "has started") for i in listed}
    assert {t["taskArn"].rsplit("/", 1)[-1] for t in service_tasks(ecs, app)} <= started, messages
    assert not any(victim["taskArn"].endswith(i) for _, listed in events_of(messages, "has stopped") for i in listed)
    new = {hit(address) for _ in range(12)}
    assert not any(a.startswith("ERR") for a in new), new  # the NLB skips the dead target at once
    assert until(lambda: len({hit(address) for _ in range(12)}) == 2, 40), "the replacement never took traffic"
    assert not deployment.plan().has_changes


def test_a_new_revision_rolls_out_without_a_gap(running: Running, deployed: tuple[Deployment, Any, str],
                                                spec: dict[str, Any]) -> None:
    """The old tasks leave the NLB before they stop, seen as ECS shows it: DEACTIVATING (desiredStatus
    STOPPED, counted in no runningCount, listed as STOPPED) while their targets drain, then on to STOPPED;
    the new ones join it ACTIVATING, then run; the service's events say so in ECS's words."""
    deployment, ecs, app = deployed
    address = listener(deployment)
    before = sorted(t["taskArn"] for t in service_tasks(ecs, app))
    earlier = {e["id"] for e in ecs.describe_services(cluster=app, services=["web"])["services"][0]["events"]}
    changed = {**spec, "services": {"web": {**spec["services"]["web"],
                                            "env": {**spec["services"]["web"]["env"], "GREETING": "again"}}}}
    rolled = Deployment(spec_from_dict(changed), "aws", environ={"TOKEN": SECRET}, health_timeout=120)
    answers: list[str] = []
    done = threading.Event()
    elb, group = target_group(running, ecs, app)

    def probe() -> None:
        while not done.is_set():
            answers.append(hit(address))
            time.sleep(0.2)

    def counts() -> tuple[dict[str, Any], set[str], set[str]]:
        service = ecs.describe_services(cluster=app, services=["web"])["services"][0]
        listed = {s: set(ecs.list_tasks(cluster=app, serviceName="web", desiredStatus=s)["taskArns"])
                  for s in ("RUNNING", "STOPPED")}
        return service, listed["RUNNING"], listed["STOPPED"]

    watcher = threading.Thread(target=probe)
    stops: list[Stops] = []
    drains = threading.Thread(target=lambda: stops.append(watch_stops(ecs, elb, app, before, group, during=counts)))
    starts: list[dict[str, list[dict[str, Any]]]] = []
    joins = threading.Thread(target=lambda: starts.append(watch_starts(ecs, app, set(before), done)))
    with drain_of(elb, group, 150):  # 5 s in the emulator (a thirtieth): the window the watch looks into
        watcher.start()
        drains.start()
        joins.start()
        try:
            rolled.apply()  # returns once the new revision's deployment completed
        finally:
            done.set()
            watcher.join()
            drains.join()
            joins.join()
    service = ecs.describe_services(cluster=app, services=["web"])["services"][0]
    assert [d["status"] for d in service["deployments"]] == ["PRIMARY"]
    assert service["deployments"][0]["rolloutState"] == "COMPLETED" and service["runningCount"] == 2
    tasks = service_tasks(ecs, app)
    assert not set(before) & {t["taskArn"] for t in tasks} and len(tasks) == 2
    assert {t["taskDefinitionArn"] for t in tasks} == {service["taskDefinition"]}
    # the NLB never lost its targets: the old tasks leave it before they stop (no refused or reset connection,
    # none sent to a stopped task's address, none cut without its line)
    assert answers and not [a for a in answers if not a.startswith("task ")], answers
    assert_stopped_as_ecs(stops[0], "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/")
    assert stops[0].during is not None, stops[0].statuses
    draining, listed_running, listed_stopped = stops[0].during
    assert draining["runningCount"] == 2 and set(before) <= listed_stopped and not set(before) & listed_running
    assert [d["runningCount"] for d in draining["deployments"] if d["status"] == "ACTIVE"] in ([0], [])
    assert_started_as_ecs(starts[0])
    assert {t["taskArn"] for t in tasks} <= set(starts[0])
    messages = [e["message"] for e in service["events"] if e["id"] not in earlier]  # newest first
    old_ids, new_ids = {a.rsplit("/", 1)[-1] for a in before}, {t["taskArn"].rsplit("/", 1)[-1] for t in tasks}
    for text, ids in [("has started", new_ids), ("has stopped", old_ids)]:  # one event per pass, each task once
        found = events_of(messages, text)
        assert found and sorted(i for _, listed in found for i in listed) == sorted(ids), (text, messages)
        assert all(m == f"(service web) {text} {len(listed)}{' running' * (text == 'has stopped')} tasks: "
                   + " ".join(f"(task {i})" for i in listed) + "." for m, listed in found), found
    for verb, count in (("registered", 2), ("deregistered", 2)):
        found = [int(m.split()[3]) for m in messages if m.startswith(f"(service web) {verb} ")]
        assert sum(found) == count and all(m.endswith(f" targets in (target-group {group})") for m in messages
                                           if m.startswith(f"(service web) {verb} ")), messages
    drained = f"(service web, taskSet {stops[0].last[0]['startedBy']}) has begun draining connections on 2 tasks."
    assert messages.index(drained) < messages.index(f"(service web) deregistered 2 targets in (target-group {group})"
                                                     ) < messages.index(events_of(messages, "has stopped")[-1][0])
    assert messages[:2] == ["(service web) has reached a steady state.",
                            f"(service web) (deployment {service['deployments'][0]['id']}) deployment completed."]
    assert not rolled.plan().has_changes


def test_stop_task_is_replaced(running: Running, deployed: tuple[Deployment, Any, str]) -> None:
    """StopTask answers at once with desiredStatus STOPPED (lastStatus still RUNNING); the task then drains
    and stops as ECS stops it, and the service starts a replacement."""
    from multicloud_aws.services import service_health

    from multicloud.contract import HealthState

    deployment, ecs, app = deployed
    elb, group = target_group(running, ecs, app)
    victim = service_tasks(ecs, app)[0]["taskArn"]

    def provider_view() -> tuple[Any, Any]:  # what status and the readiness check make of it meanwhile
        web = next(s for s in deployment.status() if s.service == "web")
        return web, service_health(deployment.provider.ctx, app, "web")  # type: ignore[attr-defined]

    with drain_of(elb, group, 90):  # 3 s
        answer = ecs.stop_task(cluster=app, task=victim, reason="operator")["task"]
        stops = watch_stops(ecs, elb, app, [victim], group, during=provider_view)
    assert (answer["desiredStatus"], answer["lastStatus"], answer["stopCode"]) == ("STOPPED", "RUNNING",
                                                                                  "UserInitiated"), answer
    assert_stopped_as_ecs(stops, "UserInitiated", "operator")
    assert stops.during is not None, stops.statuses
    web, health = stops.during  # the draining task is no running replica, and no failure
    assert web.running <= 2 and web.state in ("deploying", "running") and health.state != HealthState.UNHEALTHY
    assert until(lambda: victim not in {t["taskArn"] for t in service_tasks(ecs, app)} and len(
        [t for t in service_tasks(ecs, app) if t["lastStatus"] == "RUNNING"]) == 2)
    gone = ecs.describe_tasks(cluster=app, tasks=[victim])["tasks"][0]
    assert (gone["lastStatus"], gone["stoppedReason"], gone["stopCode"]) == ("STOPPED", "operator", "UserInitiated")


def test_endpoints_are_reachable_here(running: Running, deployed: tuple[Deployment, Any, str],
                                      spec: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "multicloud.yaml").write_text(yaml.safe_dump(spec))
    shown = subprocess.run(
        [sys.executable, "-m", "multicloud.cli.main", "endpoints", "-f", str(tmp_path / "multicloud.yaml"),
         "--target", "aws", "-o", "json"], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **running.exports})
    assert shown.returncode == 0, shown.stderr
    public = [e for e in json.loads(shown.stdout) if e["public"]]
    assert [e["url"].split(".", 1)[1] for e in public] == ["elb.us-east-1.amazonaws.com:7000"]
    host = public[0]["url"].split("//", 1)[1].rsplit(":", 1)[0]
    assert public[0]["address"] == balancer_address(host, running.endpoint)  # the documented mapping
    assert hit(public[0]["address"]).startswith("task ")  # the DNS name stands for that address


def test_two_emulators_serve_their_own_app_of_one_name(running: Running, deployed: tuple[Deployment, Any, str],
                                                      spec: dict[str, Any]) -> None:
    """A second `multicloud emulate aws` (another shell, another test run) deploys an app of the same
    name: its NLB has a DNS name (NAME-ID, as AWS names one) and an address of its own, and each serves its own tasks;
    Ctrl-C (SIGINT) of the second, its workload still up, leaves nothing of it behind."""
    deployment = deployed[0]
    mine = next(e for e in deployment.endpoints() if e.public)
    other_command = [*COMMAND[:-1], COMMAND[-1].replace("task $ENV{HOSTNAME}", "other")]
    other_spec = {**spec, "services": {"web": {**spec["services"]["web"], "replicas": 1, "command": other_command}}}
    with emulate("aws", timeout=120) as other:
        other_spec["targets"] = {"aws": {**spec["targets"]["aws"], "endpoint_url": other.exports["AWS_ENDPOINT_URL"]}}
        theirs = Deployment(spec_from_dict(other_spec), "aws", environ={"TOKEN": SECRET}, health_timeout=120)
        theirs.apply()
        shown = next(e for e in theirs.endpoints() if e.public)
        assert shown.url != mine.url and shown.address != mine.address
        names = {e.url.split("//")[1].split(".")[0].rsplit("-", 1)[0] for e in (shown, mine)}
        assert names == {f"mc-{deployment.app}"}  # mc-APP-ID: one NLB name, two IDs
        assert shown.address == balancer_address(shown.url.split("//")[1].rsplit(":", 1)[0], other.exports[
            "AWS_ENDPOINT_URL"])
        assert until(lambda: hit(shown.address) == "other", 40), hit(shown.address)
        assert all(hit(mine.address).startswith("task ") for _ in range(6))
        owner = f"{socket.gethostname()}:{other.pid}"
        assert docker_cli("ps", "-q", "--filter", f"label=multicloud.dataplane.owner={owner}").stdout.strip()
        os.kill(other.pid, signal.SIGINT)
        selector = f"label=multicloud.dataplane.owner={owner}"
        assert until(lambda: not any(docker_cli(kind, *(("-aq",) if kind == "ps" else ("ls", "-q")), "--filter",
                                              selector).stdout.strip() for kind in ("ps", "network", "volume")), 60)
    assert hit(mine.address).startswith("task ")  # the first emulator's app is untouched


def test_destroy_leaves_no_task(running: Running, deployed: tuple[Deployment, Any, str]) -> None:
    deployment = deployed[0]
    address = listener(deployment)
    deployment.destroy()
    assert until(lambda: hit(address).startswith("ERR"), 10), "the NLB listener outlived its NLB"
    left = until(lambda: not docker_cli("ps", "-aq", "--filter", f"label=multicloud.dataplane.owner={running.owner}")
                  .stdout.strip())
    assert left, "destroy left task containers"
