"""The emulated Cloud Run control plane: services, revisions and operations, apart from any transport.

Every method takes and returns camelCase JSON dicts (the REST wire form) and raises ApiError;
the REST and gRPC front ends only convert. State is kept in memory (moto style).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from multicloud_gcp.emulator import validate
from multicloud_gcp.emulator.cloudlogging import CloudLogging
from multicloud_gcp.emulator.defaults import fill_defaults
from multicloud_gcp.emulator.faults import ApiError, Faults
from multicloud_gcp.emulator.secretmanager import SecretManager
from multicloud_gcp.emulator.shapes import condition, now, page
from multicloud_gcp.emulator.traffic import service_urls, traffic_statuses
from multicloud_gcp.reports import ready_revisions
from multicloud_gcp.settings import EMULATOR_PROJECT_NUMBER

if TYPE_CHECKING:
    from multicloud_gcp.emulator.running import RevisionRunner

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
MUTATING = frozenset({"CreateService", "UpdateService", "DeleteService"})
REVISION_FIELDS = (
    "scaling",
    "containers",
    "volumes",
    "timeout",
    "serviceAccount",
    "maxInstanceRequestConcurrency",
    "sessionAffinity",
    "executionEnvironment",
    "labels",
    "annotations",
    "vpcAccess",
)
Json = dict[str, Any]


class CloudRunModel:
    """Services, revisions and long-running operations of every project and region."""

    def __init__(self, project_number: str = EMULATOR_PROJECT_NUMBER, known_secrets: set[str] | None = None) -> None:
        self.project_number = project_number
        self.known_secrets = known_secrets
        self.services: dict[str, Json] = {}
        self.revisions: dict[str, Json] = {}
        self.operations: dict[str, Json] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults = Faults()
        self.watchers: list[Callable[[str, str], None]] = []
        """Called with (method, resource) once a request took effect (kill trials)."""
        self._pending: dict[str, tuple[float, Callable[[], Json]]] = {}
        self._lock = threading.RLock()
        self._counter = 0
        self.runner: RevisionRunner | None = None
        """The data plane that runs serving revisions; None serves the API only."""
        self._gates: dict[str, Callable[[], bool | str]] = {}
        self.secrets = SecretManager(project_number)
        """The emulated Secret Manager."""
        self.secret_values = self.secrets.values
        """Secret ID -> value of its latest version (setting one adds a version)."""
        self.logging = CloudLogging()
        """The emulated Cloud Logging: what the data plane's instances printed."""

    # --- bookkeeping ---------------------------------------------------------------------

    def mutations(self) -> list[tuple[str, str]]:
        """The requests that changed (or tried to change) state, in order."""
        return [r for r in self.requests if r[0] in MUTATING]

    def call(self, method: str, resource: str, handler: Callable[[], Json]) -> Json:
        """Record a request, raise an injected fault for it, settle due operations, run it."""
        with self._lock:
            self.requests.append((method, resource))
        if self.faults.request_delay:
            time.sleep(self.faults.request_delay)
        self.faults.check(method)
        with self._lock:
            self._settle()
            result = handler()
        for watcher in list(self.watchers):
            watcher(method, resource)
        return result

    def _settle(self) -> None:
        """Finish every operation whose time has come."""
        now = time.monotonic()
        for name, (due, finish) in list(self._pending.items()):
            gate = self._gates.get(name)
            verdict = gate() if gate is not None and due <= now else True
            if due <= now and verdict is not False:
                del self._pending[name]
                self._gates.pop(name, None)
                self._complete(name, finish if verdict is True else self._failing(name, str(verdict)))

    def _complete(self, name: str, finish: Callable[[], Json]) -> None:
        """Finish an operation with the service as its response, or with the error finishing raised."""
        operation = self.operations[name]
        try:
            operation["response"] = {"@type": SERVICE_TYPE, **finish()}
        except ApiError as exc:
            operation["error"] = exc.status_json()
        operation["done"] = True

    def _operation(
        self, parent: str, service: Json, finish: Callable[[], Json], gate: Callable[[], bool | str] | None = None
    ) -> Json:
        """Start an operation; done at once unless operations are slowed or a `gate` (the data
        plane: the new revision's instance accepts on its port) says not yet (True, False, or why it failed)."""
        name = f"{parent}/operations/{uuid.uuid4()}"
        self.operations[name] = {
            "name": name,
            "metadata": {"@type": SERVICE_TYPE, **copy.deepcopy(service)},
            "done": False,
        }
        delay = self.faults.operation_delay
        if gate is not None:
            self._gates[name] = gate
        if delay > 0 or gate is not None:
            self._pending[name] = (time.monotonic() + delay, finish)
            self._settle()
        else:
            self._complete(name, finish)
        return copy.deepcopy(self.operations[name])

    def _tick(self) -> int:
        """A counter that makes revision suffixes unique."""
        self._counter += 1
        return self._counter

    # --- services ------------------------------------------------------------------------

    def _service(self, name: str) -> Json:
        """The stored service, or NOT_FOUND."""
        found = self.services.get(name)
        if found is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        return found

    def _revision_states(self, service: str) -> dict[str, bool]:
        """Short name -> Ready, of a service's revisions."""
        own = [body for body in self.revisions.values() if body["service"] == service]
        ready = set(ready_revisions(own))
        return {str(body["name"]).rsplit("/", 1)[-1]: body["name"] in ready for body in own}

    def create_service(self, parent: str, service_id: str, body: Json, validate_only: bool = False) -> Json:
        """Create a service and its first revision; returns the operation."""
        validate.check_service_id(service_id)
        name = f"{parent}/services/{service_id}"
        if name in self.services:
            raise ApiError("ALREADY_EXISTS", f"Resource '{name}' already exists.")
        validate.check_service(body, {})
        if validate_only:
            return {"name": f"{parent}/operations/validate", "done": True}
        project, region = parent.split("/")[1], parent.rsplit("/", 1)[-1]
        uri, urls = service_urls(service_id, project, self.project_number, region)
        stamp = now()
        service = {
            **copy.deepcopy(body),
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            "createTime": stamp,
            "updateTime": stamp,
            "creator": "emulator@multicloud.local",
            "lastModifier": "emulator@multicloud.local",
            "uri": uri,
            "urls": urls,
        }
        fill_defaults(service, self.project_number)
        service.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
        service.setdefault("traffic", [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
        self.services[name] = service
        self._roll_out(service, new_revision=True)
        return self._operation(parent, service, lambda: self._become_ready(name), self._started(service, True))

    def get_service(self, name: str) -> Json:
        """Return one service."""
        return copy.deepcopy(self._service(name))

    def list_services(self, parent: str, page_size: int = 0, page_token: str = "") -> Json:
        """Return one page of the services under a parent, by name."""
        names = sorted(n for n in self.services if n.startswith(parent + "/services/"))
        return page(names, self.services, "services", page_size, page_token)

    def update_service(self, body: Json, allow_missing: bool = False, validate_only: bool = False) -> Json:
        """Change a service; a changed template makes a new revision. Returns the operation."""
        name = str(body.get("name", ""))
        if name not in self.services:
            if not allow_missing:
                raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
            parent, _, service_id = name.rpartition("/services/")
            return self.create_service(parent, service_id, {k: v for k, v in body.items() if k != "name"})
        current = self.services[name]
        if body.get("etag") and body["etag"] != current.get("etag"):
            raise ApiError("ABORTED", f"Etag mismatch for '{name}': the service changed since it was read.")
        validate.check_service(body, self._revision_states(name))
        if validate_only:
            return {"name": f"{name.rpartition('/services/')[0]}/operations/validate", "done": True}
        body = copy.deepcopy(body)
        fill_defaults(body, self.project_number)
        changed_template = _canonical(body.get("template")) != _canonical(current.get("template"))
        for key in (
            "labels",
            "annotations",
            "ingress",
            "template",
            "traffic",
            "scaling",
            "invokerIamDisabled",
            "description",
            "launchStage",
            "binaryAuthorization",
            "customAudiences",
            "defaultUriDisabled",
        ):
            if key in body:
                current[key] = copy.deepcopy(body[key])
            else:
                current.pop(key, None)
        current.setdefault("traffic", [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
        current["generation"] = str(int(current["generation"]) + 1)
        current["updateTime"] = now()
        self._roll_out(current, new_revision=changed_template)
        gate = self._started(current, changed_template)
        return self._operation(name.rpartition("/services/")[0], current, lambda: self._become_ready(name), gate)

    def delete_service(self, name: str, validate_only: bool = False) -> Json:
        """Delete a service and its revisions (when its operation completes). Returns the operation."""
        service = self._service(name)
        if validate_only:
            return {"name": f"{name.rpartition('/services/')[0]}/operations/validate", "done": True}
        service["reconciling"] = True
        service["deleteTime"] = now()

        def finish() -> Json:
            """Remove the service and its revisions; return what was deleted."""
            gone = self.services.pop(name, None) or service
            for revision in [r for r, body in self.revisions.items() if body["service"] == name]:
                del self.revisions[revision]
            if self.runner is not None:
                self.runner.remove(gone)
            return copy.deepcopy(gone)

        return self._operation(name.rpartition("/services/")[0], service, finish)

    def _roll_out(self, service: Json, new_revision: bool) -> None:
        """Mark a service reconciling; create a revision when its template changed."""
        name = service["name"]
        service_id = name.rsplit("/", 1)[-1]
        if new_revision:
            index = len([r for r in self.revisions.values() if r["service"] == name]) + 1
            suffix = hashlib.sha256(f"{name}{self._tick()}".encode()).hexdigest()[:3]
            short = (service.get("template") or {}).get("revision") or f"{service_id}-{index:05d}-{suffix}"
            template = service.get("template") or {}
            revision = {key: copy.deepcopy(template[key]) for key in REVISION_FIELDS if key in template}
            revision.update(
                {
                    "name": f"{name}/revisions/{short}",
                    "uid": str(uuid.uuid4()),
                    "generation": "1",
                    "service": name,
                    "createTime": now(),
                    "reconciling": True,
                    "conditions": [condition("Ready", "CONDITION_RECONCILING")],
                }
            )
            self.revisions[revision["name"]] = revision
            service["latestCreatedRevision"] = revision["name"]
        service["reconciling"] = True
        service["etag"] = f'"{uuid.uuid4().hex[:16]}"'
        service["terminalCondition"] = condition("Ready", "CONDITION_RECONCILING", "Deploying revision.")
        service["conditions"] = [
            condition("ConfigurationsReady", "CONDITION_RECONCILING"),
            condition("RoutesReady", "CONDITION_RECONCILING"),
        ]

    def _failing(self, operation: str, message: str) -> Callable[[], Json]:
        """An operation's finish that fails it, its service and its revision: the instances did not start."""

        def finish() -> Json:
            name = self.operations[operation]["metadata"].get("name", "")
            service = self.services.get(name)
            if service is not None:
                revision = self.revisions.get(service.get("latestCreatedRevision", ""), {})
                service.update(reconciling=False, terminalCondition=condition("Ready", "CONDITION_FAILED", message))
                revision.update(reconciling=False, conditions=[condition("Ready", "CONDITION_FAILED", message)])
            raise ApiError("FAILED_PRECONDITION", message)

        return finish

    def _started(self, service: Json, new_revision: bool) -> Callable[[], bool | str] | None:
        """With a data plane, start a new revision's instances now and return the gate that
        holds the rollout until one accepts on its port (Cloud Run's startup probe)."""
        if self.runner is None or not new_revision or self._missing_secret(service):
            return None
        revision = self.revisions[service["latestCreatedRevision"]]
        return self.runner.prestart(service, revision, self.secret_values)

    def _missing_secret(self, service: Json) -> str | None:
        """The first referenced secret neither in known_secrets nor in Secret Manager (None when
        secrets are not checked)."""
        if self.known_secrets is None:
            return None
        known = self.known_secrets | set(self.secret_values)
        for container in (service.get("template") or {}).get("containers") or []:
            for env in container.get("env") or []:
                secret = ((env.get("valueSource") or {}).get("secretKeyRef") or {}).get("secret")
                if secret and str(secret).rsplit("/", 1)[-1] not in known:
                    return str(secret)
        return None

    def _become_ready(self, name: str) -> Json:
        """Finish a rollout: the latest revision serves (or fails), traffic is resolved."""
        service = self._service(name)
        revision = self.revisions.get(service.get("latestCreatedRevision", ""), {})
        service["reconciling"] = False
        service["observedGeneration"] = service["generation"]
        missing = self._missing_secret(service)
        if missing:
            message = (
                f"Revision '{revision.get('name', '').rsplit('/', 1)[-1]}' is not ready and cannot serve "
                f"traffic. Secret {missing}/versions/latest was not found"
            )
            service["terminalCondition"] = condition("Ready", "CONDITION_FAILED", message)
            revision.update(reconciling=False, conditions=[condition("Ready", "CONDITION_FAILED", message)])
            raise ApiError("FAILED_PRECONDITION", message)
        revision.update(reconciling=False, conditions=[condition("Ready", "CONDITION_SUCCEEDED")])
        service["latestReadyRevision"] = revision.get("name", service.get("latestReadyRevision", ""))
        service["terminalCondition"] = condition("Ready", "CONDITION_SUCCEEDED")
        service["conditions"] = [
            condition("ConfigurationsReady", "CONDITION_SUCCEEDED"),
            condition("RoutesReady", "CONDITION_SUCCEEDED"),
        ]
        service["trafficStatuses"] = traffic_statuses(service)
        if self.runner is not None:
            self.runner.sync(service, self.revisions, self.secret_values)
        return copy.deepcopy(service)

    # --- revisions and operations --------------------------------------------------------

    def get_revision(self, name: str) -> Json:
        """Return one revision."""
        if name not in self.revisions:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        return copy.deepcopy(self.revisions[name])

    def list_revisions(self, parent: str, page_size: int = 0, page_token: str = "") -> Json:
        """Return one page of a service's revisions, newest first."""
        self._service(parent)
        names = [r for r, body in self.revisions.items() if body["service"] == parent][::-1]
        return page(names, self.revisions, "revisions", page_size, page_token)

    def get_operation(self, name: str) -> Json:
        """Return an operation as it is now."""
        if name not in self.operations:
            raise ApiError("NOT_FOUND", f"Operation '{name}' was not found")
        return copy.deepcopy(self.operations[name])

    def wait_operation(self, name: str, timeout: float = 60.0) -> Json:
        """Block (outside the lock) until an operation is done or the timeout passes."""
        deadline = time.monotonic() + min(timeout, 60.0)
        while True:
            with self._lock:
                self._settle()
                operation = self.get_operation(name)
            if operation.get("done") or time.monotonic() >= deadline:
                return operation
            time.sleep(0.01)

    def list_operations(self, parent: str, page_size: int = 0, page_token: str = "") -> Json:
        """Return one page of the operations under projects/P/locations/R."""
        names = [n for n in self.operations if n.startswith(parent + "/operations/")]
        return page(names, self.operations, "operations", page_size, page_token)

    def delete_operation(self, name: str) -> Json:
        """Forget an operation."""
        self.get_operation(name)
        del self.operations[name]
        self._pending.pop(name, None)
        return {}


def _canonical(value: Any) -> str:
    """A stable text form of a JSON value, for comparing templates."""
    return json.dumps(value or {}, sort_keys=True)
