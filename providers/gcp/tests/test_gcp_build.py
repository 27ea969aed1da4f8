"""`build:` on gcp-cloudrun, for real: the local engine builds, the emulated Artifact Registry (a real
docker-registry behind `oauth2accesstoken` logins) takes the push, the revision names the image by
digest at the registry's address, and the emulator's data plane pulls it from there; wrong tokens
are refused."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.environment import ACCESS_TOKEN_ENV, REGISTRY_ENV
from multicloud_gcp.provider import CloudRunProvider

from multicloud import image_registry
from multicloud.api import Deployment
from multicloud.errors import CapabilityError
from multicloud.planner import Action
from multicloud.retry import RetryPolicy
from multicloud.spec import spec_from_dict
from multicloud.spec.targets import target_spec
from multicloud.testing import registry as local_registry

PROJECT = "build-project"
APP_IMAGE = "multicloud-test/app:1"
IMAGES = Path(__file__).resolve().parents[2] / "docker" / "tests" / "images"


@pytest.fixture(scope="module")
def running() -> Iterator[RunningCloudRun]:
    """A Cloud Run emulator with its data plane and Artifact Registry (skips without them)."""
    reason = local_registry.unavailable_reason("gcp")
    if reason:
        pytest.skip(reason)
    emulator = CloudRunEmulator(run=True).start()
    if not emulator.front:
        emulator.stop()
        pytest.skip(emulator.notes[-2])
    for tag, context in (("multicloud-test/python3:1", "base"), (APP_IMAGE, "app")):  # the docker tests' images
        if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode:
            subprocess.run(["docker", "build", "-q", "-t", tag, str(IMAGES / context)], check=True, timeout=600)
    yield emulator
    emulator.stop()


def _context(root: Path, text: str) -> None:
    """A context FROM the docker tests' app (an HTTP server on $PORT, which Cloud Run's startup probe
    checks) that answers as service `text`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(f"FROM {APP_IMAGE}\nENV SERVICE_NAME={text}\n")


def _deployment(running: RunningCloudRun, base: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Deployment:
    monkeypatch.setenv(ACCESS_TOKEN_ENV, running.environment[ACCESS_TOKEN_ENV])
    target = {**running.settings(project=PROJECT), "registry_endpoint": running.environment[REGISTRY_ENV],
              "artifact_registry": "images", **settings}
    data = {"name": f"b{uuid.uuid4().hex[:6]}",
            "services": {"job": {"build": "./job", "resources": {"cpu": 1, "memory": "512Mi"},
                                 "ports": [{"name": "http", "port": 8080, "protocol": "http", "expose": "public"}]}},
            "targets": {"gcp": {"provider": "gcp-cloudrun", **target}}}
    return Deployment(spec_from_dict(data, base_dir=str(base)), "gcp", provider=CloudRunProvider(target),
                      retry=RetryPolicy(attempts=3, base_delay=0.1), health_timeout=90)


def _revision_image(running: RunningCloudRun, deploy: Deployment) -> str:
    name = f"projects/{PROJECT}/locations/europe-west1/services/{deploy.spec.name}-job"
    body = deploy.provider.client.get_service(name)  # type: ignore[attr-defined]
    return str(body["template"]["containers"][0]["image"])


def _pulled(running: RunningCloudRun, image: str) -> list[str]:
    """The data plane's containers running `image`, waiting up to 30 s for one."""
    import docker

    assert running.model.runner is not None
    api = docker.APIClient(version="1.41")
    session = running.model.runner.plane.session
    deadline, found = time.monotonic() + 30, []
    while time.monotonic() < deadline and not found:
        members = api.containers(filters={"label": [f"multicloud.dataplane={session}"]})
        found = [c["Id"] for c in members if api.inspect_container(c["Id"])["Config"]["Image"] == image]
        time.sleep(0.3)
    return found


@pytest.mark.docker
def test_a_build_is_pushed_to_artifact_registry_and_run_by_digest(
        running: RunningCloudRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _context(tmp_path / "job", f"built-{uuid.uuid4().hex[:8]}")
    deploy = _deployment(running, tmp_path, monkeypatch)
    registry = running.environment[REGISTRY_ENV]
    repo = f"{PROJECT}/images/{deploy.spec.name}/job"
    auth = image_registry.basic_auth("oauth2accesstoken", running.environment[ACCESS_TOKEN_ENV])
    try:
        assert deploy.apply().ok
        image = _revision_image(running, deploy)
        tags = image_registry.tags(registry, repo, auth)
        digest = image_registry.manifest_digest(registry, repo, tags[0], auth)
        assert image == f"{registry.split('://')[1]}/{repo}@{digest}"
        assert _pulled(running, image), "the data plane runs the pushed image"
        assert not deploy.plan().has_changes

        _context(tmp_path / "job", "v2")
        changed = deploy.plan()
        steps = [c for c in changed.changes if c.action is not Action.NOOP]
        assert [(c.key, [f.path for f in c.fields]) for c in steps] == [("service/job", ["image.hash"])]
    finally:
        deploy.destroy()


@pytest.mark.docker
def test_artifact_registry_refuses_a_wrong_token(running: RunningCloudRun, tmp_path: Path) -> None:
    registry = running.environment[REGISTRY_ENV]
    wrong = image_registry.basic_auth("oauth2accesstoken", "ya29.not-the-token")
    assert image_registry.tags(registry, f"{PROJECT}/images/x/job", wrong) == []
    done = subprocess.run(["docker", "--config", str(tmp_path), "login", "-u", "oauth2accesstoken",
                           "--password-stdin", registry.split("://")[1]], input="ya29.not-the-token",
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "unauthorized" in done.stderr.lower()


def test_build_without_artifact_registry_is_refused_at_plan(tmp_path: Path) -> None:
    _context(tmp_path / "job", "x")
    target = {"project": PROJECT, "region": "europe-west1"}
    data = {"name": "planned", "services": {"job": {"build": "./job"}},
            "targets": {"gcp": {"provider": "gcp-cloudrun", **target}}}
    with pytest.raises(CapabilityError) as refused:
        CloudRunProvider(target).desired(target_spec(spec_from_dict(data, base_dir=str(tmp_path)), "gcp"), {})
    assert "services.job.build" in str(refused.value) and "`artifact_registry:`" in str(refused.value)
