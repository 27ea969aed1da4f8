"""The aws emulator's data plane, for real, with what boto3 makes directly (no provider): a service whose
image is missing from ECR trips the circuit breaker, a failing NLB health check is honoured after the
grace period, NLBs of one name in two accounts listen apart, an RDS instance is a real PostgreSQL, and
the NLB drops a deregistered target at once. One `multicloud emulate aws` serves the module."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from typing import Any

import pytest
from multicloud_aws.dataplane import balancer_address
from multicloud_aws.emulator import client_factory

from multicloud.testing.psql import psql
from providers.aws.tests.aws_plane import COMMAND, Running, docker_cli, events_of, until

pytestmark = pytest.mark.docker


def test_a_deregistered_target_gets_no_new_connection_at_once() -> None:
    """The NLB's half of that handover: a target the scheduler deregisters leaves the listener's choice
    at once, not at the health checks' next round (its task stops a drain later)."""
    from types import SimpleNamespace

    from multicloud_aws.dataplane.nlb import Balancers

    with socket.create_server(("127.0.0.1", 0)) as old, socket.create_server(("127.0.0.1", 0)) as new:
        ports = {"old": old.getsockname()[1], "new": new.getsockname()[1]}
        group = SimpleNamespace(health_check_interval_seconds=30, healthy_threshold_count=1, port=7000,
                                unhealthy_threshold_count=2,
                                targets={n: {"Id": "127.0.0.1", "Port": p} for n, p in ports.items()})
        balancers = Balancers("0")
        balancers._check({"tg": group})  # a round of health checks: both accept
        assert sorted(balancers.targets("tg")) == sorted(("127.0.0.1", p) for p in ports.values())
        balancers.registered("tg", {("127.0.0.1", ports["new"])})
        assert balancers.targets("tg") == [("127.0.0.1", ports["new"])]
        assert balancers.state("tg", "127.0.0.1", ports["old"]) is None


