"""The Cloud Run emulator itself: REST and gRPC wire behaviour, validation, LROs, revisions, faults."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.environment import (
    ACCESS_TOKEN_ENV,
    API_ENDPOINT_ENV,
    FROM_ENVIRONMENT,
    PROJECT_NUMBER_ENV,
    REGISTRY_ENV,
)
from multicloud_gcp.settings import EMULATOR_PROJECT_NUMBER

from multicloud.testing.emulate import emulate

PARENT = "projects/demo-project/locations/europe-west1"


def services_client(running: RunningCloudRun, transport: str) -> run_v2.ServicesClient:
    """The unmodified ServicesClient over REST or gRPC, aimed at the emulator."""
    if transport == "rest":
        options = {"api_endpoint": running.endpoint}
        return run_v2.ServicesClient(credentials=AnonymousCredentials(), transport="rest", client_options=options)
    import grpc
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

    channel = grpc.insecure_channel(running.grpc_endpoint.removeprefix("http://"))
    return run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel))


def service(image: str = "example/app:1", **container: Any) -> run_v2.Service:
    return run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container(image=image, **container)]))


def http(running: RunningCloudRun, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(running.endpoint + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_create_get_list_paged_update_delete(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    for i in range(5):
        client.create_service(parent=PARENT, service_id=f"svc-{i}", service=service()).result()
    before = len(cloudrun.model.requests)
    names = [s.name for s in client.list_services(request={"parent": PARENT, "page_size": 2})]
    assert names == [f"{PARENT}/services/svc-{i}" for i in range(5)]
    assert [r[0] for r in cloudrun.model.requests[before:]] == ["ListServices"] * 3
    got = client.get_service(name=f"{PARENT}/services/svc-0")
    assert got.generation == 1 and re.fullmatch(r"https://svc-0-[a-z]{10}-ew\.a\.run\.app", got.uri)
    assert list(got.urls) == ["https://svc-0-123456789012.europe-west1.run.app", got.uri]
    assert got.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    got.labels["team"] = "iot"
    same_template = client.update_service(service=got).result()
    assert same_template.generation == 2 and same_template.latest_ready_revision == got.latest_ready_revision
    same_template.template.containers[0].image = "example/app:2"
    changed = client.update_service(service=same_template).result()
    assert changed.generation == 3 and changed.latest_ready_revision.endswith(
        "-00002-" + changed.latest_ready_revision[-3:]
    )
    client.delete_service(name=f"{PARENT}/services/svc-0").result()
    with pytest.raises(exceptions.NotFound):
        client.get_service(name=f"{PARENT}/services/svc-0")


@pytest.mark.parametrize(
    ("container", "violation"),
    [
        (
            {"ports": [run_v2.ContainerPort(container_port=8080), run_v2.ContainerPort(container_port=9090)]},
            "at most one port",
        ),
        ({"resources": run_v2.ResourceRequirements(limits={"cpu": "3", "memory": "2Gi"})}, "only 1, 2, 4, 6 or 8"),
        ({"resources": run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "8Gi"})}, "outside 128Mi..4Gi"),
        ({"resources": run_v2.ResourceRequirements(limits={"cpu": "500m", "memory": "512Mi"})}, "concurrency 1"),
    ],
)
def test_cloud_run_validation_is_an_invalid_argument_with_field_violations(
    cloudrun: RunningCloudRun, transport: str, container: dict[str, Any], violation: str
) -> None:
    client = services_client(cloudrun, transport)
    with pytest.raises(exceptions.BadRequest) as caught:
        client.create_service(parent=PARENT, service_id="bad", service=service(**container))
    assert violation in caught.value.message
    assert any("template.containers[0]" in str(d) for d in caught.value.details)
    assert cloudrun.model.services == {}


def test_bad_name_and_duplicates(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    with pytest.raises(exceptions.BadRequest, match="fewer than 50 characters"):
        client.create_service(parent=PARENT, service_id="Bad_Name", service=service())
    client.create_service(parent=PARENT, service_id="one", service=service()).result()
    with pytest.raises(exceptions.Conflict):
        client.create_service(parent=PARENT, service_id="one", service=service())


def test_google_error_bodies_over_rest(cloudrun: RunningCloudRun) -> None:
    status, body = http(cloudrun, "GET", f"/v2/{PARENT}/services/absent")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND" and body["error"]["code"] == 404
    status, body = http(cloudrun, "POST", f"/v2/{PARENT}/services?serviceId=x", {"template": {"bogus": 1}})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT" and "bogus" in body["error"]["message"]
    status, body = http(cloudrun, "POST", f"/v2/{PARENT}/services?serviceId=x", {"template": {"containers": [{}]}})
    assert status == 400
    assert body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert body["error"]["details"][0]["fieldViolations"][0]["field"] == "template.containers[0].image"


def test_slow_operations_reconcile_then_finish(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    cloudrun.model.faults.slow_operations(0.3)
    operation = client.create_service(parent=PARENT, service_id="slow", service=service())
    assert not operation.done()
    pending = client.get_service(name=f"{PARENT}/services/slow")
    assert pending.reconciling and pending.terminal_condition.state == run_v2.Condition.State.CONDITION_RECONCILING
    done = operation.result(timeout=10)
    assert not done.reconciling and done.observed_generation == 1
    assert done.traffic_statuses[0].percent == 100 and done.traffic_statuses[0].revision.startswith("slow-00001-")


def test_injected_faults_are_google_errors(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    cloudrun.model.faults.fail("CreateService", "RESOURCE_EXHAUSTED")
    with pytest.raises(exceptions.TooManyRequests, match="Quota exceeded"):
        client.create_service(parent=PARENT, service_id="x", service=service())
    cloudrun.model.faults.fail("CreateService", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        client.create_service(parent=PARENT, service_id="x", service=service())
    client.create_service(parent=PARENT, service_id="x", service=service()).result()
    assert [m[0] for m in cloudrun.model.mutations()] == ["CreateService"] * 3


def test_traffic_to_an_unknown_revision_is_refused(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    created = client.create_service(parent=PARENT, service_id="t", service=service()).result()
    created.traffic = [
        run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision="t-00009-abc",
            percent=100,
        )
    ]
    with pytest.raises(exceptions.BadRequest, match="does not exist"):
        client.update_service(service=created)


def test_emulate_command_serves_and_is_controlled_over_http() -> None:
    with emulate("gcp", "--port", "0") as emulated:
        assert "gcp emulator listening on http://127.0.0.1:" in emulated.comments[0]
        endpoint = emulated.comments[0].split(" on ")[1].split(";")[0]
        registry = {k: emulated.exports[k] for k in (REGISTRY_ENV, ACCESS_TOKEN_ENV) if k in emulated.exports}
        assert emulated.exports == {API_ENDPOINT_ENV: endpoint, PROJECT_NUMBER_ENV: EMULATOR_PROJECT_NUMBER, **registry}
        assert set(emulated.exports) <= {*FROM_ENVIRONMENT.values(), ACCESS_TOKEN_ENV}, "prints what the provider reads"
        grpc_note = re.search(r"gRPC is served at (http://127\.0\.0\.1:\d+)", "\n".join(emulated.comments))
        assert grpc_note is not None, emulated.comments
        running = RunningCloudRun(
            "gcp", endpoint, emulated.exports, lambda: None, grpc_note[1], model=None
        )  # type: ignore[arg-type]
        assert http(running, "POST", "/_emulator/faults", {"method": "ListServices", "status": "UNAVAILABLE"})[0] == 200
        status, body = http(running, "GET", f"/v2/{PARENT}/services")
        assert status == 503 and body["error"]["status"] == "UNAVAILABLE"
        assert http(running, "GET", f"/v2/{PARENT}/services") == (200, {"services": []})
        status, log = http(running, "GET", "/_emulator/requests")
        assert [r[0] for r in log["requests"]] == ["ListServices", "ListServices"]


def test_a_missing_secret_fails_the_revision_when_secrets_are_known() -> None:
    running = CloudRunEmulator(known_secrets={"present"}).start()
    try:
        client = services_client(running, "rest")
        ref = run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(secret="absent", version="latest"))
        body = service(env=[run_v2.EnvVar(name="X", value_source=ref)])
        with pytest.raises(exceptions.BadRequest, match="absent/versions/latest was not found"):
            client.create_service(parent=PARENT, service_id="s", service=body).result()
        failed = client.get_service(name=f"{PARENT}/services/s")
        assert failed.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    finally:
        running.stop()


def test_first_poll_is_immediate_when_the_operation_is_done(cloudrun: RunningCloudRun, transport: str) -> None:
    client = services_client(cloudrun, transport)
    started = time.monotonic()
    for i in range(3):
        client.create_service(parent=PARENT, service_id=f"fast-{i}", service=service()).result()
    assert time.monotonic() - started < 2.0  # a 1 s first poll per service would take 3 s+


def test_the_environment_fills_only_what_the_spec_leaves_out() -> None:
    from multicloud_gcp.environment import with_environment

    env = {API_ENDPOINT_ENV: "http://127.0.0.1:1", PROJECT_NUMBER_ENV: "555555555555"}
    assert with_environment({"project": "p"}, env) == {
        "project": "p", "api_endpoint": "http://127.0.0.1:1", "project_number": "555555555555"
    }
    named = {"project": "p", "api_endpoint": "europe-west1-run.googleapis.com", "project_number": "123456"}
    assert with_environment(named, env) == named
    assert with_environment({"project": "p"}, {}) == {"project": "p"}


def test_cloud_logging_filters_what_instances_printed(cloudrun: RunningCloudRun, transport: str) -> None:
    from multicloud_gcp.logclient import GoogleLoggingApi
    from multicloud_gcp.settings import parse_settings

    from multicloud.errors import UserError

    labels = {"project_id": "demo-project", "service_name": "shop-api", "revision_name": "shop-api-00001-abc",
              "location": "europe-west1", "configuration_name": "shop-api"}
    printed = "2026-11-29T08:00:00.123456789Z started\n2026-11-29T08:00:01.5Z GET / 200\n2026-11-29T08:00:02Z bye\n"
    cloudrun.model.logging._take(f"gcp/{PARENT}/services/shop-api/revisions/shop-api-00001-abc/0", labels,
                                 "app", "c1", printed)
    endpoint = cloudrun.endpoint if transport == "rest" else cloudrun.grpc_endpoint
    api = GoogleLoggingApi(parse_settings({"project": "demo-project", "region": "europe-west1",
                                           "api_endpoint": endpoint, "transport": transport}))
    wanted = 'resource.type="cloud_run_revision" AND resource.labels.service_name="shop-api"'
    since = ' AND timestamp>="2026-11-29T08:00:00.5Z"'
    assert [e.text for e in api.list_entries("demo-project", wanted + since, newest_first=False, limit=None)] == [
        "GET / 200", "bye"]
    assert [e.text for e in api.list_entries("demo-project", wanted + since, newest_first=True, limit=1)] == ["bye"]
    assert api.list_entries("demo-project", 'resource.labels.service_name="other"' + since,
                            newest_first=False, limit=None) == []
    assert api.list_entries("other-project", wanted + since, newest_first=False, limit=None) == []
    with pytest.raises(UserError, match="only AND"):
        api.list_entries("demo-project", wanted + " OR textPayload:bye" + since, newest_first=False, limit=None)


def test_a_rollouts_new_instances_are_not_stopped_as_idle_until_it_serves() -> None:
    from multicloud_docker.dataplane import Member, Unit
    from multicloud_gcp.emulator.scaling import Pool, Scaler

    class Plane:
        """Keeps the desired units, as the data plane does (no engine needed here)."""

        def __init__(self) -> None:
            self.desired: dict[str, Unit] = {}

        def apply(self, unit: Unit) -> None:
            self.desired[unit.key] = unit

        def remove(self, key: str) -> None:
            self.desired.pop(key, None)

    plane = Plane()
    scaler = Scaler(plane, idle_seconds=0.0)  # type: ignore[arg-type]
    try:
        def pool(held: bool) -> Pool:
            return Pool("rev", 8080, 80, 0, 10, False, lambda i: Unit(f"rev/{i}", (Member("app", "x:1"),)), held=held)

        scaler.ensure(pool(held=True), start=1)
        assert scaler.reap() == [] and list(plane.desired) == ["rev/0"]  # slow to start: kept
        scaler.ensure(pool(held=False), start=0)  # the rollout routes to it: min 0 and idle
        scaler.reap()  # (or the scaler's own thread, first)
        assert plane.desired == {}
    finally:
        scaler.close()
