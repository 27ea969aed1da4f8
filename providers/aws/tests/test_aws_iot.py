"""The IoT example applied to the emulated AWS: what it creates, that a re-apply is free,
that secrets stay secret, and that destroy leaves nothing tagged."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from multicloud_aws.fargate import is_valid
from multicloud_aws.provider import AwsEcsProvider

from multicloud.certificates import certificate_names
from multicloud.render import plan_json, plan_text
from multicloud.spec import spec_from_dict


def iot_spec(data: dict[str, Any]) -> Any:
    """The example spec, its aws services running pushed images instead of builds (builds are
    pushed to the emulator's registry in test_aws_build.py)."""
    overrides = data["targets"]["aws"].setdefault("overrides", {})
    for name in data["services"]:
        if name not in data["targets"]["aws"].get("exclude", []):
            overrides.setdefault(name, {}).update({"build": None, "image": f"registry.example.com/iot/{name}:1.0"})
    return spec_from_dict(data)


@pytest.fixture
def iot(make_provider: Callable[..., AwsEcsProvider], iot_example: dict[str, Any], iot_secrets: dict[str, str],
        deploy: Any) -> Any:
    provider = make_provider(region="us-east-1")
    deployed = deploy(iot_spec(iot_example), provider, iot_secrets)
    yield deployed
    deployed.destroy(volumes=True)


def test_iot_backend_on_emulated_aws(iot: Any, calls: Any, iot_secrets: dict[str, str]) -> None:
    used = [n for n in iot.target_spec.used_secrets() if not n.endswith("_ca_key")]  # that one is never handed out
    secrets = [*iot_secrets.values(), *(iot.secret(n) for n in used)]
    provider: AwsEcsProvider = iot.provider
    app = iot.app
    planned = iot.plan()
    shown = plan_text(planned, verbose=True) + json.dumps(plan_json(planned), default=str)
    assert not any(value in shown for value in secrets)
    assert iot.apply(planned).ok

    ecs = provider.ctx.client("ecs")
    cluster = ecs.describe_clusters(clusters=[app])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    described = ecs.describe_services(cluster=app, services=["auth", "broker", "ingestion", "registry"])["services"]
    assert {s["serviceName"]: s["desiredCount"] for s in described} == {
        "auth": 1, "broker": 1, "ingestion": 2, "registry": 1}
    assert all(s["runningCount"] == s["desiredCount"] and s["launchType"] == "FARGATE" for s in described)
    for service in described:
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
        assert is_valid(int(task["cpu"]), int(task["memory"]))
        container = task["containerDefinitions"][0]
        assert container["logConfiguration"]["options"]["awslogs-group"] == f"/multicloud/{app}"
        assert not any(v in json.dumps(container) for v in secrets)
        assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in container.get("secrets", []))
    broker = next(s for s in described if s["serviceName"] == "broker")
    assert {b["containerPort"] for b in broker["loadBalancers"]} == {8883, 8081}  # TLS passes through the NLB
    names = {s["name"] for s in ecs.describe_task_definition(taskDefinition=broker["taskDefinition"])
             ["taskDefinition"]["containerDefinitions"][0]["secrets"]}
    assert {"MQTT_TLS_CERT", "MQTT_TLS_KEY", "BROKER_FEED_TOKEN"} <= names  # X_FILE becomes X from Secrets Manager
    ingestion = next(s for s in described if s["serviceName"] == "ingestion")
    names = {s["name"] for s in ecs.describe_task_definition(taskDefinition=ingestion["taskDefinition"])
             ["taskDefinition"]["containerDefinitions"][0]["secrets"]}
    assert names == {"INGESTION_MQTT_PASSWORD", "DATABASE_URL"}

    elb = provider.ctx.client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"mc-{app}"])["LoadBalancers"][0]
    assert lb["Type"] == "network" and lb["Scheme"] == "internet-facing"
    listeners = {x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert set(listeners) == {8883, 8081, 8000} and listeners[8883]["Protocol"] == "TCP"
    mqtt_group = listeners[8883]["DefaultActions"][0]["TargetGroupArn"]
    group = elb.describe_target_groups(TargetGroupArns=[mqtt_group])["TargetGroups"][0]
    assert group["TargetType"] == "ip" and group["Port"] == 8883
    assert len(elb.describe_target_health(TargetGroupArn=mqtt_group)["TargetHealthDescriptions"]) == 1

    cloud_map = provider.ctx.client("servicediscovery")
    namespace = next(n for n in cloud_map.list_namespaces()["Namespaces"] if n["Name"] == f"{app}.internal")
    registered = cloud_map.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace["Id"]]}])["Services"]
    assert {s["Name"] for s in registered} == {"auth", "broker", "ingestion", "registry", "db"}  # db: RDS's alias
    found = cloud_map.discover_instances(NamespaceName=f"{app}.internal", ServiceName="ingestion")["Instances"]
    assert len(found) == 2
    groups = provider.ctx.client("logs").describe_log_groups(logGroupNamePrefix=f"/multicloud/{app}")["logGroups"]
    assert groups[0]["retentionInDays"] == 30

    everything = provider.ctx.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "multicloud:app", "Values": [app]}])["ResourceTagMappingList"]
    assert not any(v in json.dumps(everything) for v in secrets)
    status = iot.status()
    assert {s.service: (s.running, s.desired) for s in status}["ingestion"] == (2, 2)
    assert not any(v in repr(status) for v in secrets)
    lines = list(iot.logs("ingestion"))
    assert len(lines) == 2 and all(line.service == "ingestion" for line in lines)
    endpoints = {e.port: e for e in iot.endpoints()}
    assert endpoints["mqtts"].public and endpoints["mqtts"].url == f"mqtts://{lb['DNSName']}:8883"
    assert endpoints["mqtt-wss"].public and endpoints["mqtt-wss"].url == f"wss://{lb['DNSName']}:8081/mqtt"
    assert endpoints["https"].public and endpoints["https"].url == f"https://{lb['DNSName']}:8000"
    assert not endpoints["mqtt"].public and endpoints["mqtt"].url == f"mqtt://broker.{app}.internal:1883"

    # the NLB exists now, named by AWS as the certificate's *.elb.REGION.amazonaws.com foresaw: one apply converged
    cert = iot.secret("tls_cert")
    assert certificate_names(cert) == ["localhost", "*.elb.us-east-1.amazonaws.com", "127.0.0.1"]  # DNS names first
    assert re.fullmatch(rf"mc-{app}-[0-9a-f]{{16}}\.elb\.us-east-1\.amazonaws\.com", lb["DNSName"])
    assert not iot.plan().has_changes, plan_text(iot.plan())
    calls.clear()
    again = iot.apply()
    assert again.changed == 0
    assert calls.mutations() == []
    # one read per generated secret and per part of a TLS secret (Secrets Manager keeps them); observe reads a
    # fixed number of pages (4 for the database: its security and subnet groups, the instances, its alias); the
    # engine then polls health once per service, the NLB and the database
    generated = len(iot.target_spec.generated_secrets()) + 4 * len(iot.target_spec.tls_secrets())
    assert len(calls.reads()) <= generated + 17 + len(status) + 2, calls.reads()
    assert iot.secret("tls_cert") == cert


def test_destroy_leaves_nothing_tagged(make_provider: Callable[..., AwsEcsProvider], app_name: str, deploy: Any,
                                       tagged: Any, iot_example: dict[str, Any], iot_secrets: dict[str, str]) -> None:
    provider = make_provider()
    deployed = deploy(iot_spec(iot_example), provider, iot_secrets)
    deployed.apply()
    assert tagged(provider, app_name)
    kept = deployed.plan(destroy=True).kept  # the database stays unless asked
    assert {r.key for r in kept} == {"postgres/db", "db-security-group/db", "secret/resources_db_password"}
    deployed.destroy(volumes=True)
    assert tagged(provider, app_name) == []
    assert provider.observe(app_name) == []
    spaces = provider.ctx.client("servicediscovery").list_namespaces()["Namespaces"]
    assert not [n for n in spaces if n["Name"] == f"{app_name}.internal"]
    revisions = provider.ctx.client("ecs").list_task_definitions(familyPrefix=f"{app_name}_")["taskDefinitionArns"]
    assert revisions == []
