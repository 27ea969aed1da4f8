"""The planner is a pure function of desired and observed resources; plans render safely."""

from __future__ import annotations

import json

import pytest

from multicloud.errors import UserError
from multicloud.planner import Action, FieldChange, diff, plan
from multicloud.render import plan_json, plan_text
from multicloud.resources import Resource, Sensitive, from_jsonable, to_jsonable

REPLACE_ON = frozenset({"image", "ports"})


def svc(name: str, *, deps: tuple[str, ...] = (), **props) -> Resource:
    base = {"image": "app:1", "env": {"MODE": "prod"}, "replicas": 1, "ports": [80]}
    return Resource("service", name, {**base, **props}, depends_on=deps, replace_on=REPLACE_ON, service=name)


def observed(resource: Resource) -> Resource:
    """What a provider reads back: properties through JSON, secrets as digests only."""
    props = from_jsonable(json.loads(json.dumps(to_jsonable(dict(resource.properties)))))
    return Resource(resource.kind, resource.name, props, depends_on=resource.depends_on, persistent=resource.persistent)


NET = Resource("network", "app", {"cidr": "10.0.0.0/16"})
VOL = Resource("volume", "data", {"size": 10}, persistent=True)


def actions(p) -> dict[str, str]:
    return {c.key: c.action.value for c in p.changes}


# --- one resource --------------------------------------------------------------------------


def test_create_when_nothing_exists():
    change = diff(svc("web"), None)
    assert (change.action, change.key, change.reason) == (Action.CREATE, "service/web", "does not exist")


def test_delete_when_not_desired():
    change = diff(None, svc("web"))
    assert (change.action, change.reason) == (Action.DELETE, "no longer in the spec")


def test_noop_when_equal_after_a_round_trip():
    desired = svc("web", env={"MODE": "prod", "TOKEN": Sensitive.of("t0ken", app="app")})
    assert diff(desired, observed(desired)).action is Action.NOOP


def test_tuples_and_lists_compare_as_json_does():
    desired = svc("web", ports=(80, 443), env={"A": "1"})
    assert diff(desired, observed(desired)).action is Action.NOOP


def test_update_names_each_changed_field():
    before = observed(svc("web"))
    change = diff(svc("web", env={"MODE": "dev", "NEW": "1"}, replicas=3), before)
    assert change.action is Action.UPDATE
    assert change.reason == "changed in place"
    assert change.fields == (
        FieldChange("env.MODE", "prod", "dev"),
        FieldChange("env.NEW", None, "1"),
        FieldChange("replicas", 1, 3),
    )


def test_replace_says_which_field_forces_it():
    change = diff(svc("web", image="app:2", replicas=2), observed(svc("web")))
    assert change.action is Action.REPLACE
    assert change.reason == "image cannot change in place (delete-before-create)"
    assert {f.path: f.forces_replace for f in change.fields} == {"image": True, "replicas": False}


def test_replace_of_list_element():
    change = diff(svc("web", ports=[80, 8080]), observed(svc("web", ports=[80, 81])))
    assert change.action is Action.REPLACE
    assert change.fields == (FieldChange("ports[1]", 81, 8080, forces_replace=True),)


def test_diff_needs_something():
    with pytest.raises(ValueError):
        diff(None, None)


# --- whole plans ---------------------------------------------------------------------------


def test_plan_from_nothing_creates_in_dependency_order():
    desired = [
        svc("web", deps=("service/api", "network/app")),
        svc("api", deps=("service/db", "network/app")),
        svc("db", deps=("network/app", "volume/data")),
        NET,
        VOL,
    ]
    p = plan("app", "t", desired, [])
    keys = [c.key for c in p.changes]
    assert set(actions(p).values()) == {"create"}
    for resource in desired:
        for dep in resource.depends_on:
            assert keys.index(dep) < keys.index(resource.key)
    web = next(c for c in p.changes if c.key == "service/web")
    assert web.requires == ("service/api", "network/app")
    assert p.has_changes and p.counts()["create"] == 5


def test_requires_skip_dependencies_that_do_not_change():
    db, api = svc("db"), svc("api", deps=("service/db",))
    p = plan("app", "t", [db, svc("api", deps=("service/db",), replicas=2)], [observed(db), observed(api)])
    assert actions(p) == {"service/db": "no-op", "service/api": "update"}
    assert p.changes[1].requires == ()


