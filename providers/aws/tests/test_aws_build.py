"""`build:` services on the emulated AWS, for real: the local Docker engine builds, the
emulator's ECR hands out a token for its docker-registry, `docker push` stores the image
there, and the task definition runs it by digest. Nothing is pulled (Docker Hub is
unreachable): Dockerfiles start FROM the local stand-in debian:bookworm-slim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from multicloud_aws import local_registry
from multicloud_aws.local_registry import Registry
from multicloud_aws.provider import AwsEcsProvider

from multicloud import image_registry as registry_api
from multicloud.errors import ApplyFailedError, UserError
from multicloud.planner import Action
from multicloud.render import plan_text
from multicloud.spec import spec_from_dict

BASE_IMAGE = "debian:bookworm-slim"
IOT_DIR = Path(__file__).resolve().parents[3] / "examples" / "iot-backend"


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine with the stand-in base image, or a skip saying what is missing."""
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no docker command ({exc}); run scripts/setup-engine.sh")
    if info.returncode != 0:
        pytest.skip(f"no Docker engine answers ({info.stderr.strip()[-200:]}); run scripts/setup-engine.sh")
    if _docker("image", "inspect", BASE_IMAGE).returncode != 0:
        pytest.skip(f"{BASE_IMAGE} is missing (never pulled); scripts/setup-engine.sh builds the local stand-in")


@pytest.fixture
def registry(aws: Any, engine: None, app_name: str) -> Iterator[Registry]:
    """The emulator's registry (a skip saying how to install it when there is none); the
    app's local image tags are removed afterwards."""
    found = local_registry.current()
    if found is None:
        pytest.skip(local_registry.unavailable_reason() or "the aws emulator runs without a registry")
    yield found
    listed = _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    ours = [ref for ref in listed if ref.startswith(f"{found.address}/multicloud/{app_name}/")]
    if ours:
        _docker("image", "rm", *ours)


def _context(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n")
    (root / "app.txt").write_text(text)
    return root


def _spec(app: str, base: Path) -> Any:
    data = {"name": app, "services": {"api": {"build": "./api", "resources": {"cpu": 0.25, "memory": "512Mi"}}},
            "targets": {"aws": {"provider": "aws-ecs", "region": "us-east-1"}}}
    return spec_from_dict(data, base_dir=str(base))


def _running_image(provider: AwsEcsProvider, app: str, service: str) -> str:
    ecs = provider.ctx.client("ecs")
    arn = ecs.describe_services(cluster=app, services=[service])["services"][0]["taskDefinition"]
    return str(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]["image"])


def _repository_uri(provider: AwsEcsProvider, app: str, service: str) -> str:
    found = provider.ctx.client("ecr").describe_repositories(repositoryNames=[f"multicloud/{app}/{service}"])
    return str(found["repositories"][0]["repositoryUri"])


@pytest.mark.docker
def test_build_is_pushed_to_the_registry_and_deployed_by_digest(
        registry: Registry, make_provider: Callable[..., AwsEcsProvider], deploy: Any, calls: Any,
        app_name: str, tmp_path: Path) -> None:
    context = _context(tmp_path / "api", f"v1 {uuid.uuid4()}\n")
    repo = f"multicloud/{app_name}/api"
    deployed = deploy(_spec(app_name, tmp_path), make_provider(), {})
    try:
        first = deployed.plan()
        assert {c.key for c in first.changes} >= {"repository/api", "service/api"}
        assert deployed.apply(first).ok
        provider = deployed.provider
        uri = _repository_uri(provider, app_name, "api")
        assert uri == f"{registry.address}/{repo}"
        tags = registry_api.tags(registry.endpoint, repo)
        assert len(tags) == 1
        digest = registry_api.manifest_digest(registry.endpoint, repo, tags[0])
        assert digest is not None and _running_image(provider, app_name, "api") == f"{uri}@{digest}"

        fresh = deploy(_spec(app_name, tmp_path), make_provider(), {})  # as another process would
        assert not fresh.plan().has_changes, plan_text(fresh.plan())
        calls.clear()
        assert fresh.apply().changed == 0
        assert calls.mutations() == [] and ("ecr", "GetAuthorizationToken") not in calls.made
        assert registry_api.tags(registry.endpoint, repo) == tags

        (context / "app.txt").write_text("v2\n")
        changed = fresh.plan()
        steps = [c for c in changed.changes if c.action is not Action.NOOP]
        assert [(c.key, c.action) for c in steps] == [("service/api", Action.UPDATE)], plan_text(changed)
        assert [f.path for f in steps[0].fields] == ["task.image.hash"]
        assert fresh.apply(changed).ok
        new_tags = registry_api.tags(registry.endpoint, repo)
        assert len(new_tags) == 2 and tags[0] in new_tags
        new_digest = registry_api.manifest_digest(registry.endpoint, repo, next(t for t in new_tags if t != tags[0]))
        assert new_digest not in (None, digest)
        assert _running_image(provider, app_name, "api") == f"{uri}@{new_digest}"
        assert not fresh.plan().has_changes
    finally:
        deployed.destroy()
    assert not [r for r in provider.ctx.client("ecr").describe_repositories()["repositories"]
                if r["repositoryName"].startswith(f"multicloud/{app_name}/")]
    assert registry_api.tags(registry.endpoint, repo) == []


