"""Backing resources (`resources:`, type postgres) in the core: validated at their lines, bound per target
(`${resources.db.url}` a secret composed from the generated password, `.host/.port/.name` literal),
planned like services with update/replace reasons, kept by destroy unless --volumes or `deletion` says
otherwise; a target that cannot provide them is refused at plan. Driven through the CLI and the
stateful memory provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multicloud.api import Deployment
from multicloud.backing import connection_url
from multicloud.errors import CapabilityError, SpecError
from multicloud.spec import loads
from multicloud.spec.backing import Address, Postgres
from tests.helpers import run_cli, write_spec

SPEC = """\
name: shop
services:
  web:
    image: registry.example.com/web:1
    env:
      DATABASE_URL_FILE: ${resources.db.url.file}
      DB_HOST: ${resources.db.host}
      DB_PORT: ${resources.db.port}
      DB_NAME: ${resources.db.name}
  worker:
    image: registry.example.com/worker:1
    env: {DATABASE_URL: "${resources.db.url}"}
  static:
    image: registry.example.com/static:1
resources:
  db: {type: postgres, version: 15, storage: 20Gi, tier: small, database: shop}
targets:
  mem: {provider: memory, state_file: "%(state)s"}
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    return write_spec(tmp_path, SPEC)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_bound_planned_first_and_secret_everywhere(spec_file: Path, capsys: pytest.CaptureFixture[str],
                                                   _state_dir: Path) -> None:
    f = str(spec_file)
    deployment = Deployment.from_file(f, "mem", environ={})
    web = deployment.target_spec.services["web"].env
    assert web == {"DATABASE_URL_FILE": "${secrets.resources_db_url.file}", "DB_HOST": "db.shop.internal",
                   "DB_PORT": "5432", "DB_NAME": "shop"}
    planned = deployment.plan()
    steps = {c.key: c for c in planned.changes}
    assert steps["postgres/db"].resource.persistent
    assert "postgres/db" in steps["service/web"].requires and "postgres/db" in steps["service/worker"].requires
    assert "postgres/db" not in steps["service/static"].requires
    code, shown = run_cli(capsys, "plan", "-f", f, "-v")
    assert code == 0 and "+ postgres/db will be created" in shown
    code, applied = run_cli(capsys, "apply", "-f", f, "--yes", "-o", "json")
    assert code == 0
    password = (_state_dir / "secrets" / "memory" / "shop" / "mem" / "resources_db_password").read_text()
    url = f"postgresql://shop:{password}@db.shop.internal:5432/shop?sslmode=require"
    assert Deployment.from_file(f, "mem", environ={})._secret_values()["resources_db_url"] == url
    code, again = run_cli(capsys, "plan", "-f", f, "--detailed-exitcode", "-o", "json")
    assert code == 0, again  # the kept password gives the same URL: nothing changes
    state = (spec_file.parent / "state.json").read_text()
    for output in (shown, applied, again, state):
        assert password not in output and url not in output
    stored = json.loads(state)["shop"]
    assert "$sensitive" in stored["service/worker"]["properties"]["env"]["DATABASE_URL"]