def test_an_image_missing_from_ecr_fails_the_deployment(running: Running) -> None:
    factory = client_factory(running.endpoint)
    ecs, ec2 = factory("ecs"), factory("ec2")
    registry = factory("ecr").get_authorization_token()["authorizationData"][0]["proxyEndpoint"].split("//")[-1]
    cluster = f"pull-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    image = f"{registry}/{cluster}/app:1.0"
    definition = ecs.register_task_definition(
        family=cluster, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": image, "essential": True}])["taskDefinition"]
    ecs.create_service(cluster=cluster, serviceName="app", taskDefinition=definition["taskDefinitionArn"],
                       desiredCount=1, launchType="FARGATE", networkConfiguration={
                           "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
    try:
        failed = until(lambda: ecs.describe_services(cluster=cluster, services=["app"])["services"][0][
            "deployments"][0]["rolloutState"] == "FAILED", 30)
        assert failed, "three tasks that cannot pull did not trip the circuit breaker"
        arns = ecs.list_tasks(cluster=cluster, serviceName="app", desiredStatus="STOPPED")["taskArns"]
        stopped = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        assert len(stopped) == 3 and all(t["stopCode"] == "TaskFailedToStart" for t in stopped)
        assert stopped[0]["stoppedReason"].startswith("CannotPullContainerError:") and image in stopped[0][
            "stoppedReason"]
        assert not ecs.list_tasks(cluster=cluster, serviceName="app")["taskArns"]
        service = ecs.describe_services(cluster=cluster, services=["app"])["services"][0]
        deployment = service["deployments"][0]
        assert deployment["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
        messages = [e["message"] for e in service["events"]]  # newest first; nothing to roll back to
        assert messages[0] == f"(service app) (deployment {deployment['id']}) deployment failed: tasks failed to start."
        unplaced = [m for m in messages if m.startswith("(service app) was unable to place a task. Reason: ")]
        assert len(unplaced) == 3 and all("CannotPullContainerError: " in m and m.endswith(".") for m in unplaced)
        assert len(events_of(messages, "(service app) has started 1 tasks: ")) == 3, messages
        assert not events_of(messages, "has stopped"), messages  # none ran: the scheduler stopped no running task
    finally:
        ecs.delete_service(cluster=cluster, service="app", force=True)
        ecs.delete_cluster(cluster=cluster)


def test_nlbs_of_one_name_in_two_accounts_listen_apart(running: Running) -> None:
    """NLBs of one name in two accounts are named apart (NAME-ID, as AWS names them) and listen apart."""
    import boto3

    def nlb(factory: Any) -> dict[str, Any]:
        subnet = factory("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
        return dict(factory("elbv2").create_load_balancer(Name="twin", Subnets=[subnet], Type="network")[
            "LoadBalancers"][0])

    role = client_factory(running.endpoint)("sts").assume_role(RoleArn="arn:aws:iam::111111111111:role/twin",
                                                                RoleSessionName="twin")["Credentials"]
    session = boto3.Session(aws_access_key_id=role["AccessKeyId"], aws_secret_access_key=role["SecretAccessKey"],
                            aws_session_token=role["SessionToken"], region_name="us-east-1")

    def twin(service: str) -> Any:
        return session.client(service, endpoint_url=running.endpoint)

    mine, theirs = nlb(client_factory(running.endpoint)), nlb(twin)
    assert mine["LoadBalancerArn"].split(":")[4] != theirs["LoadBalancerArn"].split(":")[4]
    assert mine["DNSName"] != theirs["DNSName"] and mine["DNSName"].startswith("twin-")
    addresses = [b["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"] for b in (mine, theirs)]
    assert addresses[0] != addresses[1] and addresses[0] == balancer_address(mine["DNSName"], running.endpoint)
    client_factory(running.endpoint)("elbv2").delete_load_balancer(LoadBalancerArn=mine["LoadBalancerArn"])
    twin("elbv2").delete_load_balancer(LoadBalancerArn=theirs["LoadBalancerArn"])


def test_the_health_check_grace_period_is_kept_and_honoured(running: Running) -> None:
    """healthCheckGracePeriodSeconds is returned as sent and keeps a task that fails its NLB health
    check running until it is over (an update to 0 ends it at once)."""
    factory = client_factory(running.endpoint)
    ecs, ec2, elb = factory("ecs"), factory("ec2"), factory("elbv2")
    name = f"grace-{uuid.uuid4().hex[:6]}"
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    target = elb.create_target_group(Name=name, Protocol="TCP", Port=7001, VpcId=subnet["VpcId"], TargetType="ip",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     UnhealthyThresholdCount=2)["TargetGroups"][0]
    balancer = elb.create_load_balancer(Name=name, Subnets=[subnet["SubnetId"]], Type="network")["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="TCP", Port=7001, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": target["TargetGroupArn"]}])
    ecs.create_cluster(clusterName=name)
    definition = ecs.register_task_definition(  # listens on 7000: the checks of 7001 fail
        family=name, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "debian:bookworm-slim", "essential": True,
                               "command": COMMAND}])["taskDefinition"]
    ecs.create_service(cluster=name, serviceName="app", taskDefinition=definition["taskDefinitionArn"],
                       desiredCount=1, launchType="FARGATE", healthCheckGracePeriodSeconds=3600,
                       loadBalancers=[{"targetGroupArn": target["TargetGroupArn"], "containerName": "app",
                                       "containerPort": 7001}],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]],
                                                                     "securityGroups": [group]}})
    try:
        service = ecs.describe_services(cluster=name, services=["app"])["services"][0]
        assert service["healthCheckGracePeriodSeconds"] == 3600
        health = lambda: [h["TargetHealth"]["State"] for h in elb.describe_target_health(  # noqa: E731
            TargetGroupArn=target["TargetGroupArn"])["TargetHealthDescriptions"]]
        assert until(lambda: health() == ["unhealthy"], 60), health()
        first = ecs.list_tasks(cluster=name, serviceName="app")["taskArns"]
        assert not until(lambda: ecs.list_tasks(cluster=name, serviceName="app")["taskArns"] != first, 2)
        ecs.update_service(cluster=name, service="app", healthCheckGracePeriodSeconds=0)
        assert ecs.describe_services(cluster=name, services=["app"])["services"][0][
            "healthCheckGracePeriodSeconds"] == 0
        stopped = until(lambda: ecs.list_tasks(cluster=name, serviceName="app", desiredStatus="STOPPED")["taskArns"],
                         20)
        assert set(stopped) & set(first), (stopped, first)
        reason = ecs.describe_tasks(cluster=name, tasks=stopped[:1])["tasks"][0]["stoppedReason"]
        assert reason == f"Task failed ELB health checks in (target-group {target['TargetGroupArn']})", reason
        ident = next(iter(set(stopped) & set(first))).rsplit("/", 1)[-1]
        service = ecs.describe_services(cluster=name, services=["app"])["services"][0]
        messages = [e["message"] for e in service["events"]]
        assert f"(service app) (task {ident}) (port 7001) is unhealthy in (target-group {target['TargetGroupArn']}) " \
               "due to (reason Health checks failed)." in messages, messages
        assert f"(service app) has stopped 1 running tasks: (task {ident})." in messages, messages
    finally:
        ecs.delete_service(cluster=name, service="app", force=True)
        ecs.delete_cluster(cluster=name)
        elb.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])


