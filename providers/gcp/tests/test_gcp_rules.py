"""What real Cloud Run refuses or starves (issue 16, items 15-21): refused at plan, or rendered the way
Cloud Run accepts, and the emulator refusing what Cloud Run refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.errors import ApplyFailedError, CapabilityError, SettingsError
from multicloud.registry import create_provider
from multicloud.spec import Spec, spec_from_dict
from providers.gcp.tests.test_gcp_desired import SETTINGS, render
from providers.gcp.tests.test_gcp_emulator import PARENT, service, services_client

HTTP = {"name": "http", "port": 8000, "protocol": "http", "expose": "public"}
BROKER = {
    "image": "broker:1",
    "resources": {"cpu": 1, "memory": "1Gi"},
    "ports": [{"name": "mqtt-ws", "port": 8080, "protocol": "mqtt-ws", "expose": "public"}],
}


def refused(services: dict[str, Any], **settings: Any) -> str:
    """The plan error a spec gets on gcp-cloudrun."""
    with pytest.raises(CapabilityError) as caught:
        render(services, **settings)
    return str(caught.value)


def one_spec(services: dict[str, Any]) -> Spec:
    return spec_from_dict({"name": "shop", "services": services, "targets": {"gcp": {"provider": "gcp-cloudrun"}}})


def env_of(payload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in payload["template"]["containers"][0]["env"]}


# 15: reserved env names
def test_port_equal_to_the_container_port_is_left_to_cloud_run_and_other_reserved_names_are_refused() -> None:
    api = render({"api": {"image": "x:1", "ports": [HTTP], "env": {"PORT": "8000", "MODE": "a"}}})["api"]
    assert env_of(api.payload) == {"MODE": "a"}
    text = refused({"api": {"image": "x:1", "ports": [HTTP], "env": {"PORT": "9000", "K_SERVICE": "x"}}})
    assert "services.api.env.PORT: PORT is reserved on Cloud Run" in text and "(8000)" in text
    assert "services.api.env.K_SERVICE: K_SERVICE is reserved on Cloud Run" in text


def test_the_emulator_refuses_reserved_env_names_as_cloud_run_does(
    cloudrun: RunningCloudRun, transport: str
) -> None:
    client = services_client(cloudrun, transport)
    env = [run_v2.EnvVar(name="PORT", value="8080"), run_v2.EnvVar(name="K_REVISION", value="r")]
    with pytest.raises(exceptions.BadRequest) as caught:
        client.create_service(parent=PARENT, service_id="reserved", service=service(env=env))
    assert "The following reserved env names were provided: PORT, K_REVISION" in caught.value.message


def test_a_service_setting_its_own_port_deploys_on_the_emulator(
    provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    spec = one_spec({"api": {"image": "x:1", "ports": [HTTP], "env": {"PORT": "8000"}}})
    result = deploy(spec, provider_for("rest")).apply()
    assert result.ok


# 16: internal services need the VPC
def test_an_internal_service_referenced_without_a_vpc_is_a_plan_error() -> None:
    services = {
        "auth": {"image": "x:1", "ports": [{**HTTP, "expose": "internal"}]},
        "api": {"image": "x:1", "ports": [HTTP], "env": {"AUTH": "${services.auth.url}", "H": "${services.auth.host}"}},
    }
    text = refused(services)
    assert "services.api.env.AUTH: auth is internal" in text and "services.api.env.H:" in text
    assert "set vpc_network" in text
    assert render(services, vpc_network="iot-vpc")["api"].payload["template"]["vpc_access"]


# 17: instance-based billing for services working outside requests
def test_mqtt_clients_keep_their_cpu_between_requests_unless_told_otherwise() -> None:
    services = {
        "broker": BROKER,
        "ingest": {"image": "x:1", "resources": {"cpu": 1, "memory": "512Mi"}, "ports": [HTTP],
                   "env": {"MQTT_URL": "${services.broker.url}"}},
        "web": {"image": "x:1", "resources": {"cpu": 1, "memory": "512Mi"}, "ports": [HTTP]},
    }
    rendered = render(services)
    idle = {n: r.payload["template"]["containers"][0]["resources"]["cpu_idle"] for n, r in rendered.items()}
    assert idle == {"broker": False, "ingest": False, "web": True}
    told = render(services, instance_billing={"ingest": False, "web": True})
    assert told["ingest"].properties["cpu_idle"] is True and told["web"].properties["cpu_idle"] is False


def test_below_one_cpu_the_services_that_need_cpu_between_or_many_requests_get_one_and_the_plan_says_why() -> None:
    small = {"image": "x:1", "resources": {"cpu": 0.5, "memory": "512Mi"}, "ports": [HTTP]}
    services = {
        "broker": {**BROKER, "resources": {"cpu": 0.5, "memory": "1Gi"}},
        "ingest": {**small, "env": {"MQTT_URL": "${services.broker.url}", "AUTH": "${services.auth.url}"}},
        "auth": small,  # others call it: one request per instance would queue them behind cold starts
        "web": small,  # called from outside only: stays below 1 CPU, one request per instance
    }
    rendered = render(services)
    cpus = {n: r.payload["template"]["containers"][0]["resources"]["limits"]["cpu"] for n, r in rendered.items()}
    assert cpus == {"broker": "1", "ingest": "1", "auth": "1", "web": "500m"}
    assert rendered["web"].notes == () and rendered["web"].payload["template"]["max_instance_request_concurrency"] == 1
    assert "MQTT over WebSockets" in rendered["broker"].notes[0] and "MQTT session" in rendered["ingest"].notes[0]
    assert rendered["auth"].notes[0].startswith("cpu 0.5 -> 1: below 1 CPU Cloud Run bills by request")
    assert "other services call it" in rendered["auth"].notes[0]
    kept = render(services, instance_billing={"ingest": False}, concurrency=1)
    assert kept["ingest"].notes == () and kept["auth"].notes == ()  # told: no CPU between requests, one at a time


def test_instance_billing_is_a_setting() -> None:
    with pytest.raises(SettingsError) as caught:
        create_provider("gcp-cloudrun", {**SETTINGS, "instance_billing": {"web": "sometimes"}})
    assert caught.value.field.startswith("instance_billing")


# 18: GEN2 needs 512 MiB
def test_below_512_mib_runs_first_generation() -> None:
    small = {"image": "x:1", "resources": {"cpu": 1, "memory": "256Mi"}, "ports": [HTTP]}
    template = render({"small": small})["small"].payload["template"]
    assert template["execution_environment"] == "EXECUTION_ENVIRONMENT_GEN1"
    big = {**small, "resources": {"cpu": 1, "memory": "512Mi"}}
    assert render({"big": big})["big"].payload["template"]["execution_environment"] == "EXECUTION_ENVIRONMENT_GEN2"


def test_the_emulator_refuses_gen2_below_512_mib(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    small = service(resources=run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "256Mi"}))
    small.template.execution_environment = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    with pytest.raises(exceptions.BadRequest, match="below 512Mi"):
        client.create_service(parent=PARENT, service_id="small", service=small)
    small.template.execution_environment = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1
    client.create_service(parent=PARENT, service_id="small", service=small).result()


def test_a_small_service_deploys_on_the_emulator(
    provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    spec = one_spec({"api": {"image": "x:1", "ports": [HTTP], "resources": {"cpu": 1, "memory": "256Mi"}}})
    assert deploy(spec, provider_for("grpc")).apply().ok


# 19: broker scaling
def test_a_broker_takes_1000_websockets_on_a_fixed_instance_count() -> None:
    template = render({"broker": BROKER}, max_instances=1)["broker"].payload["template"]
    assert template["max_instance_request_concurrency"] == 1000
    assert template["scaling"] == {"min_instance_count": 1, "max_instance_count": 1}
    text = refused({"broker": BROKER}, max_instances=5)
    assert "services.broker.ports: max_instances 5 would scale this mqtt-ws broker" in text
    assert "services.broker.replicas: 3 replicas" in refused({"broker": {**BROKER, "replicas": 3}})


def test_below_one_cpu_the_ceiling_is_cloud_runs_default() -> None:
    small = render({"web": {"image": "x:1", "ports": [HTTP]}})["web"].payload["template"]
    assert small["scaling"] == {"min_instance_count": 1, "max_instance_count": 100}
    capped = render({"web": {"image": "x:1", "ports": [HTTP]}}, max_instances=3)["web"].payload["template"]
    assert capped["scaling"]["max_instance_count"] == 3
    whole = {"image": "x:1", "ports": [HTTP], "resources": {"cpu": 1, "memory": "512Mi"}}
    assert render({"web": whole})["web"].payload["template"]["scaling"]["max_instance_count"] == 1


# 20: region names
def test_two_digit_regions_are_accepted() -> None:
    assert render({"web": {"image": "x:1"}}, region="europe-west10")["web"].payload["name"].startswith(
        "projects/demo-project/locations/europe-west10/"
    )


# 21: the emulator's concurrency default below 1 CPU
def test_the_emulator_defaults_concurrency_to_one_below_one_cpu(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    small = service(resources=run_v2.ResourceRequirements(limits={"cpu": "500m", "memory": "512Mi"}, cpu_idle=True))
    small.template.execution_environment = run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1
    client.create_service(parent=PARENT, service_id="half", service=small).result()


# 20: probes within Cloud Run's bounds
def test_a_long_startup_window_is_cut_to_240_seconds_and_deploys(
    provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    check = {"http": "/healthz", "interval": "10s", "retries": 60}
    spec = one_spec({"api": {"image": "x:1", "ports": [HTTP], "healthcheck": check}})
    container = render(spec.model_dump(exclude_unset=True)["services"])["api"].payload["template"]["containers"][0]
    assert container["startup_probe"]["failure_threshold"] == 24, "10 s x 24 = Cloud Run's 240 s"
    assert container["liveness_probe"]["failure_threshold"] == 60
    assert deploy(spec, provider_for("rest")).apply().ok


def test_the_emulator_refuses_unbounded_probes(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    probe = run_v2.Probe(period_seconds=10, failure_threshold=60, tcp_socket=run_v2.TCPSocketAction(port=8080))
    with pytest.raises(exceptions.BadRequest, match=r"periodSeconds x failureThreshold \(10 x 60\) exceeds 240"):
        client.create_service(parent=PARENT, service_id="slow", service=service(startup_probe=probe))


# 21: v2 refuses system annotations
def test_the_emulator_refuses_v1_annotations(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    body = service()
    body.template.annotations["autoscaling.knative.dev/maxScale"] = "3"
    with pytest.raises(exceptions.BadRequest, match="system annotations are not supported in v2"):
        client.create_service(parent=PARENT, service_id="annotated", service=body)


def test_an_http_probe_on_an_h2c_port_is_refused() -> None:
    grpc = {"name": "api", "port": 9000, "protocol": "grpc", "expose": "public"}
    text = refused({"api": {"image": "x:1", "ports": [grpc], "healthcheck": {"http": "/healthz"}}})
    assert "services.api.healthcheck.http: Cloud Run's HTTP probes speak HTTP/1" in text
    probe = render({"api": {"image": "x:1", "ports": [grpc], "healthcheck": {"tcp": 9000}}})["api"]
    assert probe.payload["template"]["containers"][0]["startup_probe"]["tcp_socket"] == {"port": 9000}


def test_an_update_keeps_the_account_set_outside_multicloud_when_none_is_set(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    spec = one_spec({"api": {"image": "x:1", "ports": [HTTP]}})
    deploy(spec, provider_for("rest")).apply()
    (stored,) = cloudrun.model.services.values()
    console = "console-set@demo-project.iam.gserviceaccount.com"
    stored["template"]["serviceAccount"] = console  # set in the console
    changed = one_spec({"api": {"image": "x:2", "ports": [HTTP]}})
    assert deploy(changed, provider_for("grpc")).apply().ok
    (stored,) = cloudrun.model.services.values()
    assert stored["template"]["serviceAccount"] == console
    assert stored["template"]["containers"][0]["image"] == "x:2"


def test_permission_denied_names_the_roles_it_takes(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], deploy: Callable[..., Deployment]
) -> None:
    spec = one_spec({"api": {"image": "x:1", "ports": [HTTP]}})
    cloudrun.model.faults.fail("CreateService", "PERMISSION_DENIED", message="Permission 'run.services.setIamPolicy' "
                               "denied on resource 'projects/demo-project/locations/europe-west1/services/shop-api'")
    with pytest.raises(ApplyFailedError) as caught:
        deploy(spec, provider_for("rest")).apply()
    assert "run.services.setIamPolicy" in str(caught.value)
    assert "roles/run.admin" in str(caught.value)
