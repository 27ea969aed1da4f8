"""The Cloud SQL Admin API v1 over REST (google-auth's AuthorizedSession, as the run_v2 REST
transport uses): instances, databases, users and the `sql#operation`s every write returns.

The one module that talks to Cloud SQL; HTTP errors become google.api_core exceptions and then
multicloud's (`client.translate`), once, here. Imported only when a postgres resource is planned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from multicloud.errors import NotFoundError, ProviderError, RetryableError, UserError
from multicloud.retry import RetryPolicy, call_with_retries, wait_for
from multicloud_gcp.client import credentials_for, translate
from multicloud_gcp.cloudsql import PASSING_STATES
from multicloud_gcp.settings import GcpSettings

Json = dict[str, Any]
DEFAULT_ENDPOINT = "https://sqladmin.googleapis.com"
CONFLICT_RETRIES = 30
REUSED_HINT = (
    "Cloud SQL keeps a deleted instance's name for a week and instance names are unique in a project: "
    "give the database another resource name, or delete the instance that has this one"
)


def sql_endpoint(settings: GcpSettings) -> str | None:
    """Where Cloud SQL Admin is: the sql_endpoint setting, an emulator's REST api_endpoint, or
    Google's; None for an emulator reached over gRPC without sql_endpoint (it has no Cloud SQL there)."""
    if settings.sql_endpoint:
        return settings.sql_endpoint
    if settings.emulated:
        return settings.api_endpoint if settings.transport == "rest" else None
    return DEFAULT_ENDPOINT