def test_the_api_only_fixture_runs_nothing(aws_emulator: Any) -> None:
    assert not any(n.startswith("data plane") for n in aws_emulator.notes)  # conftest: the API only


def test_an_rds_instance_is_a_real_postgresql(running: Running) -> None:
    from multicloud_aws.dataplane.rds import loopback

    rds = client_factory(running.endpoint)("rds")
    identifier = f"dp-{uuid.uuid4().hex[:6]}"
    rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", EngineVersion="15",
                           DBInstanceClass="db.t4g.micro", AllocatedStorage=20, DBName="shop",
                           MasterUsername="owner", MasterUserPassword="first-Pw-1234")

    def status() -> str:
        return str(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"])

    assert status() == "creating"  # as RDS: minutes, here until the server answers with its database
    assert until(lambda: status() == "available", timeout=240), status()
    url = f"postgresql://owner:{{}}@{loopback(identifier, running.endpoint)}:5432/shop"
    answer = psql(url.format("first-Pw-1234"), "SELECT current_user || '@' || current_database()")
    assert answer.stdout.strip() == "owner@shop", answer.stderr
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["Endpoint"]["Address"]
    cloud_map = client_factory(running.endpoint)("servicediscovery")
    cloud_map.create_private_dns_namespace(Name=f"{identifier}.internal", Vpc="vpc-any")
    spaces = cloud_map.list_namespaces()["Namespaces"]
    namespace = next(n["Id"] for n in spaces if n["Name"] == f"{identifier}.internal")
    alias = cloud_map.create_service(Name="db", NamespaceId=namespace, DnsConfig={
        "RoutingPolicy": "WEIGHTED", "DnsRecords": [{"Type": "CNAME", "TTL": 10}]})["Service"]
    cloud_map.register_instance(ServiceId=alias["Id"], InstanceId="rds", Attributes={"AWS_INSTANCE_CNAME": endpoint})

    unit = hashlib.sha256(f"rds-{identifier}".encode()).hexdigest()[:8]  # in the data plane's container name

    def names() -> set[str]:  # what the server answers to on its VPC's network
        found = docker_cli("ps", "-q", "--filter", f"name=-{unit}-").stdout.split()
        inspected = json.loads(docker_cli("inspect", *found).stdout) if found else []
        return {a for c in inspected for n in c["NetworkSettings"]["Networks"].values() for a in n["Aliases"] or []}

    assert until(lambda: {endpoint, f"db.{identifier}.internal"} <= names(), timeout=120), names()
    rds.modify_db_instance(DBInstanceIdentifier=identifier, MasterUserPassword="second-Pw-5678", ApplyImmediately=True)
    assert until(lambda: psql(url.format("second-Pw-5678"), "SELECT 1").stdout.strip() == "1", timeout=120)
    rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
    assert until(lambda: not docker_cli("ps", "-aq", "--filter", f"label=multicloud.dataplane.owner={running.owner}",
                                      "--filter", f"name=-{unit}-").stdout.strip(), timeout=60)
