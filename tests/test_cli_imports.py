"""The CLI's start-up stays light: no cloud SDK, no docker SDK, no pydantic for --help."""

import json
import os
import subprocess
import sys

from multicloud.cli.main import HELP_FILE, render_help

HEAVY = ("boto3", "botocore", "azure", "google", "docker", "pydantic", "yaml", "rich", "cryptography")

PROBE = """
import json, sys
from multicloud.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_and_version_import_no_sdk():
    for args in (["--help"], ["--version"], ["plan", "--help"]):
        loaded = _modules_after(*args)
        heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
        assert heavy == [], f"{args} imported {heavy}"


def test_cached_help_matches_the_parser(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with open(HELP_FILE, encoding="utf-8") as handle:
        cached = handle.read()
    assert cached == render_help(), "run: python -m multicloud.cli.main --write-help"


def test_console_script_help_runs():
    exe = os.path.join(os.path.dirname(sys.executable), "multicloud")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "apply" in done.stdout and "destroy" in done.stdout
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("multicloud ")
