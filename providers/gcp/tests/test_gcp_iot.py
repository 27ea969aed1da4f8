"""The IoT backend on the emulated Cloud Run, with the unmodified run_v2 clients over REST and gRPC."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.errors import CapabilityError
from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.spec import Spec, spec_from_dict

Deploy = Callable[..., Deployment]
PARENT = "projects/demo-project/locations/europe-west1"


def test_iot_backend_applies_and_the_broker_is_served_over_websockets(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy, iot_env: dict[str, str]
) -> None:
    deployment = deploy(iot_spec, gcp)
    planned = deployment.plan()
    # the generated secrets (the TLS secret's parts too), the database's password and URL
    written = {f"secret/{name}" for name in deployment.target_spec.used_secrets()}
    services = {f"service/{s}" for s in ("broker", "auth", "registry", "ingestion")} | {"postgres/db"}
    assert {c.key for c in planned.changes} == services | written  # generated secrets: written to Secret Manager
    result = deployment.apply(planned)
    assert result.ok and result.changed == len(services | written)
    services = cloudrun.model.services
    broker = services[f"{PARENT}/services/iot-backend-broker"]
    template = broker["template"]
    # mqtt and mqtts fall back to mqtt-wss, served plain at 8081 behind Cloud Run's TLS front
    assert template["containers"][0]["ports"] == [{"name": "http1", "containerPort": 8081}]
    broker_env = {e["name"]: e.get("value") for e in template["containers"][0]["env"]}
    assert {k: broker_env[k] for k in ("MQTT_PORT", "MQTTS_PORT", "WSS_PORT", "WSS_TLS")} == {
        "MQTT_PORT": "0", "MQTTS_PORT": "0", "WSS_PORT": "8081", "WSS_TLS": "false"}
    # served plain, the broker and the registry get no certificate (the front holds Cloud Run's): none is made
    assert broker_env["MQTT_TLS_CERT_FILE"] == broker_env["MQTT_TLS_KEY_FILE"] == ""
    assert template["volumes"] and not [v for v in template["volumes"] if "tls" in str(v)]
    assert not [name for name in written if name.startswith("secret/tls_")]
    assert template["containers"][0]["startupProbe"]["tcpSocket"]["port"] == 8081  # the health check follows
    assert template["containers"][0]["resources"]["limits"]["cpu"] == "1"  # raised: the plan notes why
    assert template["sessionAffinity"] is True and template["timeout"] == "3600s"
    assert template["scaling"]["minInstanceCount"] >= 1
    assert broker["ingress"] == "INGRESS_TRAFFIC_ALL"
    auth = services[f"{PARENT}/services/iot-backend-auth"]
    assert auth["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    ingestion = services[f"{PARENT}/services/iot-backend-ingestion"]
    env = {e["name"]: e for e in ingestion["template"]["containers"][0]["env"]}
    assert env["MQTT_URL"]["value"] == "wss://iot-backend-broker-123456789012.europe-west1.run.app/mqtt"
    assert env["DATABASE_URL_FILE"]["value"] == "/run/secrets/resources_db_url/resources_db_url"
    volumes = {v.get("secret", {}).get("secret", v["name"]): v for v in ingestion["template"]["volumes"]}
    url_secret = next(k for k in volumes if k.endswith("resources-db-url") or k.endswith("resources_db_url"))
    assert volumes[url_secret]["secret"]["items"] == [{"path": "resources_db_url", "version": "latest"}]
    mounts = {m["name"]: m["mountPath"] for m in ingestion["template"]["containers"][0]["volumeMounts"]}
    assert mounts[volumes[url_secret]["name"]] == "/run/secrets/resources_db_url"
    assert mounts["cloudsql"] == "/cloudsql"  # the Cloud SQL connector's sockets
    assert not any(value in str(services) for value in iot_env.values()), "secret values never reach Cloud Run"
    noted = {c.key: c.resource.notes for c in planned.changes}
    assert any("cpu 0.5 -> 1" in n for n in noted["service/broker"]), noted["service/broker"]
    endpoints = {(e.service, e.protocol): e.url for e in deployment.endpoints()}
    assert endpoints[("broker", "mqtt-ws")] == "wss://iot-backend-broker-123456789012.europe-west1.run.app/mqtt"
    assert endpoints[("registry", "http")].startswith("https://iot-backend-registry-")
    assert not deployment.plan().has_changes
    statuses = {s.service: s for s in deployment.status()}
    assert statuses["ingestion"].desired == 2 and statuses["broker"].state == "ready"
    assert "traffic iot-backend-broker-00001" in statuses["broker"].detail


def test_reapply_makes_no_mutating_call(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    deployment = deploy(iot_spec, gcp)
    deployment.apply()
    before = len(cloudrun.model.mutations())
    again = deployment.apply()
    assert again.changed == 0
    assert cloudrun.model.mutations()[before:] == []


def test_changing_one_service_makes_one_new_revision_and_rollback_moves_traffic_back(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    spec = iot_spec
    deploy(spec, gcp).apply()
    revisions_before = set(cloudrun.model.revisions)
    data = spec.model_dump(exclude_unset=True)
    registry_override = data["targets"]["gcp"].setdefault("overrides", {}).setdefault("registry", {})
    registry_override.setdefault("env", {})["RELEASE"] = "2"
    changed = deploy(spec_from_dict(data), gcp)
    planned = changed.plan()
    acted = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in acted] == [("service/registry", Action.UPDATE)], plan_text(planned)
    before = len(cloudrun.model.mutations())
    changed.apply(planned)
    assert [m[0] for m in cloudrun.model.mutations()[before:]] == ["UpdateService"]
    new = set(cloudrun.model.revisions) - revisions_before
    assert len(new) == 1 and "iot-backend-registry-00002" in new.pop()
    registry = f"{PARENT}/services/iot-backend-registry"
    assert cloudrun.model.services[registry]["trafficStatuses"][0]["revision"].startswith("iot-backend-registry-00002")
    message = changed.rollback("registry")
    assert "to iot-backend-registry-00001" in message
    traffic = cloudrun.model.services[registry]["trafficStatuses"]
    assert [(t["revision"][:26], t["percent"]) for t in traffic] == [("iot-backend-registry-00001", 100)]
    assert "iot-backend-registry-00001" in {s.service: s for s in changed.status()}["registry"].detail
    assert not changed.plan().has_changes, "a rollback holds until the service changes again"
    with pytest.raises(Exception, match="no revision before"):
        changed.rollback("registry")


def test_destroy_leaves_no_labelled_service(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    deployment = deploy(iot_spec, gcp)
    deployment.apply()
    deployment.destroy()
    labelled = [s for s in cloudrun.model.services.values() if s.get("labels", {}).get("multicloud-app")]
    assert labelled == []
    kept = {r.key for r in gcp.observe("iot-backend")}
    assert kept == {"postgres/db", "secret/resources_db_password"}, "destroy keeps the database and its password"
    deploy(iot_spec, gcp).destroy(volumes=True)
    assert gcp.observe("iot-backend") == []


def test_raw_tcp_port_fails_at_plan_before_any_call(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    spec = iot_spec.model_dump(exclude_unset=True)
    for port in spec["services"]["broker"]["ports"]:
        port.pop("fallback", None)  # nothing stands in for the TCP ports
    with pytest.raises(CapabilityError) as caught:
        deploy(spec_from_dict(spec), gcp).plan()
    text = str(caught.value)
    assert "services.broker.ports[1]: mqtts (8883/mqtts)" in text and "no raw TCP ingress" in text
    assert "protocol: mqtt-ws" in text and "fallback: PORT" in text
    assert cloudrun.model.requests == []


def test_injected_unavailable_is_retried_and_converges(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    cloudrun.model.faults.fail("CreateService", "UNAVAILABLE", times=2)
    cloudrun.model.faults.fail("UpdateService", "RESOURCE_EXHAUSTED", times=1)
    events: list[str] = []
    deployment = deploy(iot_spec, gcp)
    deployment.on_event = lambda e: events.append(e.kind)
    result = deployment.apply()
    # the services, the database, and the generated secrets with the database's password and URL
    assert result.ok and result.changed == 4 + 1 + len(deployment.target_spec.used_secrets())
    assert events.count("retry") == 2
    assert not deployment.plan().has_changes


def test_slow_operations_are_waited_for_without_a_second_per_poll(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy
) -> None:
    import time

    cloudrun.model.faults.slow_operations(0.3)
    deployment = deploy(iot_spec, gcp)
    started = time.monotonic()
    assert deployment.apply().ok
    assert time.monotonic() - started < 4.0  # 4 services, 2 waves, 0.3 s each; the default poll waits 1 s+
    assert all(not s["reconciling"] for s in cloudrun.model.services.values())


def test_a_changed_secret_value_rolls_new_revisions_of_its_users_only(
    cloudrun: RunningCloudRun, gcp: CloudRunProvider, iot_spec: Spec, deploy: Deploy, iot_env: dict[str, str]
) -> None:
    data = iot_spec.model_dump(exclude_unset=True)  # a secret Secret Manager holds, read by the registry
    data["secrets"]["probe"] = {"from_env": "IOT_PROBE"}
    data["targets"]["gcp"]["overrides"]["registry"]["env"] = {"PROBE_FILE": "${secrets.probe.file}"}
    iot_spec = spec_from_dict(data)
    deploy(iot_spec, gcp, env={**iot_env, "IOT_PROBE": "first"}).apply()
    revisions = set(cloudrun.model.revisions)
    changed = deploy(iot_spec, gcp, env={**iot_env, "IOT_PROBE": "postgres://rotated"})
    planned = changed.plan()
    touched = sorted(c.resource.name for c in planned.changes if c.action is Action.UPDATE)
    users = sorted(
        name
        for name, service in changed.target_spec.services.items()
        if any("${secrets.probe" in v for v in service.env.values())  # its value or its file
    )
    assert touched == users and users, plan_text(planned)
    assert "postgres://rotated" not in plan_text(planned, verbose=True)
    changed.apply(planned)
    assert len(set(cloudrun.model.revisions) - revisions) == len(users)
    assert "postgres://rotated" not in str(cloudrun.model.services)


def test_service_account_setting_is_applied_and_compared(
    cloudrun: RunningCloudRun, provider_for: Callable[..., CloudRunProvider], iot_spec: Spec, deploy: Deploy
) -> None:
    account = "iot-run@demo-project.iam.gserviceaccount.com"
    deployment = deploy(iot_spec, provider_for("grpc", service_account=account))
    deployment.apply()
    assert {s["template"]["serviceAccount"] for s in cloudrun.model.services.values()} == {account}
    assert not deployment.plan().has_changes
    other = "iot-run-2@demo-project.iam.gserviceaccount.com"
    changed = deploy(iot_spec, provider_for("rest", service_account=other)).plan()
    assert {f.path for c in changed.changes for f in c.fields} == {"service_account"}
    assert not deploy(iot_spec, provider_for("rest")).plan().has_changes, "unset: whatever account is there"
