"""Compose files as input (issue 14 item 1): six projects written as real projects write them, each imported
with `multicloud import compose`, then validated and planned on the memory target; and `-f compose.yaml` read
directly. Every key that is not carried is reported at its file:line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multicloud.cli.main import main

PROJECTS = Path(__file__).parent / "compose_projects"
SECRET_FILE_VALUE = "pg-secret-value-41"
SECRETS = {"BROKER_PASSWORD": "broker-secret-77", "WP_DB_PASSWORD": "wp-secret-93"}
ENVIRONMENT = {**SECRETS, "WP_DB_USER": "wordpress"}

# project: (compose files, import options, services in the spec, notes expected (file:line: field: text))
CASES: dict[str, tuple[list[str], list[str], set[str], list[str]]] = {
    "iot": (["compose.yaml"], [], {"broker", "db", "ingestion", "registry", "auth"}, []),
    "webapp": (["docker-compose.yml"], [], {"web", "worker", "nginx", "db", "redis"}, [
        "docker-compose.yml:1:1: version: not carried: the spec has no top-level `version`",
        "docker-compose.yml:28:5: services.worker.restart: not carried: restart on-failure",
        "docker-compose.yml:52:5: services.adminer.profiles: not carried: in profiles tools, none active",
        "docker-compose.yml:58:5: volumes.db-data.driver: not carried",
    ]),
    "overrides": (["compose.yaml", "compose.override.yaml"], [], {"api", "cache"}, [
        "compose.override.yaml:9:9: services.api.volumes[0]: not carried: bind mount of ./api: cloud targets "
        "cannot mount a directory of this machine (refused",
    ]),
    "monitoring": (["compose.yml"], [], {"prometheus", "grafana", "node-exporter"}, [
        "compose.yml:55:1: networks: not carried",
        "compose.yml:10:9: services.prometheus.volumes[0]: not carried: bind mount of ./prometheus.yml",
        "compose.yml:13:9: services.prometheus.ports[0]: not carried: host address 127.0.0.1: kept internal",
        "compose.yml:13:9: services.prometheus.ports[0].mode: not carried",
        "compose.yml:17:5: services.prometheus.networks: not carried",
        "compose.yml:23:9: services.prometheus.deploy.resources.reservations: not carried",
        "compose.yml:37:9: services.grafana.volumes[1]: not carried: bind mount of ./dashboards",
        "compose.yml:50:5: services.node-exporter.pid: not carried: the spec has no `pid`",
        "compose.yml:51:15: services.node-exporter.volumes[0]: not carried: bind mount of /proc",
    ]),
    "wordpress": (["compose.yaml"], [], {"wordpress", "db", "cron"}, [
        "compose.yaml:6:9: services.wordpress.ports[0]: not carried: host port 8080",
        "compose.yaml:16:9: services.wordpress.secrets[0].mode: not carried",
        "compose.yaml:24:9: services.wordpress.depends_on.db.restart: not carried",
        "compose.yaml:39:7: services.db.healthcheck.start_interval: not carried",
    ]),
    "microservices": (["compose.yaml"], ["--profile", "tracing"], {"gateway", "orders", "payments", "jaeger"}, [
        "compose.yaml:3:3: services.gateway.logging: not carried: the spec has no `logging`",
        "compose.yaml:41:5: services.loadgen.profiles: not carried: in profiles bench, none active "
        "(--profile bench to include it)",
    ]),
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("MULTICLOUD_TARGET", "MULTICLOUD_FILE", "COMPOSE_PROFILES", "BATCH_SIZE", "API_TAG"):
        monkeypatch.delenv(name, raising=False)


def project(tmp_path: Path, name: str) -> Path:
    """A copy of a compose project with a memory target file beside it."""
    where = tmp_path / name
    shutil.copytree(PROJECTS / name, where)
    (where / "mem.yaml").write_text(f'targets:\n  mem: {{provider: memory, state_file: "{where / "state.json"}"}}\n')
    return where


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


Case = tuple[list[str], list[str], set[str], list[str]]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch) -> Case:
    """Each project, copied and made the working directory."""
    monkeypatch.chdir(project(tmp_path, request.param))
    return CASES[request.param]


def test_import_then_validate_and_plan_on_memory(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    files, options, services, notes = case
    code, _, err = run(capsys, "import", "compose", *files, *options)
    assert code == 0, err
    reported = [line.removeprefix("note: ") for line in err.splitlines() if line.startswith("note: ")]
    for expected in notes:
        assert any(line.startswith(expected) for line in reported), (expected, reported)
    assert all(line.split(":")[0] in files for line in reported), reported
    assert "wrote multicloud.yaml" in err and f"{len(reported)} key(s) not carried" in err
    code, out, err = run(capsys, "validate", "-f", "multicloud.yaml", "-f", "mem.yaml", "--target", "mem", "-o", "json")
    assert code == 0, err
    assert set(json.loads(out)["services"]) == services
    code, out, err = run(capsys, "plan", "-f", "multicloud.yaml", "-f", "mem.yaml", "--target", "mem")
    assert code == 0, err
    for service in services:
        assert f"service/{service} will be created" in out
    assert f"{len(services)} to add" in out or "to add" in out
    for secret in (SECRET_FILE_VALUE, *SECRETS.values()):
        assert secret not in out + err + Path("multicloud.yaml").read_text()


def test_compose_file_read_directly(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    files, options, services, notes = case
    given = [arg for file in files for arg in ("-f", file)]
    code, out, err = run(capsys, "plan", *given, "-f", "mem.yaml", "--target", "mem", *options)
    assert code == 0, err
    assert all(f"service/{service} will be created" in out for service in services)
    assert all(any(expected in line for line in err.splitlines()) for expected in notes)


def test_imported_spec_keeps_what_compose_says(tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Anchors, env_file, .env interpolation, healthcheck forms, depends_on conditions, limits, secrets."""
    from multicloud.spec import load

    monkeypatch.chdir(project(tmp_path, "iot"))
    assert run(capsys, "import", "compose")[0] == 0
    spec = load("multicloud.yaml")
    ingestion, auth, broker = spec.services["ingestion"], spec.services["auth"], spec.services["broker"]
    assert ingestion.env == {"LOG_LEVEL": "info", "DATABASE_HOST": "db", "MQTT_URL": "mqtt://broker:1883",
                             "BATCH_SIZE": "250"}  # from .env, as compose interpolates
    assert ingestion.depends_on == ["db", "broker"] and ingestion.replicas == 2
    assert ingestion.resources.cpu == 0.5 and ingestion.resources.memory == 512 * 1024**2
    assert ingestion.build is not None and ingestion.build.target == "ingestion"
    assert ingestion.build.args == {"PYTHON_VERSION": "3.12"}
    assert spec.services["db"].image == "postgres:16-alpine"
    assert auth.healthcheck is not None and auth.healthcheck.command == [
        "sh", "-c", "python -m iot_common.health http://localhost:8081/healthz"]
    assert auth.healthcheck.start_period == 20 and auth.healthcheck.retries == 5
    assert [(p.port, p.expose) for p in auth.ports] == [(8081, "internal")]
    assert broker.healthcheck is not None and "$SYS/#" in broker.healthcheck.command  # compose's $$ is a $
    assert spec.secrets["db_password"].from_file == "./secrets/db_password.txt"
    assert spec.secrets["broker_password"].from_env == "BROKER_PASSWORD"
    assert list(spec.volumes) == ["pgdata"]


