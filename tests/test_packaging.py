"""The distributions build with `uv build` and install like a library: every wheel ships its type
information (PEP 561 `py.typed`), and `pip install "multicloud[aws,azure,gcp,docker]"` into a fresh
venv from the built wheels gives a working CLI that lists every provider and emulator.

The install is offline: the third-party dependencies come from uv's cache at the versions uv.lock
pins (bootstrap downloaded them), the project's own distributions only from the wheels just built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT, *sorted(p.parent for p in (ROOT / "providers").glob("*/pyproject.toml"))]


def _packages(project: Path) -> list[str]:
    """The import packages a project's wheel is built from (hatch's wheel target)."""
    config = tomllib.loads((project / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    return list(wheel["packages"])


def _uv() -> str | None:
    """The uv binary bootstrap uses, or one on PATH."""
    local = ROOT / ".tools" / "bin" / "uv"
    return str(local) if local.exists() else shutil.which("uv")


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_every_package_has_py_typed(project: Path) -> None:
    packages = _packages(project)
    assert packages
    for package in packages:
        assert (project / package / "py.typed").is_file(), f"{project / package} lacks py.typed"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory `uv build --all-packages --wheel` wrote every distribution's wheel to."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (scripts/bootstrap.sh installs it into .tools)")
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([uv, "build", "--all-packages", "--wheel", "-q", "-o", str(out)], cwd=ROOT, check=True, timeout=600)
    yield out


def _project_names() -> list[str]:
    return [tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"] for p in PROJECTS]


@pytest.mark.slow
def test_built_wheels_contain_py_typed(wheels: Path) -> None:
    built = {w.name.split("-")[0]: w for w in wheels.glob("*.whl")}
    assert len(built) == len(PROJECTS), sorted(built)
    for project in PROJECTS:
        name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
        names = zipfile.ZipFile(built[name]).namelist()
        for package in _packages(project):
            assert f"{package}/py.typed" in names, f"{built[name].name} lacks {package}/py.typed"


@pytest.fixture(scope="module")
def installed(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding `multicloud[aws,azure,gcp,docker]` installed from the built wheels; its bin/."""
    uv = _uv()
    assert uv is not None
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    environ = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "VIRTUAL_ENV": ""}
    subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True, timeout=120)
    # the dependencies a user's pip would fetch, as uv.lock pins them (no dev tools, none of our own)
    subprocess.run(
        [uv, "sync", "--frozen", "--offline", "--no-default-groups", "--all-extras", "--no-install-workspace", "-q"],
        cwd=ROOT, env=environ, check=True, timeout=300,
    )
    install = subprocess.run(
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--offline", "--find-links", str(wheels),
         "multicloud[aws,azure,gcp,docker]"],
        cwd=venv.parent, env=environ, capture_output=True, text=True, timeout=300, check=False,
    )
    assert install.returncode == 0, install.stderr
    for name in _project_names():  # ours came from the wheels, nothing else was needed
        assert f" + {name}==" in install.stderr, install.stderr
    return venv / "bin"


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the fresh venv outside the repository (so nothing is imported from the tree)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=bin_dir.parent.parent, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_the_extras_install_every_provider_from_the_wheels(installed: Path) -> None:
    listed = _run(installed, "multicloud", "providers", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    providers = {p["name"]: p["distribution"] for p in found["providers"]}
    assert providers == {"aws-ecs": "multicloud-aws", "azure-aci": "multicloud-azure", "docker": "multicloud-docker",
                         "gcp-cloudrun": "multicloud-gcp", "memory": "multicloud"}
    assert {e["name"] for e in found["emulators"]} == {"aws", "azure", "gcp"}
    where = _run(installed, "python", "-c", "import multicloud, multicloud_aws; print(multicloud.__file__, "
                 "multicloud_aws.__file__)")
    assert where.returncode == 0 and str(ROOT) not in where.stdout and "site-packages" in where.stdout, where
    uv = _uv()
    assert uv is not None
    consistent = subprocess.run([uv, "pip", "check", "--python", str(installed / "python")], capture_output=True,
                                text=True, timeout=120, check=False)
    assert consistent.returncode == 0, consistent.stdout + consistent.stderr


@pytest.mark.slow
def test_the_installed_cli_draws_and_prices_the_example_on_every_target(installed: Path) -> None:
    example = str(ROOT / "examples" / "iot-backend" / "multicloud.yaml")
    drawn = _run(installed, "python", "-c", (  # one process: the fresh venv compiles its bytecode once
        "from multicloud.cli.main import main\n"
        f"for target in ('local', 'aws', 'azure', 'gcp'):\n"
        f"    assert main(['graph', '-f', {example!r}, '-t', target, '--desired', '-o', 'dot']) == 0\n"
    ))
    assert drawn.returncode == 0, drawn.stderr
    for target in ("local", "aws", "azure", "gcp"):
        assert f'digraph "iot-backend on {target}"' in drawn.stdout
    priced = _run(installed, "multicloud", "estimate", "-f", example, "-o", "json")  # the wheels carry prices.yaml
    assert priced.returncode == 0, priced.stderr
    totals = {t["target"]: t["total"] for t in json.loads(priced.stdout)["targets"]}
    assert totals == {"local": 0, "aws": 133.06, "azure": 73.74, "gcp": 269.54}  # as tests/test_estimate.py
    helped = _run(installed, "multicloud", "--help")
    assert helped.returncode == 0 and "graph" in helped.stdout
