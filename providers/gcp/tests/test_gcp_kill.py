"""Kill trials on gcp-cloudrun: `multicloud apply` (a real subprocess against the emulator,
operations slowed so services stay reconciling) is killed with SIGKILL at a random moment
after a chosen CreateService, UpdateService or DeleteService took effect, while the app is
created, changed (a new revision) or shrunk; or, while the app is created, after its Cloud SQL
instance's insert took effect (Cloud SQL operations slowed: the kill lands while the instance is made,
or between its database and its user). The next apply must return only once every service is ready and
converge (`plan --detailed-exitcode` = 0), with one service per spec service (and the database and user
in the instance).
MULTICLOUD_KILL_TRIALS sets how many trials run (5 by default; 20 for the report's figures)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from multicloud_gcp.emulator import RunningCloudRun
from multicloud_gcp.provider import CloudRunProvider

from multicloud.api import Deployment
from multicloud.spec import Spec, spec_from_dict
from multicloud.testing.kill import kill, run_trial, trial_count

SEED = int(os.environ.get("MULTICLOUD_KILL_SEED", "10"))
SCENARIOS = {"create": "CreateService", "update": "UpdateService", "shrink": "DeleteService",
             "database": "POST /instances"}
SQL_OPERATION_SECONDS = 0.8
"""How long each Cloud SQL operation takes in the database scenario (create, database, user: one after another)."""


def _changed(spec: Spec, scenario: str) -> Spec:
    """The spec the killed apply deploys over the original: a new env value, or one service fewer."""
    data = spec.model_dump(exclude_unset=True)
    if scenario == "update":
        for service in data["services"].values():
            service.setdefault("env", {})["KILL_TRIAL"] = "2"
    elif scenario == "shrink":
        del data["services"]["registry"]
        for target in data["targets"].values():
            (target.get("overrides") or {}).pop("registry", None)
        for service in data["services"].values():
            service["depends_on"] = [d for d in service.get("depends_on") or [] if d != "registry"]
            service["env"] = {k: v for k, v in (service.get("env") or {}).items() if "registry" not in str(v)}
    return spec_from_dict(data)


@pytest.mark.parametrize("trial", range(trial_count()))
def test_kill_9_then_apply_converges(
    trial: int,
    cloudrun: RunningCloudRun,
    iot_spec: Spec,
    iot_env: dict[str, str],
    tmp_path: Path,
    deploy: Callable[..., Deployment],
    write_spec: Callable[[Spec, dict[str, str], Path], Path],
    iot_settings: Callable[[str], dict[str, str]],
) -> None:
    rng = random.Random(SEED + trial)
    scenario = list(SCENARIOS)[trial % len(SCENARIOS)]
    settings = iot_settings("rest")
    if scenario in ("update", "shrink"):
        deploy(iot_spec, CloudRunProvider(settings)).apply()
    target = _changed(iot_spec, scenario)
    spec_file = write_spec(target, settings, tmp_path / "multicloud.yaml")
    env = {**os.environ, **iot_env, "MULTICLOUD_STATE_DIR": str(tmp_path / "state")}
    method, nth = SCENARIOS[scenario], rng.randint(1, 4 if scenario in ("create", "update") else 1)
    delay = rng.uniform(0, 3 * SQL_OPERATION_SECONDS if scenario == "database" else 1.2)
    point = f"{scenario}: {delay:.2f}s after {method} #{nth}"
    pid: list[int] = []
    seen = [0]
    sql = cloudrun.cloudsql
    assert sql is not None
    quick = sql.op_seconds

    def disarm() -> None:
        cloudrun.model.watchers.clear()
        sql.watchers.clear()
        sql.op_seconds = quick

    def watcher(called: str, resource: str) -> None:
        if called == method and pid:
            seen[0] += 1
            if seen[0] == nth:
                cloudrun.model.watchers.clear()
                sql.watchers.clear()
                threading.Timer(delay, kill, (pid[0],)).start()

    cloudrun.model.faults.slow_operations(1.0)
    if scenario == "database":
        sql.op_seconds = SQL_OPERATION_SECONDS
        sql.watchers.append(lambda verb, path: watcher(f"{verb} /{path.rsplit('/', 1)[-1]}", path))
    else:
        cloudrun.model.watchers.append(watcher)
    outcome = run_trial(spec_file, "gcp", env, point=point, arm=pid.append, disarm=disarm)
    print(f"gcp kill trial {trial}: {outcome}")
    assert outcome.converged, outcome.output
    deployment = deploy(target, CloudRunProvider(settings))
    wanted = {c.resource.name for c in deployment.plan().changes if c.resource.kind == "service"}
    assert {s.service: s.state for s in deployment.status()} == dict.fromkeys(wanted, "ready"), (
        "the re-apply returned before every service was ready"
    )
    assert len(cloudrun.model.services) == len(wanted)
    ((key, instance),) = sql.instances.items()
    database, user = (instance["settings"]["userLabels"][f"multicloud-{k}"] for k in ("database", "user"))
    assert database in sql.databases[key] and user in sql.users[key]