def test_hints_update_in_place_and_a_new_version_is_a_refused_replace(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = str(spec_file)
    assert run_cli(capsys, "apply", "-f", f, "--yes")[0] == 0
    _edit(spec_file, "tier: small", "tier: medium")
    code, shown = run_cli(capsys, "plan", "-f", f)
    assert code == 0 and "~ postgres/db will be updated in place" in shown and 'tier: "small" -> "medium"' in shown
    _edit(spec_file, "version: 15", "version: 16")
    code, shown = run_cli(capsys, "plan", "-f", f)
    assert code != 0 and "postgres/db (version cannot change in place" in shown and "deleting their data" in shown
    _edit(spec_file, "version: 16", "version: 15")
    _edit(spec_file, "database: shop}", "database: shop, deletion: delete}")
    assert run_cli(capsys, "apply", "-f", f, "--yes")[0] == 0  # an update: the stored one is no longer kept
    _edit(spec_file, "version: 15", "version: 16")
    code, shown = run_cli(capsys, "plan", "-f", f)
    assert code == 0 and "-/+ postgres/db must be replaced (version cannot change in place" in shown


@pytest.mark.parametrize(("deletion", "volumes", "kept"), [
    ("keep", False, True), ("keep", True, False), ("snapshot", False, False), ("delete", False, False),
])
def test_destroy_keeps_the_database_unless_told(spec_file: Path, capsys: pytest.CaptureFixture[str],
                                                deletion: str, volumes: bool, kept: bool) -> None:
    _edit(spec_file, "database: shop}", f"database: shop, deletion: {deletion}}}")
    f = str(spec_file)
    assert run_cli(capsys, "apply", "-f", f, "--yes")[0] == 0
    code, shown = run_cli(capsys, "destroy", "-f", f, "--yes", *(["--volumes"] if volumes else []))
    assert code == 0
    assert ("= postgres/db is kept" in shown) is kept
    assert ("- postgres/db will be destroyed" in shown) is not kept


def test_a_target_that_cannot_provide_it_is_refused_at_its_line(tmp_path: Path) -> None:
    from multicloud.contract import Capabilities
    from multicloud.testing.memory import MemoryCloud, MemoryProvider

    spec = loads(SPEC % {"state": tmp_path / "s.json"}, file="shop.yaml")
    provider = MemoryProvider(cloud=MemoryCloud())
    provider.capabilities = Capabilities()
    with pytest.raises(CapabilityError) as caught:
        Deployment(spec, "mem", provider=provider, environ={}).plan()
    message = str(caught.value)
    assert "shop.yaml:16:8: resources.db.type" in message and "cannot provide a postgres database" in message


BAD = {
    "unknown type": ("resources:\n  db: {type: mysql}", "resources.db.type"),
    "old version": ("resources:\n  db: {type: postgres, version: 9}", "resources.db.version"),
    "tiny storage": ("resources:\n  db: {type: postgres, storage: 100Mi}", "resources.db.storage"),
    "reserved user": ("resources:\n  db: {type: postgres, user: postgres}", "resources.db.user"),
    "reserved default": ("resources:\n  pg-admin: {type: postgres, database: pg_x}", "resources.pg-admin.database"),
    "a service's name": ("resources:\n  web: {type: postgres}", "resources.web"),
    "unknown resource": ("resources: {}", "services.web.env.DB: ${resources.db...}: unknown resource"),
    "unknown attribute": ("resources:\n  db: {type: postgres}", "services.web.env.DB: ${resources.db.user}"),
    "file of host": ("resources:\n  db: {type: postgres}", "only url takes .file"),
    "reserved secret": ("resources:\n  db: {type: postgres}\nsecrets:\n  resources_db_url: {from_env: X}",
                        "secrets.resources_db_url: the name is kept for ${resources.db.url}"),
}
REFERENCE = {"unknown attribute": "${resources.db.user}", "file of host": "${resources.db.host.file}"}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_resources_are_errors_at_their_line(case: str) -> None:
    section, expected = BAD[case]
    env = REFERENCE.get(case, "${resources.db.host}")
    text = f"name: shop\nservices:\n  web:\n    image: x\n    env: {{DB: \"{env}\"}}\n{section}\n"
    with pytest.raises(SpecError) as caught:
        loads(text, file="bad.yaml")
    message = str(caught.value)
    assert "bad.yaml:" in message and expected in message, message


def test_url_forms() -> None:
    db = Postgres(type="postgres", user="app")
    assert connection_url("db", db, Address("db"), "p@ss/w:rd") == "postgresql://app:p%40ss%2Fw%3Ard@db:5432/db"
    socket = Address("/cloudsql/proj:eu:inst", options={"sslmode": "disable"})
    assert connection_url("my-db", Postgres(type="postgres"), socket, "pw") == (
        "postgresql://my_db:pw@/my_db?host=%2Fcloudsql%2Fproj%3Aeu%3Ainst&sslmode=disable")


def test_a_target_may_exclude_a_resource_and_must_then_override_its_users(tmp_path: Path) -> None:
    mem = '  mem: {provider: memory, state_file: "%(state)s"}\n'
    text = SPEC.replace(mem, mem + "  ext:\n    provider: memory\n    exclude: [db]\n") % {"state": tmp_path / "s"}
    with pytest.raises(SpecError) as caught:
        loads(text, file="shop.yaml")
    message = str(caught.value)
    assert "refers to resource 'db', which target 'ext' excludes; override this field" in message
    assert "targets.ext.overrides.web" in message and "services.worker.env.DATABASE_URL" in message
    overrides = ("    overrides:\n      web: {env: {DATABASE_URL_FILE: x, DB_HOST: x, DB_PORT: x, DB_NAME: x}}\n"
                 "      worker: {env: {DATABASE_URL: \"${secrets.db_url}\"}}\nsecrets:\n  db_url: {from_env: DB_URL}\n")
    spec = loads(text + overrides, file="shop.yaml")
    assert Deployment(spec, "ext", environ={"DB_URL": "postgresql://elsewhere"}).target_spec.resources == {}
    assert "postgres/db" not in {c.key for c in Deployment(spec, "ext", environ={"DB_URL": "u"}).plan().changes}


def test_secret_hands_out_the_value_that_apply_keeps(spec_file: Path) -> None:
    from multicloud.errors import UserError

    first = Deployment.from_file(str(spec_file), "mem", environ={})
    planned = first.plan()
    url = first.secret("resources_db_url")  # generated, not kept yet: the planned one, every time
    assert first.secret("resources_db_url") == url
    first.apply(planned)
    assert Deployment.from_file(str(spec_file), "mem", environ={}).secret("resources_db_url") == url
    with pytest.raises(UserError, match="no secret 'nope' is used on target 'mem'"):
        first.secret("nope")
