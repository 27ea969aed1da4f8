"""`multicloud completion bash|zsh|fish` in the real shells: commands, options, and the spec's service
and target names (from the spec found in the directory, or from -f on the line) through `_complete`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from multicloud.cli.main import main

BIN = os.path.dirname(sys.executable)
SPEC = """\
name: comp
services:
  alpha-api: {image: "registry.example.com/a:1"}
  alpha-worker: {image: "registry.example.com/w:1"}
  beta: {image: "registry.example.com/b:1"}
targets:
  dev: {provider: memory}
  prod-eu: {provider: memory}
"""
OTHER = """\
name: other
services:
  zeta: {image: "registry.example.com/z:1"}
targets:
  staging: {provider: memory}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project directory with a spec, a subdirectory, and another spec elsewhere."""
    root = tmp_path_factory.mktemp("completion")
    (root / "multicloud.yaml").write_text(SPEC)
    (root / "sub").mkdir()
    (root / "other.yaml").write_text(OTHER)
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICLOUD_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _script(shell: str, tmp_path: Path) -> Path:
    out = subprocess.run([f"{BIN}/multicloud", "completion", shell], capture_output=True, text=True, check=True)
    path = tmp_path / f"multicloud.{shell}"
    path.write_text(out.stdout)
    return path


def test_helper_names_from_the_found_spec_and_from_f(project, capsys, monkeypatch):
    monkeypatch.delenv("MULTICLOUD_FILE", raising=False)
    monkeypatch.chdir(project / "sub")  # found in the parent, as commands find it
    assert main(["_complete", "services"]) == 0
    assert capsys.readouterr().out.split() == ["alpha-api", "alpha-worker", "beta"]
    assert main(["_complete", "targets", "--file=../other.yaml", "-f", "../multicloud.yaml"]) == 0
    assert capsys.readouterr().out.split() == ["staging", "dev", "prod-eu"]
    monkeypatch.chdir("/")
    for broken in (["-f", "/nonexistent.yaml"], ["-f", "/dev/zero"], ["-f", "/"], []):
        assert main(["_complete", "services", *broken]) == 0
        assert capsys.readouterr().out == ""
    assert main(["_complete", "volumes"]) == 2
    assert main(["_complete", "emulators"]) == 0
    assert {"aws", "azure", "gcp"} <= set(capsys.readouterr().out.split())


def test_helper_imports_neither_pydantic_nor_sdks(project):
    probe = "import sys; from multicloud.cli.main import main; main(sys.argv[1:]); print(sorted(sys.modules))"
    spec = str(project / "multicloud.yaml")
    done = subprocess.run([sys.executable, "-c", probe, "_complete", "services", "-f", spec],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[:3] == ["alpha-api", "alpha-worker", "beta"]
    loaded = done.stdout.splitlines()[-1]
    for heavy in ("'pydantic'", "'boto3'", "'azure", "'google", "'docker'", "'rich'", "'shtab'"):
        assert heavy not in loaded


def test_unknown_shell_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["completion", "powershell"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


BASH_COMPLETE = """\
source "$1"; shift
complete -p multicloud
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_shtab_multicloud
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _bash(script: Path, cwd: Path, *words: str) -> list[str]:
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_COMPLETE, "bash", str(script), *words],
                          cwd=cwd, env=_env(), capture_output=True, text=True, check=True)
    registered, *replies = done.stdout.splitlines()
    assert registered == "complete -o bashdefault -F _shtab_multicloud multicloud"
    return replies


def test_bash(project, tmp_path):
    script = _script("bash", tmp_path)
    sub = project / "sub"
    assert _bash(script, sub, "multicloud", "comp") == ["completion"]
    assert set(_bash(script, sub, "multicloud", "")) >= {"plan", "apply", "logs", "completion"}
    assert _bash(script, sub, "multicloud", "logs", "alpha") == ["alpha-api", "alpha-worker"]
    assert _bash(script, sub, "multicloud", "plan", "beta", "") == ["alpha-api", "alpha-worker", "beta"]
    assert _bash(script, sub, "multicloud", "apply", "--target", "") == ["dev", "prod-eu"]
    assert _bash(script, sub, "multicloud", "status", "-t", "p") == ["prod-eu"]
    assert _bash(script, sub, "multicloud", "logs", "-f", "../other.yaml", "") == ["zeta"]
    assert _bash(script, sub, "multicloud", "plan", "--file", "=", "../other.yaml", "-t", "") == ["staging"]
    assert _bash(script, sub, "multicloud", "completion", "") == ["bash", "zsh", "fish"]
    assert _bash(script, sub, "multicloud", "emulate", "az") == ["azure"]
    assert _bash(script, sub, "multicloud", "exec", "--replica", "2", "be") == ["beta"]
    assert _bash(script, sub, "multicloud", "plan", "--det") == ["--detailed-exitcode"]
    assert "../other.yaml" in _bash(script, sub, "multicloud", "plan", "-f", "../")


def test_fish(project, tmp_path):
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (scripts/test.sh installs it: MULTICLOUD_APT_EXTRA)")
    script = _script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        done = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                              cwd=project / "sub", env=_env(), capture_output=True, text=True, check=True)
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert "completion" in complete("multicloud comp")
    assert complete("multicloud logs alpha") == ["alpha-api", "alpha-worker"]
    assert complete("multicloud apply --target ") == ["dev", "prod-eu"]
    assert complete("multicloud logs -f ../other.yaml ") == ["zeta"]
    assert complete("multicloud completion ") == ["bash", "zsh", "fish"]


def test_zsh_in_a_terminal(project, tmp_path):
    """zsh completes only in an interactive line editor: run it in tmux, press Tab, read the screen."""
    if shutil.which("zsh") is None or shutil.which("tmux") is None:
        pytest.skip("zsh and tmux are not installed (scripts/test.sh installs them: MULTICLOUD_APT_EXTRA)")
    functions = tmp_path / "functions"
    functions.mkdir()
    _script("zsh", tmp_path).rename(functions / "_multicloud")  # installed as its --help says: on $fpath
    session = f"mc-zsh-{uuid.uuid4().hex[:8]}"
    env = {**_env(), "ZDOTDIR": str(tmp_path)}
    (tmp_path / ".zshrc").write_text(f"fpath=({functions} $fpath)\nautoload -U compinit && compinit -u\nPS1='> '\n")
    tmux = ["tmux", "-L", session]
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "150", "-y", "20", "-c", str(project / "sub"),
                    "zsh"], env=env, check=True)
    try:
        _wait_for(tmux, session, lambda screen: screen.rstrip().endswith(">"))
        subprocess.run([*tmux, "send-keys", "-t", session, "multicloud logs alpha-w", "Tab"], check=True)
        _wait_for(tmux, session, lambda screen: "multicloud logs alpha-worker" in screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "C-u", "multicloud plan --target ", "Tab"], check=True)
        screen = _wait_for(tmux, session, lambda screen: "prod-eu" in screen)
        assert "dev" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def _wait_for(tmux: list[str], session: str, ready, timeout: float = 15.0) -> str:
    """The pane's text once `ready(text)` holds; fails showing the last screen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                check=True).stdout
        if ready(screen):
            return screen
        assert time.monotonic() < deadline, f"the terminal never showed what was expected:\n{screen}"
        time.sleep(0.1)
