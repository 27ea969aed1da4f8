"""The exported JSON Schema (`multicloud schema`) accepts every valid spec the project ships or
documents, rejects known-bad ones, and carries each installed provider's target settings.
Checked with a real validator (jsonschema, draft 2020-12)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from multicloud.cli.main import main
from multicloud.spec import loads

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(ROOT.glob("examples/*/multicloud*.yaml"))
DOCS = sorted([*ROOT.glob("docs/**/*.md"), ROOT / "README.md"])
MINIMAL = {"name": "doc", "services": {"web": {"image": "nginx"}}}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    from multicloud.settings import settings_models
    from multicloud.spec.schema import spec_schema

    schema = spec_schema(settings_models())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.protocols.Validator, data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def _doc_snippets() -> list[tuple[str, Any]]:
    """Every YAML block in the docs, completed into a whole spec where it is a fragment:
    a `targets:` section gets a name and a service; a lone target entry goes under targets."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 2
            data = yaml.safe_load(match.group(1))
            if isinstance(data, dict) and "services" not in data and all("provider" in v for v in data.values()
                                                                          if isinstance(v, dict)) and (
                    "targets" not in data):
                data = {"targets": data}
            found.append((f"{path.relative_to(ROOT)}:{line}", {**MINIMAL, **data}))
    return found


SNIPPETS = _doc_snippets()


def test_the_exported_schema_is_what_the_cli_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    target = schema["$defs"]["Target"]
    providers = {rule["if"]["properties"]["provider"]["const"] for rule in target["allOf"]}
    assert {"docker", "aws-ecs", "azure-aci", "gcp-cloudrun", "memory"} <= providers
    aws = next(r["then"] for r in target["allOf"] if r["if"]["properties"]["provider"]["const"] == "aws-ecs")
    assert "region" in aws["properties"] and aws["additionalProperties"] is False
    assert "Cloud Map" in aws["properties"]["namespace"]["description"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_every_example_spec_is_valid_under_the_schema(validator: Any, path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    loads(path.read_text(encoding="utf-8"), file=str(path), base_dir=str(path.parent))  # valid for the loader too
    assert _errors(validator, data) == []


@pytest.mark.parametrize(("where", "data"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_every_yaml_snippet_in_the_docs_is_valid_under_the_schema(validator: Any, where: str, data: Any) -> None:
    assert _errors(validator, data) == [], where


def test_there_are_examples_and_snippets_to_check() -> None:
    assert len(EXAMPLES) >= 2 and len(SNIPPETS) >= 6


SHORT_FORMS = """\
name: forms
services:
  api:
    build: ./api
    command: serve --port 8080
    env: {PORT: 8000, DEBUG: true, RATIO: 0.5, NAME: x}
    resources: {cpu: 1, memory: 1Gi}
    ports: [{name: http, port: 8080, protocol: http}]
    healthcheck: {http: /healthz, interval: 2s, timeout: 500ms, start_period: 1m30s}
    volumes: ["data:/var/lib/data:ro", {source: logs, target: /logs}]
  db:
    image: postgres:16
    resources: {memory: 536870912}
    healthcheck: {command: [pg_isready], interval: 5}
volumes:
  data:
  logs: {}
resources:
  store: {type: postgres, version: 15, storage: 100Gi, tier: medium, database: shop, user: shop, deletion: snapshot}
  cache-db: {type: postgres}
"""


def test_short_forms_the_loader_reads_are_valid(validator: Any) -> None:
    loads(SHORT_FORMS)
    assert _errors(validator, yaml.safe_load(SHORT_FORMS)) == []


BAD = {
    "unknown service field": {"services": {"web": {"image": "x", "imagee": "y"}}},
    "port out of range": {"services": {"web": {"image": "x", "ports": [{"name": "h", "port": 70000}]}}},
    "memory not a size": {"services": {"web": {"image": "x", "resources": {"memory": "lots"}}}},
    "memory too large": {"services": {"web": {"image": "x", "resources": {"memory": 2**50}}}},
    "duration not a duration": {"services": {"web": {"image": "x", "healthcheck": {"tcp": 80, "interval": "2 s"}}}},
    "build not a path or mapping": {"services": {"web": {"build": 3}}},
    "volume short form wrong": {"services": {"web": {"image": "x", "volumes": ["data"]}}},
    "env value a list": {"services": {"web": {"image": "x", "env": {"A": [1]}}}},
    "unknown aws setting": {"targets": {"aws": {"provider": "aws-ecs", "regoin": "eu-west-1"}}},
    "bad docker setting type": {"targets": {"local": {"provider": "docker", "port_offset": "3"}}},
    "azure missing required": {"targets": {"az": {"provider": "azure-aci", "location": "westeurope"}}},
    "gcp transport": {"targets": {"g": {"provider": "gcp-cloudrun", "project": "my-proj", "region": "europe-west1",
                                        "transport": "soap"}}},
    "aws retention": {"targets": {"aws": {"provider": "aws-ecs", "log_retention_days": 2}}},
    "resource type unknown": {"resources": {"db": {"type": "mysql"}}},
    "postgres version unknown": {"resources": {"db": {"type": "postgres", "version": 9}}},
    "postgres storage too small": {"resources": {"db": {"type": "postgres", "storage": 1000}}},
    "postgres tier unknown": {"resources": {"db": {"type": "postgres", "tier": "huge"}}},
    "postgres field unknown": {"resources": {"db": {"type": "postgres", "size": "20Gi"}}},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_known_bad_specs_are_rejected_by_schema_and_loader(validator: Any, case: str) -> None:
    from multicloud.errors import SpecError
    from multicloud.settings import target_problems

    data = {**MINIMAL, **BAD[case]}
    assert _errors(validator, data), f"schema accepted: {case}"
    try:
        spec = loads(yaml.safe_dump(data))
    except SpecError:
        return
    assert target_problems(spec), f"loader and settings accepted: {case}"


def test_unknown_providers_keep_their_settings_open(validator: Any) -> None:
    data = {**MINIMAL, "targets": {"x": {"provider": "someone-elses", "anything": {"goes": 1}}}}
    assert _errors(validator, data) == []
