"""`build:` on azure-aci, for real: the local engine builds, the emulated ACR (ARM registries, a
real docker-registry behind ACR's /oauth2/exchange and token endpoint) takes the push, the group
runs the image by digest and the emulator's data plane pulls it with the group's
imageRegistryCredentials; wrong tokens are refused at every step."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from multicloud_azure import acr
from multicloud_azure.emulator import EmulatorHandle
from multicloud_azure.provider import AzureAciProvider

from multicloud import image_registry
from multicloud.api import Deployment
from multicloud.errors import CapabilityError, UserError
from multicloud.planner import Action
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.spec.targets import target_spec
from multicloud.testing import registry as local_registry

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000b1"
BASE_IMAGE = "debian:bookworm-slim"


@pytest.fixture(scope="module")
def running_arm(data_plane_arm: EmulatorHandle) -> EmulatorHandle:
    """An ACI emulator with its data plane (skips without an engine, the base image or docker-registry)."""
    reason = local_registry.unavailable_reason("azure")
    if reason:
        pytest.skip(reason)
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, check=False).returncode:
        pytest.skip(f"{BASE_IMAGE} is missing; scripts/setup-engine.sh builds the local stand-in")
    return data_plane_arm


def _arm(handle: EmulatorHandle, method: str, path: str, body: Any = None) -> Any:
    """One ARM call with the emulator's token, as any HTTPS client makes it."""
    request = urllib.request.Request(
        f"{handle.endpoint}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {handle.token}", "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=handle.ca_bundle)
    with urllib.request.urlopen(request, context=context, timeout=20) as response:
        return json.loads(response.read() or b"null")


def _registry(handle: EmulatorHandle, rg: str, name: str) -> str:
    """Create a registry as `az acr create` would; its login server."""
    path = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/"
            f"registries/{name}?api-version=2023-07-01")
    created = _arm(handle, "PUT", path, {"location": "westeurope", "sku": {"name": "Basic"}})
    return str(created["properties"]["loginServer"])


def _context(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.txt /app.txt\n"
                                     'CMD ["sh", "-c", "cat /app.txt; exec sleep 3600"]\n')
    (root / "app.txt").write_text(text)


def _deployment(handle: EmulatorHandle, rg: str, base: Path, monkeypatch: pytest.MonkeyPatch,
                **settings: Any) -> Deployment:
    monkeypatch.setenv("MULTICLOUD_AZURE_TOKEN", handle.token)
    target = {"subscription_id": SUBSCRIPTION, "resource_group": rg, "location": "westeurope",
              "arm_endpoint": handle.endpoint, "ca_bundle": handle.ca_bundle, "poll_interval": 0.05, **settings}
    data = {"name": f"b{rg[-6:]}", "services": {"api": {"build": "./api", "resources": {"cpu": 0.25,
                                                                                          "memory": "256Mi"}}},
            "targets": {"azure": {"provider": "azure-aci", **target}}}
    return Deployment(spec_from_dict(data, base_dir=str(base)), "azure", provider=AzureAciProvider(target),
                      retry=RetryPolicy(attempts=3, base_delay=0.1), health_timeout=90)


def _group(handle: EmulatorHandle, rg: str, name: str) -> Any:
    return _arm(handle, "GET", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/"
                f"Microsoft.ContainerInstance/containerGroups/{name}?api-version=2023-05-01")


def _logs(handle: EmulatorHandle, rg: str, name: str, wanted: str) -> str:
    deadline, text = time.monotonic() + 30, ""
    while time.monotonic() < deadline and wanted not in text:
        text = _arm(handle, "GET", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft."
                    f"ContainerInstance/containerGroups/{name}/containers/api/logs?api-version=2023-05-01")["content"]
        time.sleep(0.3)
    return str(text)


