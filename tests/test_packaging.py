"""Every distribution ships its type information (PEP 561 `py.typed`) inside its wheel."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
import zipfile
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


@pytest.mark.slow
def test_built_wheels_contain_py_typed(tmp_path: Path) -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (scripts/bootstrap.sh installs it into .tools)")
    subprocess.run(
        [uv, "build", "--all-packages", "--wheel", "-q", "-o", str(tmp_path)], cwd=ROOT, check=True, timeout=600
    )
    wheels = {w.name.split("-")[0]: w for w in tmp_path.glob("*.whl")}
    assert len(wheels) == len(PROJECTS), sorted(wheels)
    for project in PROJECTS:
        name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
        names = zipfile.ZipFile(wheels[name]).namelist()
        for package in _packages(project):
            assert f"{package}/py.typed" in names, f"{wheels[name].name} lacks {package}/py.typed"