class SqlAdmin:
    """One project's Cloud SQL instances (waits for every operation it starts)."""

    def __init__(self, settings: GcpSettings) -> None:
        self.settings = settings
        endpoint = sql_endpoint(settings)
        if endpoint is None:
            raise UserError(
                "the target's api_endpoint is an emulator's gRPC port, and Cloud SQL Admin is served over REST",
                hint="set sql_endpoint to the emulator's REST endpoint (what `multicloud emulate gcp` prints first)",
            )
        self.base = f"{endpoint.rstrip('/')}/v1/projects/{quote(settings.project, safe='')}"
        from google.auth.transport.requests import AuthorizedSession

        self._session = AuthorizedSession(credentials_for(settings))  # type: ignore[no-untyped-call]

    def _call(self, method: str, path: str, what: str, body: Json | None = None, **params: str) -> Json:
        """One request; errors translated (a 404 raises google's NotFound, translated to NotFoundError)."""
        from google.api_core import exceptions

        try:
            response = self._session.request(  # type: ignore[no-untyped-call]
                method, self.base + path, json=body, params=params or None, timeout=60
            )
            if response.status_code == 409 and "already exists" in response.text:
                raise UserError(f"{what}: Cloud SQL refused it: {_message(response)}", hint=REUSED_HINT)
            if response.status_code >= 400:
                raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
            return dict(response.json()) if response.content else {}
        except (RetryableError, UserError, ProviderError):
            raise
        except Exception as exc:
            raise translate(exc, what, self.settings) from exc

    def _write(self, method: str, path: str, what: str, body: Json | None = None, **params: str) -> Json:
        """A write that starts an operation, repeated while another operation runs on the
        instance (409 operationInProgress), then waited for."""
        result, _ = call_with_retries(
            lambda: self.wait(self._call(method, path, what, body, **params), what),
            RetryPolicy(attempts=CONFLICT_RETRIES, base_delay=0.2, max_delay=5.0),
            retry_on=lambda exc: "already in progress" in exc.message,
        )
        return result

    def wait(self, operation: Json, what: str) -> Json:
        """Poll an operation until DONE; raise ProviderError with its errors when it failed."""
        if operation.get("status") != "DONE":
            name = operation.get("name")

            def done() -> Json | None:
                found = self._call("GET", f"/operations/{name}", what)
                return found if found.get("status") == "DONE" else None

            operation = wait_for(done, self._polling(), timed_out=lambda: RetryableError(
                f"{what}: Cloud SQL operation {name} is still running"))
        errors = (operation.get("error") or {}).get("errors") or []
        if errors:
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            raise ProviderError(f"{what}: Cloud SQL operation {operation['operationType']} failed: {detail}")
        return operation

    def _polling(self) -> RetryPolicy:
        """How to poll for something Cloud SQL does: from poll_interval, for at most operation_timeout."""
        interval = self.settings.poll_interval
        return RetryPolicy.within(self.settings.operation_timeout, base_delay=interval, max_delay=max(interval, 5.0))

    def get_instance(self, name: str) -> Json | None:
        """An instance, or None when there is none."""
        try:
            return self._call("GET", f"/instances/{name}", f"read Cloud SQL instance {name}")
        except NotFoundError:
            return None

    def list_instances(self) -> list[Json]:
        """Every instance of the project."""
        return list(self._call("GET", "/instances", "list Cloud SQL instances").get("items") or [])

    def insert_instance(self, body: Json) -> Json:
        """Create an instance and wait until it is RUNNABLE."""
        return self._write("POST", "/instances", f"create Cloud SQL instance {body['name']}", body)

    def patch_instance(self, name: str, body: Json) -> Json:
        """Change an instance's settings (or version) and wait."""
        return self._write("PATCH", f"/instances/{name}", f"update Cloud SQL instance {name}", body)

    def delete_instance(self, name: str) -> Json:
        """Delete an instance with its data, and wait."""
        return self._write("DELETE", f"/instances/{name}", f"delete Cloud SQL instance {name}")

    def running_operations(self, instance: str) -> list[Json]:
        """The operations on an instance that are not DONE yet (operations.list, newest first)."""
        found = self._call("GET", "/operations", f"list operations of {instance}", instance=instance)
        return [o for o in found.get("items") or [] if o.get("status") != "DONE"]

    def wait_idle(self, name: str, say: Callable[[str], None]) -> Json:
        """The instance once it is RUNNABLE with no operation running on it (e.g. the create or update of an
        apply that was killed), polled every poll_interval and at most operation_timeout. Raises NotFoundError
        when it is gone, ProviderError in a state it does not leave by itself (FAILED, SUSPENDED), and
        RetryableError when the wait runs out; nothing is changed."""
        said: list[str] = []

        def idle() -> Json | None:
            instance = self.get_instance(name)
            if instance is None:
                raise NotFoundError(f"Cloud SQL instance {name} does not exist")
            state = str(instance.get("state"))
            if state not in PASSING_STATES and state != "RUNNABLE":
                raise ProviderError(f"Cloud SQL instance {name} is {state}: multicloud cannot set it up")
            running = [] if state != "RUNNABLE" else self.running_operations(name)
            if state == "RUNNABLE" and not running:
                return instance
            why = f"it is {state}" if state != "RUNNABLE" else f"{running[0].get('operationType')} runs on it"
            if why not in said:
                said.append(why)
                say(f"waiting for Cloud SQL instance {name}: {why}")
            return None

        return wait_for(idle, self._polling(), timed_out=lambda: RetryableError(
            f"Cloud SQL instance {name} is still busy after {self.settings.operation_timeout:.0f}s"))

    def list_databases(self, instance: str) -> list[str]:
        """The names of an instance's databases."""
        found = self._call("GET", f"/instances/{instance}/databases", f"list databases of {instance}")
        return [str(d["name"]) for d in found.get("items") or []]

    def insert_database(self, instance: str, name: str) -> Json:
        """Create a database and wait."""
        return self._write("POST", f"/instances/{instance}/databases", f"create database {name}", {"name": name})

    def list_users(self, instance: str) -> list[str]:
        """The names of an instance's users."""
        found = self._call("GET", f"/instances/{instance}/users", f"list users of {instance}")
        return [str(u["name"]) for u in found.get("items") or []]

    def set_user(self, instance: str, name: str, password: str) -> Json:
        """Create a user (users.insert) or set its password (users.update ?name=), and wait."""
        body = {"name": name, "password": password}
        if name not in self.list_users(instance):
            return self._write("POST", f"/instances/{instance}/users", f"create user {name}", body)
        return self._write("PUT", f"/instances/{instance}/users", f"set the password of {name}", body, name=name)


def _message(response: Any) -> str:
    """The message of a Google error body (or the raw text)."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(response.text)[:300]
