"""The docker provider against a real engine: apply, no-op, targeted replace, scale, repair,
destroy, and secrets kept out of every output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import (
    APP_IMAGE,
    SECRET,
    CallLog,
    containers_by_service,
    deployment,
    free_port,
    owned,
    three_service_spec,
)

from multicloud.contract import HealthState
from multicloud.planner import Action
from multicloud.render import plan_json, plan_text
from multicloud.resources import Sensitive
from multicloud.testing.http import get_json

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def ids(api: Any, app: str) -> dict[str, set[str]]:
    """Container ids per service."""
    return {s: {c["Id"] for c in group} for s, group in containers_by_service(api, app).items()}


def test_apply_three_services_then_reapply_makes_no_mutating_call(engine: Any, app: str, calls: CallLog) -> None:
    port = free_port()
    deploy = deployment(three_service_spec(app, port), calls)
    result = deploy.apply()
    assert result.ok

    groups = containers_by_service(engine, app)
    assert {s: len(g) for s, g in groups.items()} == {"web": 1, "api": 2, "store": 1}
    assert all(c["State"] == "running" and "(healthy)" in c["Status"] for g in groups.values() for c in g)
    status = {s.service: s for s in deploy.status()}
    assert {s: (v.desired, v.running, v.healthy, v.state) for s, v in status.items()} == {
        "web": (1, 1, 1, "running"),
        "api": (2, 2, 2, "running"),
        "store": (1, 1, 1, "running"),
    }
    # published port on the host; web -> api -> store by service name on the app network
    chain = get_json(f"http://127.0.0.1:{port}/upstream")
    assert chain["service"] == "web" and chain["upstream"]["service"] == "api"
    store = chain["upstream"]["upstream"]
    assert store["service"] == "store" and store["hostname"] == "store-1"
    assert set(store["secret_files"]) == {"token"}  # delivered as /run/secrets/token
    public = [(e.service, e.url) for e in deploy.endpoints() if e.public]
    assert public == [("web", f"http://localhost:{port}")]
    lines = list(deploy.logs("api", tail=5))
    assert {line.instance for line in lines} == {"api-1", "api-2"} and all(line.timestamp for line in lines)
    assert any("listening on 8080" in line.message for line in deploy.logs(None, tail=None))
    followed = deploy.logs("web", follow=True, tail=1)
    assert next(followed).service == "web"  # then it blocks for more; the test stops here

    # hardening: non-root user, read-only root, all caps dropped but a small set, no-new-privileges
    api_box = engine.inspect_container(groups["api"][0]["Id"])
    host = api_box["HostConfig"]
    assert api_box["Config"]["User"] == "1000" and host["ReadonlyRootfs"] and not host["Privileged"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 128 * 1024 * 1024
    assert "8080/tcp" not in (host.get("PortBindings") or {})  # internal ports are not published

    assert not deploy.plan().has_changes
    calls.clear()
    again = deploy.apply()
    assert again.changed == 0
    assert calls.mutating() == [], calls.mutating()
    # observe is four list calls, then one list per service shows all its replicas healthy
    assert len(calls.calls) <= 7, calls.calls


def test_env_change_replaces_only_that_service(engine: Any, app: str, calls: CallLog) -> None:
    port = free_port()
    deployment(three_service_spec(app, port)).apply()
    before = ids(engine, app)

    changed = deployment(three_service_spec(app, port, greeting="bonjour"), calls)
    planned = changed.plan()
    acted = [c for c in planned.changes if c.action is not Action.NOOP]
    assert [(c.key, c.action) for c in acted] == [("service/web", Action.REPLACE)]
    assert "delete-before-create" in acted[0].reason  # fixed host port: stop, then start
    assert [f.path for f in acted[0].fields] == ["env.GREETING"]
    changed.apply(planned)

    after = ids(engine, app)
    assert after["api"] == before["api"] and after["store"] == before["store"]
    assert after["web"].isdisjoint(before["web"]) and len(after["web"]) == 1
    assert get_json(f"http://127.0.0.1:{port}/")["greeting"] == "bonjour"
    assert not changed.plan().has_changes


def test_rolling_replace_scale_and_repair(engine: Any, app: str) -> None:
    port = free_port()
    deployment(three_service_spec(app, port)).apply()
    before = ids(engine, app)

    # an env change of a service without a fixed host port rolls replica by replica
    rolled = deployment(three_service_spec(app, port, api_env={"LEVEL": "2"}))
    planned = rolled.plan()
    assert [c.key for c in planned.changes if c.action is Action.REPLACE] == ["service/api"]
    assert "create-before-delete" in next(c.reason for c in planned.changes if c.key == "service/api")
    events: list[Any] = []
    rolled.on_event = events.append
    rolled.apply(planned)
    progress = [e.message for e in events if e.resource == "service/api" and e.kind == "progress"]
    first_start = next(i for i, m in enumerate(progress) if m.startswith("started"))
    first_removal = next(i for i, m in enumerate(progress) if m.startswith("removed"))
    assert first_start < first_removal, progress  # new replica up before the old one goes
    after = ids(engine, app)
    assert after["web"] == before["web"] and after["store"] == before["store"]
    assert after["api"].isdisjoint(before["api"])

    # scaling is an in-place update that leaves the existing replicas alone
    scaled = deployment(three_service_spec(app, port, api_env={"LEVEL": "2"}, api_replicas=3))
    planned = scaled.plan()
    assert [(c.key, c.action) for c in planned.changes if c.action is not Action.NOOP] == [
        ("service/api", Action.UPDATE)
    ]
    scaled.apply(planned)
    grown = ids(engine, app)["api"]
    assert len(grown) == 3 and after["api"] <= grown
    down = deployment(three_service_spec(app, port, api_env={"LEVEL": "2"}, api_replicas=1))
    down.apply()
    indices = [c["Labels"]["multicloud.replica"] for c in containers_by_service(engine, app)["api"]]
    assert indices == ["1"] and ids(engine, app)["api"] <= grown
    api_status = next(s for s in down.status() if s.service == "api")
    assert (api_status.desired, api_status.running, api_status.state) == (1, 1, "running")

    # repair: a half-created replica (created, never started) and a stray extra replica
    api_box = containers_by_service(engine, app)["api"][0]
    labels = dict(api_box["Labels"])
    engine.remove_container(api_box["Id"], force=True)
    engine.create_container("multicloud-test/app:1", name=api_box["Names"][0].lstrip("/"), labels=labels)
    engine.create_container("multicloud-test/app:1", labels=labels | {"multicloud.replica": "7"})
    planned = down.plan()
    api_change = next(c for c in planned.changes if c.key == "service/api")
    assert api_change.action is Action.REPLACE  # broken replicas: a new generation replaces them
    assert api_change.reason == "replica 1 was created but never started; replica 7 was created but never started"
    assert [(f.path, f.before, f.after) for f in api_change.fields] == [("replicas", 2, 1)]
    assert api_change.after is not None
    stuck = down.provider.health(app, api_change.after)  # nothing will start it: said at once, not waited on
    assert stuck.state is HealthState.UNHEALTHY, stuck
    assert stuck.message.startswith(f"{api_box['Names'][0].lstrip('/')} was created but never started"), stuck
    down.apply(planned)  # the new generation, often made within the same second, is the one waited for
    boxes = containers_by_service(engine, app)["api"]
    assert [(c["Labels"]["multicloud.replica"], c["State"]) for c in boxes] == [("1", "running")]
    assert not down.plan().has_changes


def test_changed_build_context_rebuilds_and_replaces(engine: Any, app: str, tmp_path: Path) -> None:
    context = tmp_path / "web"
    shutil.copytree(Path(__file__).parent / "images" / "app", context)
    port = free_port()
    first = deployment(three_service_spec(app, port, context=context))
    first.apply()
    (context / "extra.txt").write_text("changed\n")
    (context / ".dockerignore").write_text("ignored.txt\n")
    planned = first.plan()
    acted = {c.key: c.action for c in planned.changes if c.action is not Action.NOOP}
    assert acted == {"image/web": Action.REPLACE, "service/web": Action.REPLACE}
    first.apply(planned)
    wanted = next(r for r in first.provider.desired(first.target_spec, {"token": SECRET}) if r.key == "image/web")
    tags = [t for i in owned(engine, app)["images"] for t in i["RepoTags"]]
    assert tags == [wanted.properties["tag"]]  # the old build was untagged
    (context / "ignored.txt").write_text("not part of the build\n")
    assert not first.plan().has_changes  # .dockerignore'd files do not change the tag


def test_destroy_keeps_volumes_unless_asked(engine: Any, app: str) -> None:
    deploy = deployment(three_service_spec(app, free_port()))
    deploy.apply()
    deploy.destroy()
    left = owned(engine, app)
    assert left["containers"] == [] and left["networks"] == [] and left["images"] == []
    assert [v["Name"] for v in left["volumes"]] == [f"{app}_data"]
    planned = deploy.plan(destroy=True)
    assert [r.key for r in planned.kept] == ["volume/data"] and not planned.has_changes
    deploy.destroy(volumes=True)
    assert all(not found for found in owned(engine, app).values())


def test_secret_never_in_labels_plans_status_or_events(engine: Any, app: str) -> None:
    events: list[Any] = []
    deploy = deployment(three_service_spec(app, free_port()), events=events)
    planned = deploy.plan()
    assert SECRET not in plan_text(planned, verbose=True)
    assert SECRET not in json.dumps(plan_json(planned))
    deploy.apply(planned)
    for kind, found in owned(engine, app).items():
        for item in found:
            assert SECRET not in json.dumps(item.get("Labels") or {}), kind
    for box in owned(engine, app)["containers"]:
        inspected = engine.inspect_container(box["Id"])
        assert SECRET not in json.dumps(inspected["Config"]["Labels"])
    shown = [repr(deploy.status()), repr(deploy.endpoints()), repr(deploy.provider.observe(app)), repr(events)]
    shown.append(plan_text(deploy.plan(), verbose=True))
    assert not any(SECRET in text for text in shown)
    observed = {r.key: r for r in deploy.provider.observe(app)}
    token = observed["service/store"].properties["secrets"]["token"]
    assert isinstance(token, Sensitive) and token.value is None  # labels hold the digest only


def test_a_replica_without_check_that_crashed_once_then_stays_up_is_ready(engine: Any, app: str) -> None:
    from multicloud.api import Deployment
    from multicloud.spec import spec_from_dict

    once = "if [ -e /tmp/crashed ]; then exec sleep 600; fi; touch /tmp/crashed; exit 3"
    data = {
        "name": app,
        "services": {"worker": {"image": APP_IMAGE, "command": ["sh", "-c", once]}},
        "targets": {"local": {"provider": "docker", "stop_timeout": 1}},
    }
    result = Deployment(spec_from_dict(data, base_dir="/"), "local", health_timeout=20).apply()
    assert result.ok, result
    (container,) = containers_by_service(engine, app)["worker"]
    assert engine.inspect_container(container["Id"])["RestartCount"] == 1
