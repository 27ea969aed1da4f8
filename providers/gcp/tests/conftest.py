"""Fixtures for the Cloud Run provider tests: an emulator per test, providers over REST and gRPC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from multicloud_gcp.emulator import CloudRunEmulator, RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.spec import load, spec_from_dict
from multicloud.spec.models import Spec

DATA = Path(__file__).parent / "data"
IOT_SPEC = DATA / "iot-backend.yaml"


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks in a tmp directory, never in ~ (shared with whoever else deploys `iot-backend`)."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    return state


@pytest.fixture
def cloudrun() -> Iterator[RunningCloudRun]:
    """A fresh Cloud Run emulator (REST and gRPC) for one test."""
    running = CloudRunEmulator().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def quick_cloudrun() -> Iterator[RunningCloudRun]:
    """An API-only emulator with quick Cloud SQL operations, for one test module."""
    running = CloudRunEmulator().start()
    assert running.cloudsql is not None
    running.cloudsql.op_seconds = 0.02
    yield running
    running.stop()


@pytest.fixture(params=["rest", "grpc"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once over REST and once over gRPC."""
    return str(request.param)


@pytest.fixture
def iot_settings(cloudrun: RunningCloudRun) -> Callable[[str], dict[str, str]]:
    """f(transport): settings pointing at the emulator, with the IoT example's VPC (its internal
    auth is reached through it, as on Cloud Run)."""
    network = {k: v for k, v in load_iot_spec().targets["gcp"].settings.items() if k.startswith("vpc_")}
    return lambda transport: {**network, **cloudrun.settings(transport)}


@pytest.fixture
def provider_for(iot_settings: Callable[[str], dict[str, str]]) -> Callable[..., CloudRunProvider]:
    """Make a provider on the unmodified run_v2 clients, pointed at the emulator, with the IoT
    example's VPC: f(transport, **settings)."""

    def make(transport: str, **extra: Any) -> CloudRunProvider:
        return CloudRunProvider({**iot_settings(transport), **extra})

    return make


@pytest.fixture
def gcp(provider_for: Callable[..., CloudRunProvider], transport: str) -> CloudRunProvider:
    """The provider over the parametrised transport."""
    return provider_for(transport)


@pytest.fixture
def iot_spec() -> Spec:
    """The IoT backend spec."""
    return load_iot_spec()


@pytest.fixture
def iot_env(iot_spec: Spec) -> dict[str, str]:
    """A value for every secret the IoT spec reads from the environment."""
    return secret_env(iot_spec)


def secret_env(spec: Spec) -> dict[str, str]:
    """Made-up, recognisable values for each `from_env` secret of a spec."""
    return {s.from_env: f"{name}-S3cr3t-value" for name, s in spec.secrets.items() if s.from_env}


@pytest.fixture
def deploy() -> Callable[..., Deployment]:
    """Make a Deployment with quick retries: f(spec, provider, target="gcp", env=None)."""
    return make_deployment


def load_iot_spec() -> Spec:
    """examples/iot-backend/multicloud.yaml when it has a gcp target, else the test copy of its shape;
    services run pushed images, not builds."""
    example = Path(__file__).parents[3] / "examples" / "iot-backend" / "multicloud.yaml"
    spec = load(example) if example.exists() else load(IOT_SPEC)
    if "gcp" not in spec.targets:
        spec = load(IOT_SPEC)
    data = spec.model_dump(exclude_unset=True)
    data["targets"]["gcp"] = {k: v for k, v in data["targets"]["gcp"].items() if k not in ("project",)}
    data["targets"]["gcp"]["project"] = "demo-project"
    overrides = data["targets"]["gcp"].setdefault("overrides", {})
    for name in data["services"]:  # pushed images instead of builds (those are pushed in test_gcp_build.py)
        if name not in data["targets"]["gcp"].get("exclude", []):
            image = f"europe-west1-docker.pkg.dev/demo-project/iot-backend/{name}:1.0"
            overrides.setdefault(name, {}).update({"build": None, "image": image})
    return spec_from_dict(data)


@pytest.fixture
def write_spec() -> Callable[[Spec, dict[str, str], Path], Path]:
    """f(spec, settings, path): write a spec as YAML with its gcp target's settings updated."""
    return spec_to_file


def spec_to_file(spec: Spec, settings: dict[str, str], path: Path) -> Path:
    """Write a spec as YAML with its gcp target's settings updated by `settings`; return the path."""
    import yaml

    data = spec.model_dump(mode="json", exclude_unset=True)
    data["targets"] = {"gcp": {**data["targets"]["gcp"], **settings}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_deployment(
    spec: Spec, provider: CloudRunProvider, target: str = "gcp", env: dict[str, str] | None = None
) -> Deployment:
    """A Deployment with quick retries and the IoT secrets in its environment."""
    return Deployment(
        spec,
        target,
        provider=provider,
        environ=env or secret_env(spec),
        retry=RetryPolicy(attempts=6, base_delay=0.05, max_delay=0.5),
        health_timeout=30,
    )