@pytest.mark.docker
def test_a_build_is_pushed_to_acr_and_the_group_pulls_it_by_digest(
        running_arm: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rg, name = f"rg-{uuid.uuid4().hex[:8]}", f"acr{uuid.uuid4().hex[:8]}"
    server = _registry(running_arm, rg, name)
    marker = f"built {uuid.uuid4()}"
    _context(tmp_path / "api", marker + "\n")
    deploy = _deployment(running_arm, rg, tmp_path, monkeypatch, acr=name)
    app = f"b{rg[-6:]}"
    repo = f"multicloud/{app}/api"
    try:
        assert deploy.apply().ok
        group = _group(running_arm, rg, app)
        image = group["properties"]["containers"][0]["properties"]["image"]
        refresh = acr.exchange(server, running_arm.token, running_arm.ca_bundle)
        auth = image_registry.basic_auth(acr.TOKEN_USER, refresh)
        tags = image_registry.tags(f"https://{server}", repo, auth, ca_bundle=running_arm.ca_bundle)
        digest = image_registry.manifest_digest(f"https://{server}", repo, tags[0], auth,
                                                ca_bundle=running_arm.ca_bundle)
        assert image == f"{server}/{repo}@{digest}"
        assert [c["server"] for c in group["properties"]["imageRegistryCredentials"]] == [server]
        assert marker in _logs(running_arm, rg, app, marker)  # the data plane pulled it with the group's token
        assert not deploy.plan().has_changes

        (tmp_path / "api" / "app.txt").write_text("v2\n")
        changed = deploy.plan()
        steps = [c for c in changed.changes if c.action is not Action.NOOP]
        assert [(c.key, [f.path for f in c.fields]) for c in steps] == [("container/api", ["image.hash"])]
        assert deploy.apply(changed).ok
        again = _group(running_arm, rg, app)["properties"]["containers"][0]["properties"]["image"]
        assert again.startswith(f"{server}/{repo}@sha256:") and again != image
        assert "v2" in _logs(running_arm, rg, app, "v2")
    finally:
        deploy.destroy()


@pytest.mark.docker
def test_acr_refuses_wrong_tokens_and_a_group_with_a_wrong_credential_never_runs(
        running_arm: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rg, name = f"rg-{uuid.uuid4().hex[:8]}", f"acr{uuid.uuid4().hex[:8]}"
    server = _registry(running_arm, rg, name)
    with pytest.raises(UserError, match="refused the ARM token"):
        acr.exchange(server, "not-the-arm-token", running_arm.ca_bundle)
    wrong = image_registry.basic_auth(acr.TOKEN_USER, "not-a-refresh-token")
    assert image_registry.tags(f"https://{server}", "multicloud/x/api", wrong, ca_bundle=running_arm.ca_bundle) == []
    done = subprocess.run(["docker", "--config", str(tmp_path), "login", "-u", acr.TOKEN_USER, "--password-stdin",
                           server], input="not-a-refresh-token", capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "unauthorized" in done.stderr.lower()

    _context(tmp_path / "api", "pushed\n")  # push once for real, then PUT a group whose credential is wrong
    deploy = _deployment(running_arm, rg, tmp_path, monkeypatch, acr=name)
    try:
        assert deploy.apply().ok
        app = f"b{rg[-6:]}"
        body = _group(running_arm, rg, app)
        image = body["properties"]["containers"][0]["properties"]["image"]
        bad = {"location": "westeurope", "properties": {
            "osType": "Linux", "restartPolicy": "Always",
            "containers": [{"name": "api", "properties": {"image": image, "resources": {"requests": {
                "cpu": 0.25, "memoryInGB": 0.3}}}}],
            "imageRegistryCredentials": [{"server": server, "username": acr.TOKEN_USER, "password": "wrong"}]}}
        path = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/"
                f"containerGroups/bad{rg[-6:]}?api-version=2023-05-01")
        _arm(running_arm, "PUT", path, bad)
        deadline, state = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            view = _arm(running_arm, "GET", path)["properties"]["containers"][0]["properties"].get("instanceView")
            state = (view or {}).get("currentState") or {}
            if "unauthorized" in str(state.get("detailStatus", "")).lower():
                break
            time.sleep(0.3)
        assert state.get("state") != "Running" and "unauthorized" in str(state.get("detailStatus")).lower(), state
        _arm(running_arm, "DELETE", path)
    finally:
        deploy.destroy()


def test_build_without_an_acr_setting_is_refused_at_plan(tmp_path: Path) -> None:
    _context(tmp_path / "api", "x\n")
    target = {"subscription_id": SUBSCRIPTION, "resource_group": "rg-plan", "location": "westeurope"}
    data = {"name": "planned", "services": {"api": {"build": "./api"}},
            "targets": {"azure": {"provider": "azure-aci", **target}}}
    spec = target_spec(spec_from_dict(data, base_dir=str(tmp_path)), "azure")
    with pytest.raises(CapabilityError) as refused:
        AzureAciProvider(target).desired(spec, {})
    assert "services.api.build" in str(refused.value) and "`acr:`" in str(refused.value)
