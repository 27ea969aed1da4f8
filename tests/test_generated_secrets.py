"""Generated secrets (`generate: true`): made on the first apply, kept (0600) in the target's store,
the same on every later plan, never printed; forgotten by a destroy that leaves no volume."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

import pytest

from multicloud.errors import SpecError
from multicloud.spec import loads
from tests.helpers import run_cli, write_spec

SPEC = """\
name: gendemo
services:
  web:
    image: registry.example.com/web:1
    env: {TOKEN: "${secrets.token}", PASSWORD_FILE: "${secrets.db_password.file}"}
  idle:
    image: registry.example.com/idle:1
secrets:
  token: {generate: true}
  db_password: {generate: true}
  unused: {generate: true}
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    return write_spec(tmp_path, SPEC)


def test_generated_once_kept_private_stable_and_never_printed(
    spec_file: Path, capsys: pytest.CaptureFixture[str], _state_dir: Path
) -> None:
    f = str(spec_file)
    store = _state_dir / "secrets" / "memory" / "gendemo" / "mem"
    code, planned = run_cli(capsys, "plan", "-f", f, "-v")
    assert code == 0 and not store.exists(), "a plan keeps nothing"
    code, applied = run_cli(capsys, "apply", "-f", f, "--yes", "-o", "json")
    assert code == 0
    assert sorted(p.name for p in store.iterdir()) == ["db_password", "token"]  # only used ones
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    values = {}
    for path in store.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        values[path.name] = path.read_text()
        assert len(values[path.name]) >= 32
    assert values["token"] != values["db_password"]
    code, replanned = run_cli(capsys, "plan", "-f", f, "--detailed-exitcode")
    assert code == 0, replanned  # the kept values are used: nothing changes
    code, reapplied = run_cli(capsys, "apply", "-f", f, "--yes")
    assert code == 0 and {p.name: p.read_text() for p in store.iterdir()} == values
    state = (spec_file.parent / "state.json").read_text()
    for output in (planned, applied, replanned, reapplied, state):
        assert not any(value in output for value in values.values())


def test_destroy_keeps_them_while_a_volume_survives(spec_file: Path, capsys: pytest.CaptureFixture[str],
                                                    _state_dir: Path) -> None:
    idle = "    image: registry.example.com/idle:1\n"
    text = spec_file.read_text().replace(idle, idle + "    volumes: [data:/data]\n")
    text = text.replace("targets:", "volumes:\n  data:\ntargets:")
    spec_file.write_text(text)
    f = str(spec_file)
    store = _state_dir / "secrets" / "memory" / "gendemo" / "mem"
    assert run_cli(capsys, "apply", "-f", f, "--yes")[0] == 0
    kept = (store / "token").read_text()
    assert run_cli(capsys, "destroy", "-f", f, "--yes")[0] == 0
    assert (store / "token").read_text() == kept, "the volume's data may depend on it"
    assert run_cli(capsys, "apply", "-f", f, "--yes")[0] == 0
    assert (store / "token").read_text() == kept
    assert run_cli(capsys, "destroy", "-f", f, "--yes", "--volumes")[0] == 0
    assert not store.exists()


@pytest.mark.parametrize(
    ("secret", "needle"),
    [
        ("{generate: false}", "give generate: true"),
        ("{generate: true, from_env: X}", "exactly one of from_env, from_file or generate"),
        ("{}", "exactly one of from_env, from_file or generate"),
    ],
)
def test_generate_is_one_source_among_three(secret: str, needle: str) -> None:
    text = textwrap.dedent(f"""\
        name: g
        services:
          web: {{image: web, env: {{A: "${{secrets.s}}"}}}}
        secrets:
          s: {secret}
        """)
    with pytest.raises(SpecError) as caught:
        loads(text)
    (problem,) = caught.value.problems
    assert problem.line == 5 and needle in problem.message


def test_a_generated_value_holds_three_kinds_of_character(monkeypatch: pytest.MonkeyPatch) -> None:
    from multicloud import generated

    draws = iter(["abcdefgh-ijklmnopqrstuvwxyzABCDE", "abcdefgh-ijklmnopqrstuvwxyzABCD3"])
    monkeypatch.setattr(generated.secrets, "token_urlsafe", lambda _n: next(draws))
    assert generated.new_secret() == "abcdefgh-ijklmnopqrstuvwxyzABCD3"  # the first had no digit: drawn again


def test_a_tls_pair_kept_as_resources_is_stored_after_its_ca() -> None:
    from multicloud.generated import stored_after_their_ca
    from multicloud.resources import Resource
    from multicloud.spec.targets import target_spec

    spec = target_spec(loads(
        "name: s\nservices:\n  web:\n    image: x\n    env: {CERT: '${secrets.tls_cert}', T: '${secrets.token}'}\n"
        "secrets:\n  token: {generate: true}\n  tls: {generate: {type: tls, names: [web.example.com]}}\n"
        "targets:\n  t: {provider: p}\n"), "t")
    stored = [Resource("secret", name, {}) for name in ("token", "tls_cert", "tls_key", "tls_ca", "tls_ca_key")]
    after = {r.key: r.depends_on for r in stored_after_their_ca([*stored, Resource("service", "tls_cert", {})], spec)}
    ca = ("secret/tls_ca", "secret/tls_ca_key")
    assert after == {"secret/token": (), "secret/tls_cert": ca, "secret/tls_key": ca, "secret/tls_ca": (),
                     "secret/tls_ca_key": (), "service/tls_cert": ()}


def test_a_generated_password_never_holds_its_login(monkeypatch: pytest.MonkeyPatch) -> None:
    from multicloud import generated
    from multicloud.spec.targets import target_spec

    spec = target_spec(loads(
        "name: s\nservices:\n  web: {image: x}\nresources:\n  db: {type: postgres}\ntargets:\n  t: {provider: p}\n"
    ), "t")
    assert spec.password_logins() == {"resources_db_password": "db"}
    draws = iter(["abcDbfgh-ijklmnopqrstuvwxyzABCD3", "abcdefgh-ijklmnopqrstuvwxyzABCD3"])
    monkeypatch.setattr(generated.secrets, "token_urlsafe", lambda _n: next(draws))

    class Empty:
        def stored_secrets(self, app: str, names: object) -> dict[str, str]:
            return {}

    values, fresh = generated.generated_values(Empty(), "s", spec.generated_secrets(), spec.password_logins())
    assert values == fresh == {"resources_db_password": "abcdefgh-ijklmnopqrstuvwxyzABCD3"}  # the first held 'Db'