def test_plan_is_empty_when_everything_matches():
    desired = [NET, VOL, svc("db", deps=("network/app",)), svc("api", deps=("service/db",))]
    p = plan("app", "t", desired, [observed(r) for r in desired])
    assert not p.has_changes
    assert set(actions(p).values()) == {"no-op"}
    assert plan_json(p)["changes"] == []
    assert "No changes. app on t matches the spec." in plan_text(p)


def test_plan_mixes_all_actions():
    old = [NET, svc("db", deps=("network/app",)), svc("api"), svc("gone")]
    new = [NET, svc("db", deps=("network/app",), replicas=2), svc("api", image="app:2"), svc("new")]
    p = plan("app", "t", new, [observed(r) for r in old])
    assert actions(p) == {
        "network/app": "no-op",
        "service/api": "replace",
        "service/db": "update",
        "service/new": "create",
        "service/gone": "delete",
    }
    assert p.counts() == {"create": 1, "update": 1, "replace": 1, "delete": 1, "no-op": 1}


def test_deletes_run_dependents_first():
    old = [NET, svc("db", deps=("network/app",)), svc("api", deps=("service/db", "network/app"))]
    p = plan("app", "t", [], [observed(r) for r in old])
    keys = [c.key for c in p.changes]
    assert keys == ["service/api", "service/db", "network/app"]
    requires = {c.key: c.requires for c in p.changes}
    assert requires == {
        "service/api": (),
        "service/db": ("service/api",),
        "network/app": ("service/api", "service/db"),
    }


def test_delete_waits_for_the_update_that_stops_using_it():
    old = [svc("cache"), svc("api", deps=("service/cache",))]
    p = plan("app", "t", [svc("api", env={"MODE": "no-cache"})], [observed(r) for r in old])
    assert actions(p) == {"service/api": "update", "service/cache": "delete"}
    delete = next(c for c in p.changes if c.action is Action.DELETE)
    assert delete.requires == ("service/api",)


def test_stale_circular_observed_dependencies_do_not_break_deletes():
    a = Resource("service", "a", {"x": 1}, depends_on=("service/b",))
    b = Resource("service", "b", {"x": 1}, depends_on=("service/a",))
    p = plan("app", "t", [], [a, b])
    assert actions(p) == {"service/a": "delete", "service/b": "delete"}
    first, second = p.changes
    assert first.requires == () and second.requires == (first.key,)


def test_persistent_resources_are_kept_unless_asked():
    old = [NET, VOL, svc("db", deps=("volume/data",))]
    p = plan("app", "t", [], [observed(r) for r in old])
    assert actions(p) == {"service/db": "delete", "network/app": "delete"}
    assert [r.key for r in p.kept] == ["volume/data"]
    assert "volume/data is kept (persistent; destroy --volumes removes it)" in plan_text(p)
    assert plan_json(p)["kept"] == ["volume/data"]
    p = plan("app", "t", [], [observed(r) for r in old], delete_persistent=True)
    assert actions(p)["volume/data"] == "delete"
    assert next(c for c in p.changes if c.key == "volume/data").requires == ("service/db",)
    assert p.kept == ()


def test_desired_persistent_resources_are_compared_like_any_other():
    p = plan("app", "t", [VOL], [observed(VOL)])
    assert actions(p) == {"volume/data": "no-op"} and p.kept == ()


def test_plan_rejects_duplicates_dangling_and_cycles():
    with pytest.raises(ValueError, match="twice"):
        plan("app", "t", [svc("a"), svc("a")], [])
    with pytest.raises(ValueError, match="twice"):
        plan("app", "t", [], [svc("a"), svc("a")])
    with pytest.raises(ValueError, match="depends on service/x, which is not desired"):
        plan("app", "t", [svc("a", deps=("service/x",))], [])
    with pytest.raises(ValueError, match="cycle"):
        plan("app", "t", [svc("a", deps=("service/b",)), svc("b", deps=("service/a",))], [])


def test_long_dependency_chains_plan_without_recursion_limits():
    chain = [svc("s0")] + [svc(f"s{i}", deps=(f"service/s{i - 1}",)) for i in range(1, 1500)]
    p = plan("app", "t", chain, [])
    assert [c.key for c in p.changes][:3] == ["service/s0", "service/s1", "service/s2"]
    gone = plan("app", "t", [], [observed(r) for r in chain])
    assert gone.changes[0].key == "service/s1499" and gone.changes[-1].key == "service/s0"


