"""Fixtures for the aws-ecs tests: one moto server per session (gaps filled by
multicloud_aws.gaps, through the `aws_emulator` fixture of our pytest plugin), real boto3
clients pointed at it, and a counter of every API call they make."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from multicloud_aws import gaps
from multicloud_aws.emulator import client_factory
from multicloud_aws.provider import AwsEcsProvider

from multicloud.api import Deployment
from multicloud.contract import RunningEmulator
from multicloud.emulators import emulator
from multicloud.retry import RetryPolicy
from providers.aws.tests.aws_plane import Running, emulated_aws

READ_PREFIXES = ("Describe", "List", "Get", "Discover")
IOT_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "iot-backend" / "multicloud.yaml"
IOT_SECRETS = {
    "IOT_DB_PASSWORD": "db-pw-Zq81x",
    "IOT_ADMIN_TOKEN": "admin-tok-Hh29s",
    "IOT_BROKER_FEED_TOKEN": "feed-tok-Pp11a",
    "IOT_INGESTION_MQTT_PASSWORD": "ing-pw-Kk02b",
    "IOT_REGISTRY_MQTT_PASSWORD": "reg-pw-Jj73c",
    "IOT_DATABASE_URL": "postgresql://iot:db-pw-Zq81x@db.example.internal:5432/iot",
    "IOT_TLS_CERT": "-----BEGIN CERTIFICATE-----\ncert-Tt48q\n-----END CERTIFICATE-----",
    "IOT_TLS_KEY": "-----BEGIN PRIVATE KEY-----\nkey-Vv93w\n-----END PRIVATE KEY-----",
}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep locks in a tmp directory, never in ~."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MULTICLOUD_STATE_DIR", str(state))
    return state


@dataclass
class Calls:
    """Every AWS API call made through hooked clients, as (service, operation)."""

    made: list[tuple[str, str]] = field(default_factory=list)

    def hook(self, event_name: str, **_: Any) -> None:
        """botocore 'before-call.SERVICE.OPERATION' handler."""
        _, service, operation = event_name.split(".", 2)
        self.made.append((service, operation))

    def reads(self) -> list[tuple[str, str]]:
        """Calls that only read."""
        return [c for c in self.made if c[1].startswith(READ_PREFIXES)]

    def mutations(self) -> list[tuple[str, str]]:
        """Calls that change something."""
        return [c for c in self.made if not c[1].startswith(READ_PREFIXES)]

    def clear(self) -> None:
        """Forget what was counted."""
        self.made.clear()


@pytest.fixture
def calls() -> Calls:
    """A fresh call counter."""
    return Calls()


@pytest.fixture
def aws(aws_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The session's emulator with no faults left over from another test."""
    gaps.clear_faults()
    yield aws_emulator
    gaps.clear_faults()


@pytest.fixture
def make_provider(aws: RunningEmulator, calls: Calls) -> Callable[..., AwsEcsProvider]:
    """Build providers whose clients talk to the emulator and are counted in `calls`."""

    def make(**settings: Any) -> AwsEcsProvider:
        settings.setdefault("region", "us-east-1")
        return AwsEcsProvider(settings, client_factory=client_factory(aws.endpoint, hook=calls.hook))

    return make


@pytest.fixture
def app_name() -> str:
    """A fresh app name, so tests never see each other's objects."""
    return f"t-{uuid.uuid4().hex[:8]}"


def _deployment(spec: Any, provider: AwsEcsProvider, environ: dict[str, str], target: str = "aws") -> Deployment:
    """A Deployment with fast retries, for tests."""
    return Deployment(spec, target, provider=provider, environ=environ,
                      retry=RetryPolicy(attempts=6, base_delay=0.05, max_delay=0.5), health_timeout=30)


def _tagged(provider: AwsEcsProvider, app: str) -> list[str]:
    """ARNs of everything still tagged with the app, by the tagging API (every type), but
    deleted clusters (INACTIVE: AWS lists them for days)."""
    client = provider.ctx.client("resourcegroupstaggingapi")
    found = client.get_resources(TagFilters=[{"Key": "multicloud:app", "Values": [app]}])
    arns = sorted(r["ResourceARN"] for r in found["ResourceTagMappingList"])
    clusters = [a for a in arns if ":cluster/" in a]
    if clusters:
        described = provider.ctx.client("ecs").describe_clusters(clusters=clusters)["clusters"]
        inactive = {c["clusterArn"] for c in described if c["status"] == "INACTIVE"}
        arns = [a for a in arns if a not in inactive]
    return arns


@pytest.fixture
def deploy() -> Callable[..., Deployment]:
    """deploy(spec, provider, environ, target="aws"): a Deployment with fast retries."""
    return _deployment


@pytest.fixture
def tagged() -> Callable[[AwsEcsProvider, str], list[str]]:
    """tagged(provider, app): ARNs of everything still tagged with the app (every type)."""
    return _tagged


@pytest.fixture
def iot_example(app_name: str) -> dict[str, Any]:
    """The IoT example spec as data, named `app_name` (its files are relative to IOT_EXAMPLE)."""
    data: dict[str, Any] = yaml.safe_load(IOT_EXAMPLE.read_text())
    data["name"] = app_name
    return data


@pytest.fixture
def iot_secrets() -> dict[str, str]:
    """Environment values for the IoT example's secrets."""
    return dict(IOT_SECRETS)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """`multicloud emulate aws` with its data plane, for a data-plane test module (see emulated_aws)."""
    with emulated_aws() as emulated:
        yield emulated


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[RunningEmulator]:
    """The aws emulator serving the API only: these tests deploy images that exist nowhere
    (test_aws_dataplane.py starts one that runs its tasks)."""
    with emulator("aws", run=False) as started:
        yield started
