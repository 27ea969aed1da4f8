"""Docker provider behaviour that needs no engine: settings, desired(), labels, health
probes, build-context hashing, observe's reading of containers, error translation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import SECRET, three_service_spec
from multicloud_docker import labels as L
from multicloud_docker.client import ConflictError, proxy_environment, translate
from multicloud_docker.containers import replica_config
from multicloud_docker.healthcheck import docker_healthcheck
from multicloud_docker.observe import Replica, generations, service_instance
from multicloud_docker.probing import retrying
from multicloud_docker.provider import DockerProvider
from multicloud_docker.settings import DEFAULT_CAPABILITIES, parse_settings

from multicloud.errors import (
    BackendUnavailableError,
    NotFoundError,
    RetryableError,
    SettingsError,
    TargetError,
    UserError,
)
from multicloud.planner import Action, choose, diff
from multicloud.resources import Resource, Sensitive
from multicloud.spec import spec_from_dict
from multicloud.spec.targets import target_spec
from multicloud.spec.units import parse_memory


def render(data: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = target_spec(spec_from_dict(data, base_dir="/"), "local")
    provider = DockerProvider(spec.settings if settings is None else settings)
    return {r.key: r for r in provider.desired(spec, {"token": SECRET})}


# --- import cost and settings ------------------------------------------------------------


def test_provider_and_desired_never_import_the_sdk() -> None:
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from docker_helpers import three_service_spec\n"
        "from multicloud.spec import spec_from_dict\n"
        "from multicloud.spec.targets import target_spec\n"
        "from multicloud_docker.provider import DockerProvider\n"
        "spec = target_spec(spec_from_dict(three_service_spec('lazy', 18080), base_dir='/'), 'local')\n"
        "DockerProvider(spec.settings).desired(spec, {'token': 'x'})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_defaults_and_validation() -> None:
    settings = parse_settings({})
    assert settings.bind_address == "0.0.0.0" and settings.capabilities == DEFAULT_CAPABILITIES
    remote = parse_settings({"host": "tcp://10.1.2.3:2375", "capabilities": ["cap_chown"], "publish": {"a.b": 0}})
    assert remote.public_host == "10.1.2.3" and remote.capabilities == ("CHOWN",) and remote.publish == {"a.b": 0}
    with pytest.raises(SettingsError) as caught:
        parse_settings({"port_ofset": 1})
    assert caught.value.field == "port_ofset" and "port_offset" in str(caught.value)
    for bad in ({"build": "yes"}, {"publish": {"web": 80}}, {"bind_address": "everywhere"}, {"capabilities": ["ALL"]}):
        with pytest.raises(SettingsError) as caught:
            parse_settings(bad)
        assert caught.value.field.split(".")[0] == next(iter(bad))
    with pytest.raises(SettingsError):
        DockerProvider({"host": "docker.sock"})


# --- desired -------------------------------------------------------------------------------


def test_desired_resources_modes_and_properties() -> None:
    found = render(three_service_spec("pure", 18080))
    assert sorted(found) == [
        "image/web",
        "network/pure",
        "service/api",
        "service/store",
        "service/web",
        "volume/data",
    ]
    web, api, store = found["service/web"], found["service/api"], found["service/store"]
    assert web.replace_mode == "delete-before-create"  # fixed host port
    assert api.replace_mode == "create-before-delete"  # rolls
    assert api.replace_on == frozenset(api.properties) - {"replicas"}
    assert web.properties["image"] == found["image/web"].properties["tag"]
    assert web.properties["env"]["UPSTREAM"] == "http://api:8080/upstream"  # service name = host
    assert isinstance(api.properties["env"]["TOKEN"], Sensitive)
    assert store.properties["secrets"] == {"token": Sensitive.of(SECRET, app="pure")}
    assert web.properties["ports"][0]["host_port"] == 18080 and api.properties["ports"][0]["host_port"] is None
    assert set(web.depends_on) == {"network/pure", "image/web", "service/api"}
    assert set(store.depends_on) == {"network/pure", "volume/data"}
    assert found["volume/data"].persistent and found["volume/data"].properties["name"] == "pure_data"


def test_a_secret_file_placeholder_mounts_the_secret_and_puts_only_its_path_in_env() -> None:
    data = {"name": "files", "secrets": {"token": {"from_env": "T"}},
            "services": {"api": {"image": "x:1", "env": {"TOKEN_FILE": "${secrets.token.file}"},
                                 "ports": [{"name": "web", "port": 8443, "protocol": "https"}],
                                 "healthcheck": {"http": "/healthz"}}},
            "targets": {"local": {"provider": "docker"}}}
    api = render(data)["service/api"]
    assert api.properties["env"] == {"TOKEN_FILE": "/run/secrets/token"}
    assert api.properties["secrets"] == {"token": Sensitive.of(SECRET, app="files")}
    assert "https://127.0.0.1:8443/healthz" in api.properties["healthcheck"]["test"][1]


def test_labels_round_trip_exactly_and_hold_no_secret() -> None:
    for resource in render(three_service_spec("pure", 18080)).values():
        props = {k: v for k, v in resource.properties.items() if k != "replicas"}
        text = L.encode(props)
        assert SECRET not in text
        assert L.decode(text) == props


def test_publish_remaps_offsets_and_refuses_what_cannot_work() -> None:
    data = three_service_spec("pure", 18080)
    offset = render(data, {"port_offset": 1000})
    assert offset["service/web"].properties["ports"][0]["host_port"] == 9080
    engine_picked = render(data, {"publish": {"web.http": 0}})
    assert engine_picked["service/web"].replace_mode == "create-before-delete"
    problems = {
        "has no port .nope.": {"publish": {"web.nope": 1}},
        "no service .nope.": {"publish": {"nope.http": 1}},
        "internal": {"publish": {"api.http": 1}},
        "not a port": {"port_offset": 60000},
    }
    for needle, settings in problems.items():
        with pytest.raises(TargetError, match=needle):
            render(data, settings)
    data["services"]["web"]["replicas"] = 2
    with pytest.raises(TargetError, match="cannot share host port 18080"):
        render(data)
    data["services"]["web"]["replicas"] = 1
    data["services"]["store"]["ports"][0]["expose"] = "public"
    with pytest.raises(TargetError, match="already published by"):
        render(data, {"publish": {"web.http": 9000, "store.http": 9000}})


def test_zero_replicas_means_no_service_and_no_dependency_on_it() -> None:
    data = three_service_spec("pure", 18080)
    data["services"]["api"]["replicas"] = 0
    found = render(data)
    assert "service/api" not in found and "service/api" not in found["service/web"].depends_on


# --- observe -------------------------------------------------------------------------------


def replica(
    index: int, digest: str, state: str = "running", created: int = 1, status: str = "Up 5 seconds", gen: str = "",
    stamp: int = 0,
) -> Replica:
    generation = gen or digest
    labels = {
        L.SPEC_HASH: digest,
        L.GENERATION: generation,
        L.CREATED_NS: str(stamp),
        L.PROPERTIES: L.encode({"image": digest}),
        L.DEPENDS_ON: "network/a",
    }
    name = f"a_svc_{index}_{generation[:8]}"
    return Replica(f"id-{name}-{created}", name, "svc", index, digest, state, status, created, labels)


def instances(group: list[Replica]) -> list[Resource]:
    return [service_instance("svc", members) for members in generations(group)]


def test_observe_reports_a_converged_service_exactly() -> None:
    (found,) = instances([replica(1, "h1"), replica(2, "h1")])
    assert found.properties == {"image": "h1", "replicas": 2} and found.depends_on == ("network/a",)
    assert found.instance == "h1" and found.faults == ()
    assert found.payload["containers"] == ["id-a_svc_1_h1-1", "id-a_svc_2_h1-1"]


def test_a_replace_killed_half_way_shows_two_instances_and_the_plan_removes_the_old() -> None:
    old = [replica(1, "old"), replica(2, "old")]
    new = [replica(1, "new", created=3), replica(2, "new", created=3)]
    found = instances([*old, *new])
    assert [r.instance for r in found] == ["old", "new"]  # oldest first
    desired = Resource("service", "svc", {"image": "new", "replicas": 2}, replace_on=frozenset({"image"}))
    kept, stale = choose(desired, found)
    assert kept is not None and kept.instance == "new" and [r.instance for r in stale] == ["old"]
    assert diff(desired, kept).action is Action.NOOP


def test_generations_made_within_one_second_are_ordered_by_the_providers_stamp() -> None:
    # a replace right after a killed create: the engine's Created (seconds) ties, the random tokens sort "ff" first
    half = replica(1, "h1", state="created", status="Created", created=7, gen="ff", stamp=7_100_000_000)
    fresh = [replica(1, "h1", created=7, gen="00", stamp=7_900_000_000), replica(2, "h1", created=8, gen="00",
                                                                                stamp=8_000_000_000)]
    assert [g[0].generation for g in generations([*fresh, half])] == ["ff", "00"]
    legacy = replica(1, "h1", created=7, gen="ee")  # made before the stamp label: older than any stamped one
    assert [g[0].generation for g in generations([*fresh, legacy])] == ["ee", "00"]


def test_dead_never_started_and_unhealthy_replicas_are_faults() -> None:
    (killed,) = instances([replica(1, "h1"), replica(2, "h1", "exited", status="Exited (137) 3 seconds ago")])
    assert killed.properties["replicas"] == 2 and killed.faults == ("replica 2 exited (137)",)
    desired = Resource("service", "svc", {"image": "h1", "replicas": 2})
    change = diff(desired, killed)
    assert (change.action, change.reason) == (Action.REPLACE, "replica 2 exited (137)")
    (half,) = instances([replica(1, "h1"), replica(2, "h1", state="created", status="Created")])
    assert half.faults == ("replica 2 was created but never started",)
    (sick,) = instances([replica(1, "h1", status="Up 2 minutes (unhealthy)")])
    assert sick.faults == ("replica 1 unhealthy",)
    restarting = instances([replica(1, "h1", state="restarting", status="Restarting (1) 1 second ago")])
    assert restarting[0].faults == ()  # the engine's restart policy is on it


def test_a_checking_replica_is_healthy_only_when_the_probe_given_passes_it() -> None:
    group = [
        replica(1, "h1", status="Up 1 second (health: starting)"),
        replica(2, "h1", status="Up 2 seconds (healthy)"),
    ]
    asked: list[str] = []

    def probe(found: Replica, check: Any) -> bool:
        asked.append(found.id)
        return passing

    passing = True
    assert not instances(group)[0].healthy  # without a probe: waiting for the engine's first check
    (found,) = [service_instance("svc", members, probe) for members in generations(group)]
    assert found.healthy and asked == [group[0].id]  # only the replica the engine has not checked yet
    passing = False
    assert not service_instance("svc", group, probe).healthy


def test_a_shell_check_runs_again_inside_one_probe_until_it_passes_or_its_window_ends(tmp_path: Path) -> None:
    count = tmp_path / "runs"
    third = f"echo x >> {count}; [ $(wc -l < {count}) -ge 3 ]"
    assert subprocess.run(["/bin/sh", "-c", retrying(third, 1.0)], check=False).returncode == 0
    assert count.read_text().count("x") == 3  # passed at its third run, and stopped there
    count.unlink()
    while time.time() % 1 < 0.9:  # begin late in a second: the clock's next tick must not end the window
        time.sleep(0.01)
    assert subprocess.run(["/bin/sh", "-c", retrying(f"echo x >> {count}; exit 1", 0.2)], check=False).returncode == 1
    assert count.read_text().count("x") == 4  # never passes: as many runs as fit in the window
    count.unlink()
    hanging = f"echo x >> {count}; sleep 0.6; exit 1"  # each run hangs to a timeout: the window's time ends it
    assert subprocess.run(["/bin/sh", "-c", retrying(hanging, 1.0)], check=False, timeout=10).returncode == 1
    assert count.read_text().count("x") <= 4  # not the 20 runs the window would hold at 50 ms each


def sdk_create_body(api: Any, resource: Resource, index: int, labels: dict[str, str]) -> dict[str, Any]:
    """What docker.APIClient.create_container sent for a replica (the provider's calls before it built the
    body itself): its create_host_config, create_networking_config and ContainerConfig, proxies injected."""
    props, ports, security = resource.properties, resource.properties["ports"], resource.properties["security"]
    host_config = api.create_host_config(
        port_bindings={f"{p['port']}/tcp": (p["host_ip"], p["host_port"] or None)
                       for p in ports if p["host_port"] is not None},
        binds=[f"{v['volume']}:{v['target']}:{'ro' if v['read_only'] else 'rw'}" for v in props["volumes"]],
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        cap_drop=list(security["cap_drop"]), cap_add=list(security["cap_add"]) or None,
        security_opt=["no-new-privileges"] if security["no_new_privileges"] else None,
        privileged=bool(security["privileged"]), init=bool(security["init"]), read_only=bool(props["read_only"]),
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"} if props["read_only"] else None,
        nano_cpus=round(float(props["cpu"]) * 1e9), mem_limit=parse_memory(str(props["memory"])),
        network_mode=props["network"],
    )
    networking = api.create_networking_config(
        {props["network"]: api.create_endpoint_config(aliases=[resource.name, f"{resource.name}-{index}"])}
    )
    plain = [f"{k}={v.reveal() if isinstance(v, Sensitive) else v}" for k, v in props["env"].items()]
    return dict(api.create_container_config(
        props["image"], [str(c) for c in props["command"]] if props["command"] else None, f"{resource.name}-{index}",
        props["user"] or None, False, False, False, [(p["port"], "tcp") for p in ports],
        api._proxy_configs.inject_proxy_environment(plain) or None, ["/run/secrets"] if props.get("secrets") else None,
        False, None, None, None, host_config, None, labels, None, networking,
        docker_healthcheck(props["healthcheck"]), None, None,
    ))


@pytest.mark.parametrize("proxies", [{}, {"httpProxy": "http://proxy:3128", "noProxy": "localhost,.internal"}])
def test_the_create_body_is_what_the_sdk_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxies: Any) -> None:
    import docker

    (tmp_path / "config.json").write_text(json.dumps({"proxies": {"default": proxies}} if proxies else {}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    api = docker.APIClient(version="1.41")
    data = three_service_spec("a", 28080)
    for resource in render(data).values():
        if resource.kind == "service":
            labels = {"multicloud.app": "a", "n": resource.name}
            assert replica_config(resource, 2, labels, proxy_environment()) == sdk_create_body(api, resource, 2, labels)


# --- errors ----------------------------------------------------------------------------------


def api_error(status: int, explanation: str) -> Exception:
    import requests
    from docker import errors

    response = requests.Response()
    response.status_code = status
    return errors.APIError("engine said no", response=response, explanation=explanation)


def test_sdk_errors_become_multicloud_errors() -> None:
    import requests

    assert isinstance(translate(api_error(404, "no such container"), "x"), NotFoundError)
    conflict = translate(api_error(409, "removal already in progress"), "x")
    assert isinstance(conflict, ConflictError) and isinstance(conflict, RetryableError)
    assert isinstance(translate(api_error(500, "driver failed"), "x"), RetryableError)
    port = translate(api_error(500, "Bind for 0.0.0.0:80 failed: port is already allocated"), "starting web")
    assert isinstance(port, UserError) and "publish" in str(port)
    bad_user = translate(api_error(500, "unable to find user nobody2: no matching entries in passwd file"), "starting")
    assert isinstance(bad_user, UserError) and "user" in str(bad_user.hint)
    down = translate(requests.exceptions.ConnectionError("refused"), "listing")
    assert isinstance(down, BackendUnavailableError) and "dockerd" in str(down)
    assert translate(KeyError("not an SDK error"), "x") is None


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    provider = DockerProvider({"host": f"unix://{tmp_path}/no-engine.sock"})
    with pytest.raises(BackendUnavailableError) as caught:
        provider.observe("anything")
    assert "setup-engine.sh" in str(caught.value) and "dockerd" in str(caught.value)


def test_provider_is_registered_under_its_entry_point() -> None:
    from multicloud.registry import available, create_provider

    assert "docker" in {p.name for p in available()}
    provider = create_provider("docker", {"stop_timeout": 3})
    assert provider.name == "docker" and isinstance(provider, DockerProvider)
    assert os.environ.get("MULTICLOUD_STATE_DIR")  # the autouse fixture keeps state in tmp
