"""REST paths of the Cloud SQL Admin API v1 (sqladmin.googleapis.com/v1/projects/...), served on
the emulator's REST port beside Cloud Run's /v2 and Secret Manager's /v1 secrets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from multicloud_gcp.emulator.cloudsql import CloudSql, Json
from multicloud_gcp.emulator.faults import ApiError

_P = r"^/v1/projects/(?P<p>[^/]+)"
_I = _P + r"/instances/(?P<i>[^/:]+)"
Handler = Callable[[CloudSql, dict[str, str], dict[str, str], Json], Json]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (verb, re.compile(pattern + "$"), handler)
    for verb, pattern, handler in [
        ("POST", _P + "/instances", lambda s, m, q, b: s.insert(m["p"], b)),
        ("GET", _P + "/instances", lambda s, m, q, b: s.list(m["p"])),
        ("GET", _I, lambda s, m, q, b: s.get(m["p"], m["i"])),
        ("PATCH", _I, lambda s, m, q, b: s.patch(m["p"], m["i"], b)),
        ("DELETE", _I, lambda s, m, q, b: s.delete(m["p"], m["i"])),
        ("POST", _I + "/restart", lambda s, m, q, b: s.restart(m["p"], m["i"])),
        ("POST", _I + "/databases", lambda s, m, q, b: s.insert_database(m["p"], m["i"], b)),
        ("GET", _I + "/databases", lambda s, m, q, b: s.list_databases(m["p"], m["i"])),
        ("GET", _I + "/databases/(?P<d>[^/]+)", lambda s, m, q, b: s.get_database(m["p"], m["i"], m["d"])),
        ("DELETE", _I + "/databases/(?P<d>[^/]+)", lambda s, m, q, b: s.delete_database(m["p"], m["i"], m["d"])),
        ("POST", _I + "/users", lambda s, m, q, b: s.insert_user(m["p"], m["i"], b)),
        ("GET", _I + "/users", lambda s, m, q, b: s.list_users(m["p"], m["i"])),
        ("PUT", _I + "/users", lambda s, m, q, b: s.update_user(m["p"], m["i"], _named(q), b)),
        ("DELETE", _I + "/users", lambda s, m, q, b: s.delete_user(m["p"], m["i"], _named(q))),
        ("GET", _P + "/operations/(?P<o>[^/]+)", lambda s, m, q, b: s.get_operation(m["p"], m["o"])),
        ("GET", _P + "/operations", lambda s, m, q, b: s.list_operations(m["p"], q.get("instance", ""))),
    ]
]


def serves(path: str) -> bool:
    """True for a Cloud SQL Admin path."""
    return path.startswith("/v1/projects/") and ("/instances" in path or "/operations" in path)


def route(sql: CloudSql | None, verb: str, path: str, query: str, body: Any) -> Json:
    """Answer one Cloud SQL Admin request; ApiError (sqladmin's shape) for what it refuses."""
    if sql is None:
        raise ApiError("NOT_FOUND", "Cloud SQL Admin is not served by this emulator.")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    for route_verb, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_verb == verb:
            answer = handler(sql, match.groupdict(), params, body if isinstance(body, dict) else {})
            for watcher in list(sql.watchers):
                watcher(verb, path)
            return answer
    raise ApiError("NOT_FOUND", f"The requested URL {path} was not found on this server ({verb}).")


def _named(query: dict[str, str]) -> str:
    """The user a users.update/delete names in ?name=."""
    name = query.get("name", "")
    if not name:
        raise ApiError("INVALID_ARGUMENT", "Invalid request: the user name (?name=) is required.")
    return name
