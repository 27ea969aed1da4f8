"""Pure mapping rules: Fargate sizes, settings, plan-time errors, and import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from multicloud_aws.fargate import FARGATE_MEMORY, fargate_size, is_valid
from multicloud_aws.provider import AwsEcsProvider

from multicloud.api import Deployment
from multicloud.build import build_hash
from multicloud.errors import SettingsError, SpecError, UserError
from multicloud.spec import spec_from_dict
from multicloud.spec.models import Build
from multicloud.spec.targets import target_spec

GI = 1024**3


@pytest.mark.parametrize(("cpu", "memory", "expected"), [
    (0.25, 512 * 1024**2, (256, 512)),
    (0.25, 100 * 1024**2, (256, 512)),
    (0.3, 1 * GI, (512, 1024)),
    (1, 512 * 1024**2, (1024, 2048)),
    (2, 5 * GI + 1, (2048, 6144)),
    (8, 20 * GI, (8192, 20480)),
    (16, 120 * GI, (16384, 122880)),
])
def test_requests_round_up_to_an_allowed_pair(cpu: float, memory: int, expected: tuple[int, int]) -> None:
    assert fargate_size("s", cpu, memory) == expected
    assert is_valid(*expected)


@pytest.mark.parametrize(("cpu", "memory", "says"), [
    (0.25, 4 * GI, "raise resources.cpu to 0.5"),
    (32, 1 * GI, "largest task"),
    (16, 200 * GI, "lower the memory"),
])
def test_impossible_requests_name_the_allowed_pairs(cpu: float, memory: int, says: str) -> None:
    with pytest.raises(UserError) as caught:
        fargate_size("api", cpu, memory)
    assert says in str(caught.value)
    assert "cpu 0.25: 512Mi, 1Gi, 2Gi" in str(caught.value)
    assert "cpu 16: 32Gi-120Gi in 8Gi steps" in str(caught.value)


def test_every_listed_pair_is_valid() -> None:
    assert sum(len(m) for m in FARGATE_MEMORY.values()) == 3 + 4 + 7 + 13 + 23 + 12 + 12


def _spec(service: dict[str, Any], **target: Any) -> Any:
    return spec_from_dict({"name": "mapping", "services": {"api": {"image": "x:1", **service}},
                           "targets": {"aws": {"provider": "aws-ecs", "region": "eu-west-1", **target}}})


def test_invalid_fargate_size_is_a_plan_time_error() -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    deployment = Deployment(_spec({"resources": {"cpu": 0.25, "memory": "8Gi"}}), "aws", provider=provider,
                            environ={})
    with pytest.raises(UserError) as caught:
        deployment.plan()
    assert "Fargate" in str(caught.value) and "cpu 0.5: 1Gi-4Gi in 1Gi steps" in str(caught.value)


def test_unknown_setting_names_the_key() -> None:
    with pytest.raises(SettingsError) as caught:
        AwsEcsProvider({"regoin": "eu-west-1"})
    assert caught.value.field == "regoin" and "did you mean 'region'" in str(caught.value)
    with pytest.raises(SettingsError) as bad:
        AwsEcsProvider({"log_retention_days": 42})
    assert bad.value.field == "log_retention_days"


def test_bad_setting_is_reported_at_its_line() -> None:
    spec = _spec({}, subnets=["not-a-subnet"])
    with pytest.raises(SpecError) as caught:
        Deployment(spec, "aws", environ={}).provider  # noqa: B018
    assert "targets.aws.subnets" in str(caught.value)


def test_secret_in_command_and_shared_public_port_are_refused() -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    spec = spec_from_dict({"name": "m", "secrets": {"t": {"from_env": "T"}},
                           "services": {"api": {"image": "x", "command": ["run", "${secrets.t}"]}},
                           "targets": {"aws": {"provider": "aws-ecs"}}})
    with pytest.raises(UserError, match="plain text"):
        provider.desired(target_spec(spec, "aws"), {"t": "v"})
    port = {"name": "http", "port": 80, "protocol": "http", "expose": "public"}
    spec = spec_from_dict({"name": "m", "services": {"a": {"image": "x", "ports": [port]},
                                                     "b": {"image": "x", "ports": [port]}},
                           "targets": {"aws": {"provider": "aws-ecs"}}})
    with pytest.raises(UserError, match="public port 80"):
        provider.desired(target_spec(spec, "aws"), {})


def test_embedded_secret_becomes_its_own_secret() -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    spec = spec_from_dict({"name": "m", "secrets": {"pw": {"from_env": "PW"}},
                           "services": {"api": {"image": "x", "env": {"URL": "pg://u:${secrets.pw}@db/x",
                                                                      "PW": "${secrets.pw}"}}},
                           "targets": {"aws": {"provider": "aws-ecs"}}})
    resources = {r.key: r for r in provider.desired(target_spec(spec, "aws"), {"pw": "hunter2"})}
    task = resources["service/api"].properties["task"]
    assert task["env"] == {} and task["secrets"] == {"PW": "secret/pw", "URL": "secret/api.URL"}
    assert resources["secret/api.URL"].properties["name"] == "multicloud/m/api/URL"
    assert "hunter2" not in repr(resources)


def test_a_build_is_named_by_its_context_hash_without_any_call(tmp_path: Path) -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    data = {"name": "m", "services": {"api": {"build": {"context": "./api", "args": {"V": 1}}}},
            "targets": {"aws": {"provider": "aws-ecs"}}}

    def image() -> dict[str, Any]:
        spec = target_spec(spec_from_dict(data, base_dir=str(tmp_path)), "aws")
        return {r.key: r for r in provider.desired(spec, {})}["service/api"].properties["task"]["image"]

    first = image()
    assert first["repository"] == "repository/api" and first["args"] == {"V": "1"}
    assert first["hash"] == build_hash(str(tmp_path), "api", Build(context="./api", args={"V": "1"}))
    assert image() == first
    (tmp_path / "api" / "main.py").write_text("print('v2')\n")
    assert image()["hash"] != first["hash"]
    data["services"]["api"]["build"]["context"] = "./missing"
    with pytest.raises(UserError, match=r"services\.api\.build: build context .*missing is not a directory"):
        image()


def test_importing_the_provider_and_rendering_loads_no_sdk() -> None:
    code = (
        "import sys\n"
        "from multicloud_aws.provider import AwsEcsProvider\n"
        "from multicloud.spec import spec_from_dict\n"
        "from multicloud.spec.targets import target_spec\n"
        "s = spec_from_dict({'name': 'x', 'services': {'a': {'image': 'i'}},\n"
        "                    'targets': {'t': {'provider': 'aws-ecs'}}})\n"
        "AwsEcsProvider({'region': 'eu-west-1'}).desired(target_spec(s, 't'), {})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'moto')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _no_calls(service: str) -> Any:
    raise AssertionError(f"no AWS call expected (asked for a {service} client)")


def test_secret_files_become_secrets_manager_env_on_fargate() -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    data = {"name": "m", "secrets": {"pw": {"from_env": "PW"}},
            "services": {"api": {"image": "x", "env": {"DB_PASSWORD_FILE": "${secrets.pw.file}", "MODE": "a"},
                                 "ports": [{"name": "web", "port": 8443, "protocol": "https", "expose": "public"}],
                                 "healthcheck": {"http": "/healthz"}}},
            "targets": {"aws": {"provider": "aws-ecs"}}}
    resources = {r.key: r for r in provider.desired(target_spec(spec_from_dict(data), "aws"), {"pw": "hunter2"})}
    task = resources["service/api"].properties["task"]
    assert task["env"] == {"MODE": "a"} and task["secrets"] == {"DB_PASSWORD": "secret/pw"}
    assert "secret/pw" in resources and "hunter2" not in repr(task)
    assert "https://127.0.0.1:8443/healthz" in task["health"]["command"][1]
    assert resources["port/api.web"].properties["protocol"] == "TCP"  # TLS passes through to the container


@pytest.mark.parametrize(("service", "says"), [
    ({"env": {"DB_PASSWORD": "${secrets.pw.file}"}}, "only as the whole value of a variable named X_FILE"),
    ({"env": {"CONF": "--pw=${secrets.pw.file}"}}, "only as the whole value of a variable named X_FILE"),
    ({"env": {"PW_FILE": "${secrets.pw.file}", "PW": "x"}}, "which env also sets"),
    ({"command": ["run", "${secrets.pw.file}"]}, "no secret files to name in command"),
])
def test_secret_files_that_fargate_cannot_give_are_plan_errors(service: dict[str, Any], says: str) -> None:
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    data = {"name": "m", "secrets": {"pw": {"from_env": "PW"}}, "services": {"api": {"image": "x", **service}},
            "targets": {"aws": {"provider": "aws-ecs"}}}
    with pytest.raises(UserError, match=says):
        provider.desired(target_spec(spec_from_dict(data), "aws"), {"pw": "hunter2"})


def test_container_health_checks_use_the_portable_probe() -> None:
    from multicloud_aws.desired import _health

    from multicloud.probes import http_script
    from multicloud.spec.models import Service

    web = Service.model_validate({"image": "x", "ports": [{"name": "http", "port": 8080}],
                                  "healthcheck": {"http": "/healthz", "timeout": "3s"}})
    health = _health(web)
    assert health is not None and health["command"] == ["CMD-SHELL", http_script(8080, "/healthz", 3.0)]
    assert _health(Service.model_validate({"image": "x", "healthcheck": {"tcp": 1883}})) is None  # the NLB's job
    ran = _health(Service.model_validate({"image": "x", "healthcheck": {"command": ["true"]}}))
    assert ran is not None and ran["command"] == ["CMD", "true"]


def test_empty_or_oversized_secrets_are_refused_at_plan_before_any_call() -> None:
    """Secrets Manager stores 1 to 65,536 bytes: an empty secret (an unset-but-exported variable)
    or a larger one is a plan error at its `secrets.NAME`, not a failed CreateSecret mid-apply."""
    spec = spec_from_dict({"name": "mapping", "services": {"api": {"image": "x:1", "env": {"T": "${secrets.token}"}}},
                           "secrets": {"token": {"from_env": "TOKEN"}},
                           "targets": {"aws": {"provider": "aws-ecs", "region": "eu-west-1"}}})
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    for value, says in (("", "cannot store an empty secret"), ("x" * 65537, "65,537 bytes")):
        with pytest.raises(UserError) as caught:
            Deployment(spec, "aws", provider=provider, environ={"TOKEN": value}).plan()
        assert "secrets.token" in str(caught.value) and says in str(caught.value)
        assert value not in str(caught.value) or not value


def test_a_spec_complaint_from_desired_is_shown_at_its_line(tmp_path: Path) -> None:
    """aws-ecs says what it cannot run as `services.X.field: ...`; the core prints it at that line."""
    from multicloud.errors import CapabilityError
    from multicloud.spec import load

    path = tmp_path / "multicloud.yaml"
    path.write_text("name: fg\nservices:\n  api:\n    image: x:1\n    resources: {cpu: 0.25, memory: 8Gi}\n"
                    "targets:\n  aws: {provider: aws-ecs, region: eu-west-1}\n")
    provider = AwsEcsProvider({"region": "eu-west-1"}, client_factory=_no_calls)
    with pytest.raises(CapabilityError) as caught:
        Deployment(load(path), "aws", provider=provider, environ={}).plan()
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 5, "services.api.resources")
    assert "Fargate has no task with cpu 0.25 and 8Gi" in problem.message and "cpu 0.5: 1Gi-4Gi" in str(caught.value)
