"""Plan-time mapping and Cloud Run's rules: pure, no emulator and no SDK needed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.errors import CapabilityError, SettingsError
from multicloud.registry import EMULATORS_GROUP, available, create_provider
from multicloud.spec import spec_from_dict, target_spec

SETTINGS = {"project": "demo-project", "region": "europe-west1", "project_number": "42424242"}


def render(services: dict[str, Any], app: str = "shop", **settings: Any) -> dict[str, Any]:
    spec = spec_from_dict(
        {
            "name": app,
            "services": services,
            "secrets": {"db": {"from_env": "DB"}},
            "targets": {"gcp": {"provider": "gcp-cloudrun"}},
        }
    )
    provider = CloudRunProvider({**SETTINGS, **settings})
    resources = provider.desired(target_spec(spec, "gcp"), {"db": "postgres://secret"})
    return {r.name: r for r in resources}


def problems(services: dict[str, Any], app: str = "shop") -> str:
    with pytest.raises(CapabilityError) as caught:
        render(services, app)
    return str(caught.value)


def test_mapping_of_a_public_http_service() -> None:
    api = render(
        {
            "api": {
                "image": "x:1",
                "replicas": 2,
                "resources": {"cpu": 2, "memory": "1Gi"},
                "ports": [{"name": "web", "port": 8000, "protocol": "http", "expose": "public"}],
                "env": {"DB": "${secrets.db}", "SELF": "${services.api.url}"},
                "healthcheck": {"http": "/healthz", "interval": "5s", "retries": 4},
            }
        }
    )["api"]
    body = api.payload
    assert body["name"] == "projects/demo-project/locations/europe-west1/services/shop-api"
    assert body["ingress"] == "INGRESS_TRAFFIC_ALL" and body["invoker_iam_disabled"] is True
    assert body["labels"]["multicloud-app"] == "shop" and len(body["labels"]["multicloud-spec"]) == 16
    template = body["template"]
    assert template["scaling"] == {"min_instance_count": 2, "max_instance_count": 2}
    assert template["max_instance_request_concurrency"] == 80
    container = template["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert container["ports"] == [{"name": "http1", "container_port": 8000}]
    assert container["startup_probe"]["http_get"] == {"path": "/healthz", "port": 8000}
    assert container["liveness_probe"]["period_seconds"] == 5 and container["liveness_probe"]["failure_threshold"] == 4
    env = {e["name"]: e for e in container["env"]}
    assert env["DB"] == {"name": "DB", "value_source": {"secret_key_ref": {"secret": "db", "version": "latest"}}}
    assert env["SELF"]["value"] == "https://shop-api-42424242.europe-west1.run.app"
    assert "postgres://secret" not in repr(api) and "postgres://secret" not in str(body)
    assert str(api.properties["env"]["DB"]) == "(sensitive)"


def test_fractional_cpu_gets_cloud_runs_required_mode_and_internal_ingress() -> None:
    worker = render({"worker": {"image": "x:1"}})["worker"].payload
    assert worker["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and worker["invoker_iam_disabled"] is False
    template = worker["template"]
    assert template["max_instance_request_concurrency"] == 1
    assert template["execution_environment"] == "EXECUTION_ENVIRONMENT_GEN1"
    container = template["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "250m", "memory": "512Mi"}, "cpu_idle": True}
    assert container["ports"] == [{"name": "http1", "container_port": 8080}], "Cloud Run's default, explicit"
    assert container["startup_probe"]["tcp_socket"] == {"port": 8080}


def test_secret_names_setting_points_at_another_secret() -> None:
    spec = {"api": {"image": "x:1", "env": {"DB": "${secrets.db}"}}}
    api = render(spec, secret_names={"db": "projects/other/secrets/shop-db"})["api"].payload
    ref = api["template"]["containers"][0]["env"][0]["value_source"]["secret_key_ref"]
    assert ref["secret"] == "projects/other/secrets/shop-db"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (
            {"ports": [{"name": "a", "port": 80, "protocol": "http"}, {"name": "b", "port": 81, "protocol": "http"}]},
            "exactly one port",
        ),
        ({"resources": {"cpu": 3}}, "only 1, 2, 4, 6 or 8"),
        ({"resources": {"cpu": 1, "memory": "8Gi"}}, "outside 128Mi..4Gi"),
        ({"resources": {"cpu": 0.25, "memory": "1Gi"}}, "needs at least 0.5 cpu"),
        ({"healthcheck": {"command": ["true"]}}, "not commands"),
        (
            {"ports": [{"name": "h", "port": 80, "protocol": "http"}], "healthcheck": {"tcp": 81}},
            "only the serving port",
        ),
        ({"env": {"URL": "postgres://u:${secrets.db}@h/d"}}, "must be the whole value"),
        ({"command": ["run", "--password=${secrets.db}"]}, "cannot appear in command"),
        ({"user": "1000"}, "neither the user"),
    ],
)
def test_cloud_run_rules_are_plan_errors_with_the_fix(service: dict[str, Any], expected: str) -> None:
    assert expected in problems({"svc": {"image": "x:1", **service}})


def test_service_names_longer_than_cloud_run_allows() -> None:
    text = problems({"a-rather-long-service-name": {"image": "x:1"}}, app="a-very-long-application-name")
    assert "fewer than 50 characters" in text and "shorten the app or service name" in text


def test_urls_need_the_project_number_outside_the_emulator() -> None:
    spec = spec_from_dict(
        {
            "name": "shop",
            "services": {
                "a": {"image": "x", "ports": [{"name": "h", "port": 80, "protocol": "http", "expose": "public"}]},
                "b": {"image": "x", "env": {"A": "${services.a.url}"}},
            },
            "targets": {"gcp": {"provider": "gcp-cloudrun"}},
        }
    )
    provider = CloudRunProvider({"project": "demo-project", "region": "europe-west1"})
    with pytest.raises(SettingsError) as caught:
        provider.desired(target_spec(spec, "gcp"), {})
    assert caught.value.field == "project_number"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"region": "europe-west1"}, "project"),
        ({**SETTINGS, "zone": "x"}, "zone"),
        ({**SETTINGS, "transport": "soap"}, "transport"),
        ({**SETTINGS, "project_number": "abc"}, "project_number"),
        ({**SETTINGS, "request_timeout": "2h"}, "request_timeout"),
        ({**SETTINGS, "region": "Europe"}, "region"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        create_provider("gcp-cloudrun", settings)
    assert caught.value.field == field


def test_registered_as_provider_and_emulator() -> None:
    assert "gcp-cloudrun" in {p.name for p in available()}
    assert "gcp" in {e.name for e in available(EMULATORS_GROUP)}


def test_planning_imports_no_google_sdk() -> None:
    code = (
        "import sys\n"
        "from multicloud.spec import spec_from_dict, target_spec\n"
        "from multicloud.registry import create_provider\n"
        "p = create_provider('gcp-cloudrun', {'project': 'demo-project', 'region': 'europe-west1', "
        "'project_number': '1234567'})\n"
        "s = spec_from_dict({'name': 'a', 'services': {'b': {'image': 'x'}}, 'targets': {'g': {'provider': 'p'}}})\n"
        "p.desired(target_spec(s, 'g'), {})\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('google', 'grpc')))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_internal_services_are_reached_through_the_vpc() -> None:
    services = {"auth": {"image": "x:1", "ports": [{"name": "http", "port": 8000, "protocol": "http"}]}}
    auth = render(services, vpc_network="iot-vpc", vpc_subnet="iot-run")["auth"].payload
    assert auth["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and auth["invoker_iam_disabled"] is True
    assert auth["template"]["vpc_access"] == {
        "network_interfaces": [{"network": "iot-vpc", "subnetwork": "iot-run"}],
        "egress": "ALL_TRAFFIC",
    }
    guarded = render(services, internal_auth="iam")["auth"].payload
    assert guarded["invoker_iam_disabled"] is False and "vpc_access" not in guarded["template"]


def test_secret_files_get_a_secret_manager_volume_each() -> None:
    spec = {"api": {"image": "x:1", "env": {"DB_FILE": "${secrets.db.file}", "ARG": "--from=${secrets.db.file}"}}}
    api = render(spec)["api"]
    template = api.payload["template"]
    container = template["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]} == {
        "DB_FILE": "/run/secrets/db/db", "ARG": "--from=/run/secrets/db/db"}
    assert template["volumes"] == [
        {"name": "secret-db", "secret": {"secret": "db", "items": [{"path": "db", "version": "latest"}]}}]
    assert container["volume_mounts"] == [{"name": "secret-db", "mount_path": "/run/secrets/db"}]
    assert "postgres://secret" not in repr(api.payload)
    assert api.properties["secret_files"] == {"db": "db@latest"}
    listed = render({"api": {"image": "x:1", "secrets": ["db"], "env": {"A_FILE": "${secrets.db.file}"}}})["api"]
    assert listed.payload["template"]["containers"][0]["env"] == [{"name": "A_FILE", "value": "/run/secrets/db"}]
    assert len(listed.payload["template"]["volumes"]) == 1


def test_a_tls_port_on_cloud_run_is_served_plain_by_the_container_handed_no_certificate() -> None:
    https = {"ports": [{"name": "web", "port": 8000, "protocol": "https", "expose": "public"}],
             "env": {"PORT": "${ports.web}", "SERVE_TLS": "${ports.web.tls}", "CERT_FILE": "${secrets.tls_cert.file}",
                     "KEY_FILE": "${secrets.tls_key.file}"}}
    spec = spec_from_dict({"name": "shop", "services": {"web": {"image": "x:1", **https}},
                           "secrets": {"tls": {"generate": {"type": "tls", "names": ["shop.example.com"]}}},
                           "targets": {"gcp": {"provider": "gcp-cloudrun", **SETTINGS}}})
    deployment = Deployment(spec, "gcp", provider=CloudRunProvider(SETTINGS), environ={})
    web = deployment.target_spec.services["web"]
    assert web.ports[0].protocol == "http"
    assert web.env == {"PORT": "8000", "SERVE_TLS": "false", "CERT_FILE": "", "KEY_FILE": ""}
    assert deployment.target_spec.used_secrets() == []  # Cloud Run's front holds the certificate: none is made
    deployment.validate()  # no capability error: Cloud Run's front serves it over TLS
    [rendered] = deployment.provider.desired(deployment.target_spec, {})
    container = rendered.payload["template"]["containers"][0]
    assert {"name": "SERVE_TLS", "value": "false"} in container["env"] and "volume_mounts" not in container


def test_the_secrets_list_and_secret_file_volumes_do_not_mix_on_cloud_run() -> None:
    spec = spec_from_dict({"name": "shop", "secrets": {"a": {"from_env": "A"}, "b": {"from_env": "B"}},
                           "services": {"api": {"image": "x:1", "secrets": ["a"],
                                                "env": {"B_FILE": "${secrets.b.file}"}}},
                           "targets": {"gcp": {"provider": "gcp-cloudrun"}}})
    with pytest.raises(CapabilityError, match=r"use \$\{secrets.NAME.file\} for every secret file"):
        CloudRunProvider(SETTINGS).desired(target_spec(spec, "gcp"), {"a": "1", "b": "2"})


def test_a_tcp_port_falls_back_to_its_websocket_port_without_overrides() -> None:
    from multicloud.api import Deployment

    spec = spec_from_dict({
        "name": "iot",
        "services": {
            "broker": {"image": "broker:1", "resources": {"cpu": 1, "memory": "1Gi"},
                       "ports": [{"name": "mqtt", "port": 1883, "protocol": "mqtt", "expose": "public",
                                  "fallback": "mqtt-ws"},
                                 {"name": "mqtt-ws", "port": 8080, "protocol": "mqtt-ws", "expose": "public"}],
                       "healthcheck": {"tcp": 1883}},
            "ingestion": {"image": "ingestion:1", "resources": {"cpu": 1, "memory": "512Mi"},
                          "env": {"MQTT_URL": "${services.broker.url.mqtt}"}},
        },
        "targets": {"gcp": {"provider": "gcp-cloudrun"}},
    })
    deployment = Deployment(spec, "gcp", provider=CloudRunProvider(SETTINGS), environ={})
    deployment.check()
    resources = {r.name: r for r in deployment.provider.desired(deployment.target_spec, {})}
    (container,) = resources["ingestion"].payload["template"]["containers"]
    url = next(e["value"] for e in container["env"] if e["name"] == "MQTT_URL")
    assert url.startswith("wss://iot-broker-") and url.endswith(".run.app/mqtt"), url
    (broker,) = resources["broker"].payload["template"]["containers"]
    assert [p["container_port"] for p in broker["ports"]] == [8080]
