"""The ARM emulator on its own, driven by the unmodified ContainerInstanceManagementClient and
by plain HTTPS: auth, ACI's validation, LRO headers, secrets, paging, actions, logs, faults."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup
from multicloud_azure.client import StaticTokenCredential
from multicloud_azure.emulator import EmulatorHandle

from multicloud.registry import EMULATORS_GROUP, load_factory

SUB = "11111111-2222-3333-4444-555555555555"
API = "api-version=2023-05-01"


def sdk(arm: EmulatorHandle, token: str | None = None) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(
        StaticTokenCredential(token or arm.token),
        SUB,
        base_url=arm.endpoint,
        credential_scopes=[f"{arm.endpoint}/.default"],
        connection_verify=arm.ca_bundle,
        polling_interval=0.01,
        retry_total=0,
    )


def body(*containers: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"location": "westeurope", "properties": {"osType": "Linux", "containers": list(containers), **props}}


def container(
    name: str,
    *,
    cpu: float = 0.5,
    memory: float = 0.5,
    ports: tuple[int, ...] = (),
    env: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "image": "registry.example.com/app:1",
            "resources": {"requests": {"cpu": cpu, "memoryInGB": memory}},
            "ports": [{"port": p, "protocol": "TCP"} for p in ports],
            "environmentVariables": env or [],
        },
    }


def put(client: ContainerInstanceManagementClient, rg: str, name: str, data: dict[str, Any]) -> Any:
    return client.container_groups.begin_create_or_update(rg, name, ContainerGroup.deserialize(data)).result()


def https(
    arm: EmulatorHandle, method: str, path: str, data: Any = None, token: str | None = "default"
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {arm.token if token == 'default' else token}"
    raw = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(f"{arm.endpoint}{path}", data=raw, method=method, headers=headers)
    context = ssl.create_default_context(cafile=arm.ca_bundle)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            text = response.read()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, dict(exc.headers), json.loads(text) if text else None


@pytest.fixture
def client(arm: EmulatorHandle) -> Iterator[ContainerInstanceManagementClient]:
    with sdk(arm) as made:
        yield made


def group_path(rg: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}"


def test_requests_without_a_valid_bearer_token_get_401(arm: EmulatorHandle, resource_group: str) -> None:
    status, headers, error = https(arm, "GET", f"{group_path(resource_group, 'x')}?{API}", token=None)
    assert status == 401 and error["error"]["code"] == "AuthenticationFailed"
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    status, _, error = https(arm, "GET", f"{group_path(resource_group, 'x')}?{API}", token="forged")
    assert status == 401 and error["error"]["code"] == "InvalidAuthenticationToken"
    with sdk(arm, token="forged") as wrong, pytest.raises(ClientAuthenticationError):
        wrong.container_groups.get(resource_group, "x")


def test_api_version_is_required_and_checked(arm: EmulatorHandle, resource_group: str) -> None:
    status, _, error = https(arm, "GET", group_path(resource_group, "x"))
    assert status == 400 and error["error"]["code"] == "MissingApiVersionParameter"
    status, _, error = https(arm, "GET", f"{group_path(resource_group, 'x')}?api-version=2017-01-01")
    assert status == 400 and error["error"]["code"] == "InvalidApiVersionParameter"
    status, _, error = https(arm, "GET", f"{group_path(resource_group, 'absent')}?{API}")
    assert status == 404 and error["error"]["code"] == "ResourceNotFound"


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("Bad_Name", body(container("a")), "ContainerGroupNameInvalid"),
        ("g", body(container("a", cpu=5)), "ResourceRequestsNotSupported"),
        ("g", body(container("a", cpu=3), container("b", cpu=2)), "ResourceRequestsNotSupported"),
        ("g", body(container("a", memory=0.25)), "InvalidMemoryRequest"),
        ("g", body(container("a", ports=(80,)), container("b", ports=(80,))), "DuplicateContainerPorts"),
        (
            "g",
            body(container("a", ports=(80,)), ipAddress={"type": "Public", "ports": [{"port": 81}]}),
            "UnreferencedIpAddressPorts",
        ),
        (
            "g",
            body(
                container("a", ports=(80,)),
                ipAddress={"type": "Public", "ports": [{"port": 80}], "dnsNameLabel": "9bad"},
            ),
            "InvalidDnsNameLabel",
        ),
        ("g", body(container("a", env=[{"name": "X"}])), "InvalidEnvironmentVariable"),
        ("g", body(container("a"), container("a")), "DuplicateContainerName"),
        ("g", body(), "ContainerGroupContainersRequired"),
    ],
)
def test_validation_matches_aci(
    client: ContainerInstanceManagementClient, resource_group: str, name: str, data: dict[str, Any], code: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        put(client, resource_group, name, data)
    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == code


def test_requests_and_os_type_are_refused_in_aci_words(arm: EmulatorHandle, resource_group: str) -> None:
    bare = container("a")
    del bare["properties"]["resources"]["requests"]["cpu"]
    status, _, error = https(arm, "PUT", f"{group_path(resource_group, 'g')}?{API}", body(bare))
    assert status == 400 and error["error"]["code"] == "ResourceRequestsNotSpecified"
    assert "Both memory and CPU requests are required" in error["error"]["message"]
    data = body(container("a"))
    data["properties"]["osType"] = "Plan9"
    status, _, error = https(arm, "PUT", f"{group_path(resource_group, 'g')}?{API}", data)
    assert status == 400 and error["error"]["code"] == "InvalidOsType"
    assert "'Windows,Linux'" in error["error"]["message"]


def test_changes_aci_cannot_make_in_place_are_refused(
    client: ContainerInstanceManagementClient, resource_group: str
) -> None:
    put(client, resource_group, "g", body(container("a")))
    put(client, resource_group, "g", body(container("a", env=[{"name": "A", "value": "2"}])))
    with pytest.raises(HttpResponseError) as caught:
        put(client, resource_group, "g", body(container("a", cpu=1.0)))
    assert caught.value.status_code == 409 and caught.value.error.code == "InvalidContainerGroupUpdate"
    assert "you must delete it first" in str(caught.value)


def test_dns_labels_are_unique_per_region(client: ContainerInstanceManagementClient, resource_group: str) -> None:
    ip = {"type": "Public", "ports": [{"port": 80}], "dnsNameLabel": f"label-{resource_group}"}
    first = put(client, resource_group, "one", body(container("a", ports=(80,)), ipAddress=ip))
    assert first.ip_address.fqdn == f"label-{resource_group}.westeurope.azurecontainer.io"
    with pytest.raises(HttpResponseError) as caught:
        put(client, resource_group, "two", body(container("a", ports=(80,)), ipAddress=ip))
    assert caught.value.error.code == "DnsNameLabelNotAvailable"


def test_put_is_a_long_running_operation_as_arm_does_it(arm: EmulatorHandle, resource_group: str) -> None:
    arm.backend.op_seconds = 1.0
    path = f"{group_path(resource_group, 'lro')}?{API}"
    status, headers, created = https(arm, "PUT", path, body(container("a")))
    assert status == 201 and created["properties"]["provisioningState"] == "Creating"
    operation = headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.ContainerInstance/locations/westeurope/operations/" in operation
    assert 0 < int(headers["retry-after-ms"]) <= 1001
    status_path = operation.removeprefix(arm.endpoint)
    assert https(arm, "GET", status_path)[2]["status"] == "InProgress"
    wait_for(lambda: https(arm, "GET", status_path)[2]["status"] == "Succeeded")
    assert https(arm, "GET", path)[2]["properties"]["provisioningState"] == "Succeeded"
    status, headers, _ = https(arm, "DELETE", path)
    assert status == 202 and "Location" in headers and "Azure-AsyncOperation" in headers
    assert https(arm, "GET", headers["Location"].removeprefix(arm.endpoint))[0] == 202
    wait_for(lambda: https(arm, "DELETE", path)[0] == 204)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until condition holds; fail after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_secure_values_are_never_returned(
    arm: EmulatorHandle, client: ContainerInstanceManagementClient, resource_group: str
) -> None:
    secret = "s3cr3t-never-shown"
    data = body(
        container("a", env=[{"name": "TOKEN", "secureValue": secret}, {"name": "PLAIN", "value": "p"}]),
        volumes=[{"name": "secrets", "secret": {"token": "czNjcjN0LW5ldmVyLXNob3du"}}],
        imageRegistryCredentials=[{"server": "r.azurecr.io", "username": "u", "password": secret}],
    )
    returned = put(client, resource_group, "sec", data)
    listed = list(client.container_groups.list_by_resource_group(resource_group))
    raw = https(arm, "GET", f"{group_path(resource_group, 'sec')}?{API}")[2]
    for shown in (
        json.dumps(returned.serialize(keep_readonly=True)),
        json.dumps(raw),
        json.dumps([g.serialize(keep_readonly=True) for g in listed]),
    ):
        assert secret not in shown and "czNjcjN0" not in shown
    env = raw["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert env == [{"name": "TOKEN"}, {"name": "PLAIN", "value": "p"}]


def test_lists_page_with_next_link(
    arm: EmulatorHandle, client: ContainerInstanceManagementClient, resource_group: str
) -> None:
    arm.backend.page_size = 2
    try:
        for index in range(5):
            put(client, resource_group, f"p{index}", body(container("a")))
        assert [g.name for g in client.container_groups.list_by_resource_group(resource_group)] == [
            f"p{i}" for i in range(5)
        ]
        assert {f"p{i}" for i in range(5)} <= {g.name for g in client.container_groups.list()}
    finally:
        arm.backend.page_size = 100


def test_restart_stop_start_and_logs(
    arm: EmulatorHandle, client: ContainerInstanceManagementClient, resource_group: str
) -> None:
    put(client, resource_group, "ops", body(container("a"), container("b")))
    client.container_groups.begin_restart(resource_group, "ops").result()
    time.sleep(0.05)
    group = client.container_groups.get(resource_group, "ops")
    assert [c.instance_view.restart_count for c in group.containers] == [1, 1]
    client.container_groups.stop(resource_group, "ops")
    group = client.container_groups.get(resource_group, "ops")
    assert group.instance_view.state == "Stopped"
    assert group.containers[0].instance_view.current_state.state == "Terminated"
    client.container_groups.begin_start(resource_group, "ops").result()
    time.sleep(0.05)
    assert client.container_groups.get(resource_group, "ops").instance_view.state == "Running"
    arm.backend.append_log(SUB, resource_group, "ops", "b", "hello from b")
    logs = client.containers.list_logs(resource_group, "ops", "b", tail=1)
    assert logs.content == "hello from b\n"
    with pytest.raises(HttpResponseError):
        client.containers.list_logs(resource_group, "ops", "zzz")


def test_faults_can_be_injected_over_http(arm: EmulatorHandle, resource_group: str) -> None:
    assert https(arm, "POST", "/_emulator/faults", {"status": 503, "times": 1, "method": "GET"})[0] == 204
    status, _, error = https(arm, "GET", f"{group_path(resource_group, 'x')}?{API}")
    assert status == 503 and error["error"]["code"] == "ServiceUnavailable"
    assert https(arm, "GET", f"{group_path(resource_group, 'x')}?{API}")[0] == 404
    assert https(arm, "POST", "/_emulator/faults", {"status": 429, "retry_after": 7})[0] == 204
    status, headers, _ = https(arm, "GET", f"{group_path(resource_group, 'x')}?{API}")
    assert status == 429 and headers["Retry-After"] == "7"
    records = https(arm, "GET", "/_emulator/requests")[2]["requests"]
    assert records[-1]["status"] == 429


def test_emulator_is_registered_and_runs_from_the_cli(tmp_path: Path) -> None:
    factory = load_factory("azure", EMULATORS_GROUP)
    assert factory.__name__ == "AzureEmulator"
    cli = Path(sys.executable).parent / "multicloud"
    process = subprocess.Popen(
        [str(cli), "emulate", "azure"], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]  # the listening line, the data-plane note, 3 exports
        exports = [line for line in lines if line.startswith("export ")]
        exported = dict(line.removeprefix("export ").strip().split("=", 1) for line in exports)
        assert set(exported) == {
            "MULTICLOUD_AZURE_TOKEN",
            "MULTICLOUD_AZURE_ARM_ENDPOINT",
            "MULTICLOUD_AZURE_CA_BUNDLE",
        }
        assert Path(exported["MULTICLOUD_AZURE_CA_BUNDLE"]).is_file()
        context = ssl.create_default_context(cafile=exported["MULTICLOUD_AZURE_CA_BUNDLE"])
        request = urllib.request.Request(
            f"{exported['MULTICLOUD_AZURE_ARM_ENDPOINT']}/subscriptions/{SUB}/providers/"
            f"Microsoft.ContainerInstance/containerGroups?{API}",
            headers={"Authorization": f"Bearer {exported['MULTICLOUD_AZURE_TOKEN']}"},
        )
        with urllib.request.urlopen(request, context=context) as response:
            assert json.loads(response.read()) == {"value": []}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
    assert not Path(exported["MULTICLOUD_AZURE_CA_BUNDLE"]).exists(), "stop removes the test certificate"