def test_plan_is_pure():
    desired = [svc("api", env={"K": Sensitive.of("v", app="app")})]
    existing = [observed(svc("api"))]
    first, second = plan("app", "t", desired, existing), plan("app", "t", desired, existing)
    assert first == second
    assert desired == [svc("api", env={"K": Sensitive.of("v", app="app")})]


# --- rendering never shows a secret ---------------------------------------------------------

PLAINTEXT = "pl41ntext-P4ssw0rd"


def test_rendered_plans_never_contain_a_secret():
    secret = Sensitive.of(PLAINTEXT, app="app")
    old_secret = Sensitive.of(PLAINTEXT + "-old", app="app")
    new = [
        svc("api", env={"MODE": "prod", "DB_URL": secret}, command=["run", Sensitive.of(PLAINTEXT, app="app")]),
        svc("made", env={"TOKEN": secret}, command=["a", secret, "b"]),
        svc("swap", image="app:2", env={"K": secret}),
    ]
    old = [
        svc("api", env={"MODE": "prod", "DB_URL": old_secret}, command=["run", old_secret]),
        svc("swap", env={"K": old_secret}),
        svc("gone", env={"K": old_secret}),
    ]
    p = plan("app", "t", new, [observed(r) for r in old])
    assert actions(p) == {
        "service/api": "update",
        "service/made": "create",
        "service/swap": "replace",
        "service/gone": "delete",
    }
    rendered = [json.dumps(plan_json(p)), plan_text(p), plan_text(p, verbose=True), repr(p), str(p)]
    for text in rendered:
        assert PLAINTEXT not in text
    text = plan_text(p)
    assert "~ env.DB_URL: (sensitive value) -> (sensitive value)" in text
    data = plan_json(p)
    field = next(f for c in data["changes"] for f in c["fields"] if f["path"] == "env.DB_URL")
    assert field["after"] == {"$sensitive": secret.digest}


def test_plan_text_reads_like_terraform():
    old = [svc("api"), svc("gone"), svc("swap")]
    new = [svc("api", replicas=3), svc("swap", image="app:2"), svc("new")]
    text = plan_text(plan("app", "prod", new, [observed(r) for r in old]))
    assert "  ~ service/api will be updated in place" in text
    assert "      ~ replicas: 1 -> 3" in text
    assert "-/+ service/swap must be replaced (image cannot change in place (delete-before-create))" in text
    assert '      ~ image: "app:1" -> "app:2"  # forces replacement' in text
    assert "  + service/new will be created" in text
    assert "  - service/gone will be destroyed" in text
    assert text.endswith("Plan for app on prod: 1 to add, 1 to change, 1 to replace, 1 to destroy.")


def test_plan_json_shape():
    old = [svc("api")]
    data = plan_json(plan("app", "prod", [svc("api", replicas=2, deps=()), NET], [observed(r) for r in old]))
    assert data["app"] == "app" and data["target"] == "prod" and data["has_changes"] is True
    assert data["summary"] == {"create": 1, "update": 1, "replace": 0, "delete": 0, "no-op": 0}
    update = next(c for c in data["changes"] if c["action"] == "update")
    assert update == {
        "action": "update",
        "resource": "service/api",
        "instance": "",
        "kind": "service",
        "name": "api",
        "service": "api",
        "reason": "changed in place",
        "effect": "",
        "requires": [],
        "notes": [],
        "fields": [{"path": "replicas", "before": 1, "after": 2, "forces_replacement": False}],
    }
    json.dumps(data)


def test_replacing_a_persistent_resource_is_refused_unless_asked():
    desired = Resource("volume", "data", {"size": 20}, replace_on=frozenset({"size"}), persistent=True)
    with pytest.raises(UserError) as caught:
        plan("app", "t", [desired], [observed(VOL)])
    assert "volume/data (size cannot change in place (delete-before-create))" in str(caught.value)
    assert "deleting their data" in str(caught.value)
    allowed = plan("app", "t", [desired], [observed(VOL)], delete_persistent=True)
    assert actions(allowed) == {"volume/data": "replace"}
    grown = Resource("volume", "data", {"size": 20}, persistent=True)  # an in-place change is fine
    assert actions(plan("app", "t", [grown], [observed(VOL)])) == {"volume/data": "update"}


# --- several instances of a key, broken instances ----------------------------------------------


def instance(resource: Resource, name: str, *faults: str) -> Resource:
    """An observed instance of a resource (a provider that lets old and new coexist)."""
    seen = observed(resource)
    return Resource(
        seen.kind, seen.name, seen.properties, depends_on=seen.depends_on, instance=name, faults=tuple(faults)
    )


