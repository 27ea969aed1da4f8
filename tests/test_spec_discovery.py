"""Spec discovery like compose (multicloud.yaml or .yml here or in a parent) and `-f` override files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from multicloud.cli.main import main
from multicloud.errors import SpecError
from multicloud.spec import load

BASE = """\
name: overdemo
services:
  web:
    image: nginx:1.25
    replicas: 1
    env: {LEVEL: info, KEEP: "yes"}
    ports:
      - {name: http, port: 80, expose: public}
      - {name: admin, port: 9000}
    depends_on: [db]
  db:
    image: postgres:16
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text) % {"state": path.parent / "state.json"})
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULTICLOUD_FILE", raising=False)
    monkeypatch.delenv("MULTICLOUD_TARGET", raising=False)


@pytest.mark.parametrize("name", ["multicloud.yaml", "multicloud.yml"])
def test_found_in_a_parent_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / name, BASE)
    below = tmp_path / "src" / "deep"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / name}: valid (overdemo: 2 services" in out


def test_yaml_is_preferred_and_the_nearest_directory_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "multicloud.yml", BASE.replace("overdemo", "outer"))
    inner = tmp_path / "inner"
    inner.mkdir()
    write(inner / "multicloud.yml", BASE.replace("overdemo", "yml"))
    write(inner / "multicloud.yaml", BASE.replace("overdemo", "yaml"))
    monkeypatch.chdir(inner)
    assert main(["validate"]) == 0
    assert "multicloud.yaml: valid (yaml:" in capsys.readouterr().out


def test_none_found_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert "no multicloud.yaml or multicloud.yml in" in err and "-f FILE" in err and "Traceback" not in err


def test_override_files_merge_as_compose_does(tmp_path: Path) -> None:
    base = write(tmp_path / "multicloud.yaml", BASE)
    override = write(tmp_path / "prod.yaml", """\
        services:
          web:
            replicas: 3
            env: {LEVEL: warn}
            ports:
              - {name: http, port: 8080, expose: public}
              - {name: metrics, port: 9100}
            depends_on: [cache]
          cache:
            image: redis:7
        """)
    spec = load([base, override])
    web = spec.services["web"]
    assert web.replicas == 3 and web.image == "nginx:1.25"
    assert web.env == {"LEVEL": "warn", "KEEP": "yes"}
    assert [(p.name, p.port) for p in web.ports] == [("http", 8080), ("admin", 9000), ("metrics", 9100)]
    assert web.depends_on == ["db", "cache"]
    assert set(spec.services) == {"web", "db", "cache"}
    assert spec.source.base_dir == str(tmp_path)


def test_errors_name_the_file_and_line_the_field_came_from(tmp_path: Path) -> None:
    base = write(tmp_path / "multicloud.yaml", BASE)
    override = write(tmp_path / "override.yaml", """\
        services:
          web:
            ports:
              - {name: metrics, port: 99999}
        """)
    with pytest.raises(SpecError) as caught:
        load([base, override])
    assert f"{override}:4:25: services.web.ports[2].port:" in str(caught.value)
    unknown = write(tmp_path / "unknown.yaml", "services:\n  web:\n    depends_on: [nowhere]\n")
    with pytest.raises(SpecError) as caught:
        load([base, unknown])
    assert f"{unknown}:3:" in str(caught.value) and "nowhere" in str(caught.value)
    # a field of the first file is still placed there
    bad_base = write(tmp_path / "bad.yaml", BASE.replace("replicas: 1", "replicas: -1"))
    with pytest.raises(SpecError) as caught:
        load([bad_base, override])
    assert f"{bad_base}:5:" in str(caught.value)


def test_repeated_f_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "multicloud.yaml", BASE)
    override = write(tmp_path / "more.yml", "services:\n  extra:\n    image: busybox:1\n")
    assert main(["validate", "-f", str(base), "-f", str(override)]) == 0
    assert "3 services" in capsys.readouterr().out
    assert main(["plan", "-f", str(base), "-f", str(override)]) == 0
    assert "service/extra will be created" in capsys.readouterr().out
    broken = write(tmp_path / "broken.yml", "services:\n  web: [\n")
    assert main(["validate", "-f", str(base), "-f", str(broken)]) == 2
    assert f"{broken}:" in capsys.readouterr().err


def test_multicloud_file_may_list_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write(tmp_path / "a.yaml", BASE)
    override = write(tmp_path / "b.yaml", "services:\n  web:\n    replicas: 2\n")
    monkeypatch.setenv("MULTICLOUD_FILE", f"{base}:{override}")
    assert main(["validate", "-o", "json"]) == 0
    assert '"valid": true' in capsys.readouterr().out