@pytest.mark.docker
def test_a_context_changed_after_the_plan_is_refused(
        registry: Registry, make_provider: Callable[..., AwsEcsProvider], deploy: Any, app_name: str,
        tmp_path: Path) -> None:
    context = _context(tmp_path / "api", "planned\n")
    deployed = deploy(_spec(app_name, tmp_path), make_provider(), {})
    try:
        planned = deployed.plan()
        (context / "app.txt").write_text("edited after the plan\n")
        with pytest.raises(ApplyFailedError) as failed:
            deployed.apply(planned)
        errors = [step.error for step in failed.value.result.failed]
        assert [type(e) for e in errors] == [UserError] and "changed since it was planned" in str(errors[0])
        assert registry_api.tags(registry.endpoint, f"multicloud/{app_name}/api") == []
        assert deployed.apply().ok  # a fresh plan builds what is there now
    finally:
        deployed.destroy()


def own_certificate(data: dict[str, Any]) -> dict[str, Any]:
    """The example spec with its TLS pair brought by its owner (IOT_TLS_CERT, IOT_TLS_KEY) instead of
    generated: then no NLB name joins the certificate after the first apply, which converges at once."""
    del data["secrets"]["tls"]
    data["secrets"].update(tls_cert={"from_env": "IOT_TLS_CERT"}, tls_key={"from_env": "IOT_TLS_KEY"})
    return data


@pytest.mark.docker
def test_iot_example_builds_push_to_the_emulated_ecr(
        registry: Registry, make_provider: Callable[..., AwsEcsProvider], deploy: Any, app_name: str,
        iot_example: dict[str, Any], iot_secrets: dict[str, str], tmp_path: Path) -> None:
    shutil.copytree(IOT_DIR / "services", tmp_path / "services")  # a snapshot: the plan's hashes stay true
    spec = spec_from_dict(own_certificate(iot_example), base_dir=str(tmp_path))
    deployed = deploy(spec, make_provider(), iot_secrets)
    built = ["auth", "broker", "ingestion", "registry"]  # db is excluded on aws
    try:
        assert deployed.apply().ok
        provider = deployed.provider
        for service in built:
            repo = f"multicloud/{app_name}/{service}"
            tags = registry_api.tags(registry.endpoint, repo)
            assert len(tags) == 1, (service, tags)
            digest = registry_api.manifest_digest(registry.endpoint, repo, tags[0])
            assert _running_image(provider, app_name, service) == f"{registry.address}/{repo}@{digest}"
        assert not deployed.plan().has_changes
    finally:
        deployed.destroy()
    for service in built:
        assert registry_api.tags(registry.endpoint, f"multicloud/{app_name}/{service}") == []


NO_REGISTRY = """
import boto3
from multicloud_aws.emulator import in_process
with in_process(registry=None):
    try:
        boto3.client("ecr").get_authorization_token()
    except Exception as exc:
        print(exc)
"""


def test_without_a_registry_the_emulator_says_how_to_install_one(tmp_path: Path) -> None:
    env = {**os.environ, "MULTICLOUD_STATE_DIR": str(tmp_path)}
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run([sys.executable, "-c", NO_REGISTRY], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert "apt-get install -y docker-registry" in done.stdout, done.stderr[-2000:]
