"""Build-context hashes (multicloud.build): content, .dockerignore, Dockerfile, args and target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from multicloud.build import build_hash, context_hash, context_path
from multicloud.errors import UserError
from multicloud.spec.models import Build


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM debian:bookworm-slim\nCOPY . /app\n")
    (root / "src" / "main.py").write_text("print('hi')\n")
    return root


def test_hash_follows_content_and_dockerignore(context: Path) -> None:
    first = context_hash(context, "Dockerfile", {}, None)
    assert context_hash(context, "Dockerfile", {}, None) == first and len(first) == 16
    (context / ".dockerignore").write_text("*.log\ncache/**\n!cache/keep.txt\n")
    ignored = context_hash(context, "Dockerfile", {}, None)
    (context / "debug.log").write_text("x")
    (context / "cache").mkdir()
    (context / "cache" / "junk").write_text("x")
    assert context_hash(context, "Dockerfile", {}, None) == ignored
    (context / "cache" / "keep.txt").write_text("x")
    assert context_hash(context, "Dockerfile", {}, None) != ignored
    assert context_hash(context, "Dockerfile", {"A": "1"}, None) != context_hash(context, "Dockerfile", {}, None)
    assert context_hash(context, "Dockerfile", {}, "final") != context_hash(context, "Dockerfile", {}, None)
    with pytest.raises(UserError, match="does not exist"):
        context_hash(context, "Missing.Dockerfile", {}, None)


def test_hash_sees_bytes_exec_bits_links_and_the_dockerfile(context: Path) -> None:
    before = context_hash(context, "Dockerfile", {}, None)
    script = context / "src" / "main.py"
    script.write_text("print('hello')\n")
    edited = context_hash(context, "Dockerfile", {}, None)
    assert edited != before
    os.chmod(script, 0o755)
    executable = context_hash(context, "Dockerfile", {}, None)
    assert executable != edited
    (context / "link").symlink_to("src")
    linked = context_hash(context, "Dockerfile", {}, None)
    assert linked != executable
    (context / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    assert context_hash(context, "Dockerfile", {}, None) != linked


def test_build_hash_resolves_the_context_against_the_spec_directory(context: Path) -> None:
    build = Build(context="./ctx")
    base = str(context.parent)
    assert context_path(base, build) == context
    assert build_hash(base, "api", build) == context_hash(context, "Dockerfile", {}, None)
    with pytest.raises(UserError, match=r"services\.api\.build: build context .* is not a directory"):
        build_hash(base, "api", Build(context="./nowhere"))
