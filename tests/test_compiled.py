"""The compiled-form cache: a loaded spec is reused while every input reads the same, never otherwise;
it keeps no value, survives corrupt or foreign entries and concurrent writers."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from multicloud import inputs
from multicloud.build import context_hash
from multicloud.compiled import Cache, cache_dir
from multicloud.errors import SpecError
from multicloud.spec import loader
from multicloud.spec.loader import load
from multicloud.spec.variables import Variables

SPEC = """\
name: cached
vars:
  tier: TIER
services:
  web:
    image: "example/web:${vars.tier}"
    env:
      LEVEL: "${env.CACHED_LEVEL:-info}"
secrets:
  token: {from_env: CACHED_TOKEN}
targets:
  mem: {provider: memory}
"""


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each fresh read of spec files (a cache miss), by the files it read."""
    fresh: list[list[str]] = []
    real = loader._load_files

    def counting(files: list[str], variables: Variables | None) -> Any:
        fresh.append(files)
        return real(files, variables)

    monkeypatch.setattr(loader, "_load_files", counting)
    return fresh


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHED_LEVEL", raising=False)
    path = tmp_path / "multicloud.yaml"
    path.write_text(SPEC.replace("TIER", '"a"'))
    return path


def test_a_spec_is_reused_until_a_file_or_variable_it_read_changes(
    spec_file: Path, reads: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load(spec_file)
    again = load(spec_file)
    assert len(reads) == 1 and again.model_dump() == first.model_dump() and again.source.marks == first.source.marks
    assert again.services["web"].env["LEVEL"] == "info"

    monkeypatch.setenv("CACHED_LEVEL", "debug")  # a variable it looked up and found unset
    assert load(spec_file).services["web"].env["LEVEL"] == "debug" and len(reads) == 2
    monkeypatch.delenv("CACHED_LEVEL")
    (spec_file.parent / ".env").write_text("CACHED_LEVEL=warn\n")  # a file it found missing
    assert load(spec_file).services["web"].env["LEVEL"] == "warn" and len(reads) == 3
    spec_file.write_text(SPEC.replace("TIER", '"b"'))
    assert load(spec_file).services["web"].image == "example/web:b" and len(reads) == 4
    assert load(spec_file, Variables(values={"tier": "c"})).services["web"].image == "example/web:c"
    monkeypatch.setenv("MULTICLOUD_VAR_tier", "d")
    assert load(spec_file).services["web"].image == "example/web:d"
    assert load(spec_file).services["web"].image == "example/web:d" and len(reads) == 6


def test_errors_come_from_a_fresh_read_at_file_line_and_field(spec_file: Path, reads: list[list[str]]) -> None:
    load(spec_file)
    spec_file.write_text(SPEC.replace("TIER", '"a"').replace("    env:", "    replicas: many\n    env:"))
    with pytest.raises(SpecError) as caught:
        load(spec_file)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.field) == (str(spec_file), 7, "services.web.replicas")
    with pytest.raises(SpecError):  # never cached: the same error again
        load(spec_file)
    assert len(reads) == 3


def test_entries_are_private_and_inputs_are_kept_by_keyed_digest(spec_file: Path) -> None:
    load(spec_file)
    folder = cache_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    entries = list(folder.iterdir())
    assert len(entries) == 2 and all(p.stat().st_mode & 0o777 == 0o600 for p in entries)
    os.environ["CACHED_SECRET_SOURCE"] = "secret-value-91ab"
    try:
        with inputs.recording(os.urandom(32)) as recorder:
            assert inputs.environ()["CACHED_SECRET_SOURCE"] == "secret-value-91ab"
    finally:
        del os.environ["CACHED_SECRET_SOURCE"]
    assert "secret-value-91ab" not in repr(recorder.inputs) and len(recorder.inputs) == 1


def test_corrupt_or_foreign_entries_count_as_absent(spec_file: Path, reads: list[list[str]]) -> None:
    load(spec_file)
    (entry,) = [p for p in cache_dir().iterdir() if p.name != "key"]
    entry.write_bytes(b"\x80\x05 not a pickle")
    assert load(spec_file).name == "cached" and len(reads) == 2  # and it is written anew
    assert load(spec_file).name == "cached" and len(reads) == 2
    entry.chmod(0o644)  # someone else may have written it
    load(spec_file)
    assert len(reads) == 3
    cache_dir().chmod(0o755)
    assert Cache.open() is None
    load(spec_file)
    load(spec_file)
    assert len(reads) == 5
    cache_dir().chmod(0o700)


def test_the_cache_can_be_turned_off(spec_file: Path, reads: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTICLOUD_NO_CACHE", "1")
    load(spec_file)
    load(spec_file)
    assert len(reads) == 2 and not cache_dir().exists()


def test_concurrent_loads_share_one_entry(spec_file: Path) -> None:
    names: list[str] = []
    failures: list[BaseException] = []

    def one() -> None:
        try:
            names.append(load(spec_file).name)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and names == ["cached"] * 8
    assert len([p for p in cache_dir().iterdir() if not p.name.startswith(".") and p.name != "key"]) == 1


def test_a_build_context_is_an_input_by_its_files(tmp_path: Path) -> None:
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY main.py /\n")
    (context / "main.py").write_text("print(1)\n")
    key = os.urandom(32)
    with inputs.recording(key) as recorder:
        context_hash(context, "Dockerfile", {"A": "1"}, None)
    assert [kind for kind, _ in recorder.inputs] == ["build"] and inputs.unchanged(recorder.inputs, key)
    (context / "main.py").write_text("print(2)\n")
    assert not inputs.unchanged(recorder.inputs, key)
