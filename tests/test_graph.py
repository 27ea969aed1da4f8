"""`multicloud graph`: the dependency graph of the planner's real plan (memory target, state in a
file as separate CLI runs share it), and of what the IoT example becomes on every target (--desired)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from multicloud.cli.main import main
from tests.helpers import sdks_loaded_by

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iot-backend" / "multicloud.yaml"
SPEC = """\
name: graphdemo
services:
  web:
    image: registry.example.com/web:1
    ports: [{name: http, port: 8080, protocol: http, expose: public}]
    env: {LEVEL: "%(level)s"}
  worker:
    image: registry.example.com/worker:1
    depends_on: [web]
%(extra)s
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""
EXTRA = """\
  cron:
    image: registry.example.com/cron:1
    depends_on: [worker]
"""


def write(path: Path, *, level: str = "info", extra: str = "") -> str:
    path.write_text(SPEC % {"level": level, "extra": extra, "state": path.parent / "state.json"})
    return str(path)


def graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["graph", *args]) == 0
    return capsys.readouterr().out


def mermaid_nodes(text: str) -> dict[str, tuple[str, str]]:
    """Node id -> (label, class) of a Mermaid flowchart."""
    return {m[0]: (m[1], m[2]) for m in re.findall(r'^\s+(n\d+)\["([^"]*)"\]:::(\w+)$', text, re.M)}


def mermaid_edges(text: str) -> set[tuple[str, str]]:
    """The edges of a Mermaid flowchart, as (label, label)."""
    labels = {node: label.split(" ", 1)[1] for node, (label, _) in mermaid_nodes(text).items()}
    return {(labels[a], labels[b]) for a, b in re.findall(r"^\s+(n\d+) --> (n\d+)$", text, re.M)}


def test_graph_follows_the_real_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "multicloud.yaml", extra=EXTRA)
    out = graph(capsys, "-f", f)
    assert out.startswith("flowchart LR\n")
    nodes = mermaid_nodes(out)
    assert sorted(nodes.values()) == [
        ("+ network/graphdemo", "create"), ("+ service/cron", "create"),
        ("+ service/web", "create"), ("+ service/worker", "create"),
    ]
    assert mermaid_edges(out) == {
        ("service/web", "network/graphdemo"), ("service/worker", "network/graphdemo"),
        ("service/cron", "network/graphdemo"), ("service/worker", "service/web"), ("service/cron", "service/worker"),
    }
    assert main(["apply", "-f", f, "--yes"]) == 0
    capsys.readouterr()
    write(tmp_path / "multicloud.yaml", level="debug")  # web changes, cron leaves the spec
    nodes = mermaid_nodes(graph(capsys, "-f", f))
    assert sorted(nodes.values()) == [
        ("- service/cron", "delete"), ("= network/graphdemo", "same"),
        ("= service/worker", "same"), ("~ service/web", "update"),
    ]


def test_dot_output_and_targeted_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "multicloud.yaml", extra=EXTRA)
    out = graph(capsys, "-f", f, "-o", "dot", "worker")
    assert out.startswith('digraph "graphdemo on mem" {\n') and out.rstrip().endswith("}")
    assert out.count("{") == out.count("}")
    declared = set(re.findall(r'^\s+"([^"]+)" \[label=', out, re.M))
    assert declared == {"network/graphdemo", "service/web", "service/worker"}  # cron is not needed by worker
    edges = set(re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', out, re.M))
    assert ("service/worker", "service/web") in edges and all(a in declared and b in declared for a, b in edges)
    assert 'subgraph "cluster_1" {\n    label="web";' in out


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("local", {"postgres/db", "volume/postgres.db", "image/broker", "network/iot-backend"}),
        ("aws", {"load-balancer/iot-backend", "port/broker.mqtts", "discovery/auth", "secret/tls_key", "postgres/db",
                 "alias/db"}),
        ("azure", {"group/iot-backend", "container/broker"}),
        ("gcp", {"service/broker", "service/registry"}),
    ],
)
def test_desired_graph_of_the_example_on_every_target(
    target: str, expected: set[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IOT_DB_PASSWORD", "IOT_DATABASE_URL", "IOT_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)  # --desired needs no secret value
    labels = {label.split(" ", 1)[1] for label, state in mermaid_nodes(graph(capsys, "-f", str(EXAMPLE),
                                                                            "-t", target, "--desired")).values()}
    assert expected <= labels
    # db is a resource on every target: a container locally, RDS, a flexible server, Cloud SQL
    assert "postgres/db" in labels


def test_graph_imports_no_cloud_sdk(tmp_path: Path) -> None:
    targets = ("local", "aws", "azure", "gcp")
    desired = [["graph", "-f", str(EXAMPLE), "-t", target, "--desired", "-o", "dot"] for target in targets]
    assert sdks_loaded_by(["graph", "-f", write(tmp_path / "multicloud.yaml")], *desired) == []


def test_graph_refuses_an_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["graph", "-f", write(tmp_path / "multicloud.yaml"), "-o", "png"])
    assert exited.value.code == 2 and "invalid choice: 'png'" in capsys.readouterr().err