def test_a_replace_killed_between_create_and_delete_plans_removal_of_the_old_instance():
    new = svc("web", image="app:2", deps=("network/app",))
    found = [observed(NET), instance(svc("web", deps=("network/app",)), "g1"), instance(new, "g2")]
    p = plan("app", "prod", [NET, new], found)
    acted = [(c.id, c.action, c.reason) for c in p.changes if c.action is not Action.NOOP]
    assert acted == [("service/web#g1", Action.DELETE, "a second instance (an interrupted replace left it)")]
    stale = next(c for c in p.changes if c.instance == "g1")
    assert stale.before is not None and stale.before.properties["image"] == "app:1"
    assert "  - service/web instance g1 will be destroyed (a second instance" in plan_text(p)
    assert p.counts()["delete"] == 1


def test_the_kept_instance_is_the_closest_and_stale_removal_follows_the_replace_mode():
    wanted = Resource("service", "web", {"image": "app:3", "replicas": 2}, replace_on=frozenset({"image"}),
                      replace_mode="create-before-delete")
    old = Resource("service", "web", {"image": "app:1", "replicas": 2}, instance="g1")
    partial = Resource("service", "web", {"image": "app:3", "replicas": 1}, instance="g2")
    p = plan("app", "prod", [wanted], [old, partial])
    steps = {c.id: c for c in p.changes}
    assert steps["service/web"].action is Action.UPDATE and steps["service/web"].before is partial
    assert steps["service/web#g1"].requires == ("service/web",)  # create-before-delete: after the main step
    first = Resource("service", "web", {"image": "app:3", "replicas": 2}, replace_on=frozenset({"image"}))
    p = plan("app", "prod", [first], [old, partial])
    assert {c.id: c.requires for c in p.changes}["service/web"] == ("service/web#g1",)  # delete first


def test_a_stale_instance_replaced_create_before_delete_goes_after_what_uses_the_key_moved():
    group = Resource("security-group", "app", {"vpc": "vpc-2"}, replace_on=frozenset({"vpc"}),
                     replace_mode="create-before-delete")
    web = Resource("service", "web", {"subnets": ["b"]}, depends_on=("security-group/app",))
    worker = Resource("service", "worker", {"subnets": ["b"]}, depends_on=("security-group/app",))
    found = [Resource("security-group", "app", {"vpc": "vpc-1"}, instance="sg-1"),
             Resource("security-group", "app", {"vpc": "vpc-2"}, instance="sg-2"),
             Resource("service", "web", {"subnets": ["a"]}, depends_on=("security-group/app",)),
             Resource("service", "worker", {"subnets": ["b"]}, depends_on=("security-group/app",))]
    p = plan("app", "prod", [group, web, worker], found)
    steps = {c.id: c for c in p.changes}
    assert steps["security-group/app"].action is Action.NOOP and steps["service/worker"].action is Action.NOOP
    assert steps["security-group/app#sg-1"].requires == ("service/web",)  # the acting user moves first


def test_instances_of_a_removed_key_are_all_deleted_and_instance_ids_must_differ():
    web = svc("web")
    p = plan("app", "prod", [], [instance(web, "a"), instance(web, "b")])
    assert sorted(c.id for c in p.changes) == ["service/web", "service/web#b"]
    assert all(c.action is Action.DELETE for c in p.changes)
    with pytest.raises(ValueError, match=r"service/web twice \(instance 'a'\)"):
        plan("app", "prod", [web], [instance(web, "a"), instance(web, "a")])


def test_a_broken_instance_is_replaced_and_shown_by_its_fault():
    web = svc("web")
    p = plan("app", "prod", [web], [instance(web, "g1", "replica 2 exited (137)")])
    (change,) = p.changes
    assert (change.action, change.reason, change.fields) == (Action.REPLACE, "replica 2 exited (137)", ())
    assert plan_text(p).splitlines()[0] == "-/+ service/web replica 2 exited (137)"
    assert plan_json(p)["changes"][0]["reason"] == "replica 2 exited (137)"
    healthy_twin = instance(web, "g2")
    p = plan("app", "prod", [web], [instance(web, "g1", "replica 1 dead"), healthy_twin])
    assert [(c.id, c.action) for c in p.changes] == [("service/web", Action.NOOP), ("service/web#g1", Action.DELETE)]
    assert "service/web instance g1 will be destroyed (replica 1 dead)" in plan_text(p)