def test_override_file_merges_as_compose_does(tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from multicloud.spec import load

    monkeypatch.chdir(project(tmp_path, "overrides"))
    assert run(capsys, "import", "compose")[0] == 0  # finds compose.yaml and compose.override.yaml
    api = load("multicloud.yaml").services["api"]
    assert api.env == {"LOG_FORMAT": "json", "LOG_LEVEL": "debug"}
    assert [(p.name, p.port, p.protocol) for p in api.ports] == [("http-8000", 8000, "http"), ("tcp-5678", 5678, "tcp")]
    assert api.command is not None and api.command[:3] == ["python", "-m", "debugpy"]
    assert api.image == "ghcr.io/example/api:1.4.2"


def write(directory: Path, text: str) -> Path:
    path = directory / "compose.yaml"
    path.write_text(text)
    return path


def test_port_range_is_refused_at_its_line(tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "services:\n  ftp:\n    image: ftp\n    ports:\n"
                    "      - '21:21'\n      - '30000-30009:30000-30009'\n")
    code, _, err = run(capsys, "import", "compose")
    assert code == 2
    assert "compose.yaml:6:9: services.ftp.ports[1]: port range '30000-30009:30000-30009'" in err
    assert not (tmp_path / "multicloud.yaml").exists()


def test_required_variable_and_missing_env_file_are_errors(tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "services:\n  api:\n    image: api\n    env_file: [api.env]\n"
                    "    ports: ['${API_PORT:?give API_PORT}:80']\n")
    code, _, err = run(capsys, "validate", "-f", "compose.yaml")
    assert code == 2
    assert "compose.yaml:4:16: services.api.env_file[0]: env_file api.env not found" in err
    assert "compose.yaml:5:13: services.api.ports[0]: API_PORT is required: give API_PORT" in err


def test_an_existing_spec_is_kept_and_a_spec_is_not_taken_for_compose(
    tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "services:\n  api:\n    image: api:1\n    environment: [A=1]\n")
    (tmp_path / "multicloud.yaml").write_text("name: app\nservices:\n  api: {image: api:1}\n")
    code, _, err = run(capsys, "import", "compose")
    assert code == 2 and "multicloud.yaml exists; give --force" in err
    assert run(capsys, "import", "compose", "--force")[0] == 0
    assert "A: '1'" in (tmp_path / "multicloud.yaml").read_text()
    code, out, _ = run(capsys, "validate", "-o", "json")  # the imported spec, read as a spec
    assert code == 0 and json.loads(out)["targets"] == ["local"]


def test_keys_of_the_wrong_shape_are_errors_at_their_lines(tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "services:\n  a:\n    image: x\n    ports: '80:80'\n    deploy: {replicas: many}\n"
                    "    healthcheck: {test: {x: 1}}\n  b:\n    image: y\n    environment: A=1\n    profiles: dev\n"
                    "  c: ~\nvolumes:\n  v: external\n")
    code, _, err = run(capsys, "validate", "-f", "compose.yaml")
    assert code == 2 and "Traceback" not in err and "internal error" not in err
    for expected in (
        "compose.yaml:4:5: services.a.ports: cannot read `ports` as compose writes it",
        "compose.yaml:5:5: services.a.deploy: cannot read `deploy`",
        "compose.yaml:6:19: services.a.healthcheck.test: test is a string, [CMD, ...]",
        "compose.yaml:10:5: services.b.profiles: profiles is a list of names",
        "compose.yaml:11:3: services.c: a service is a mapping",
        "compose.yaml:13:3: volumes.v: a volume is empty or a mapping",
    ):
        assert expected in err, (expected, err)


def test_apply_reads_the_compose_file_directly(tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project(tmp_path, "iot"))
    code, out, err = run(capsys, "apply", "-f", "compose.yaml", "-f", "mem.yaml", "--target", "mem", "--yes")
    assert code == 0, err
    assert "Apply complete" in out and "services.auth.env_file: not carried" in err
    code, out, _ = run(capsys, "status", "-f", "compose.yaml", "-f", "mem.yaml", "--target", "mem", "-o", "json")
    assert code == 0 and "ingestion" in out
    code, out, _ = run(capsys, "plan", "-f", "compose.yaml", "-f", "mem.yaml", "--target", "mem", "--detailed-exitcode")
    assert code == 0, out  # nothing to change: the compose file reads the same every time
