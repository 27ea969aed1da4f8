"""Managed PostgreSQL for the emulators' data planes (Azure flexible servers, Cloud SQL).

A database server is one unit whose one member runs PostgreSQL 15 (Debian bookworm's; a server
asking for another major version runs 15 and reports what it asked for) from an image built on
the engine from the `debian:bookworm-slim` stand-in, with no registry. Its data lives on a named
volume that outlives the container (an update or restart keeps it) and is removed only when the
server is deleted (`purge`). The administrator's password reaches the container as a file and is
set again at every start, so changing it is re-running the unit. It trades durability for speed
(fsync off: committed data survives a killed container, not a crash of this machine). Databases and users are made by
running psql inside the container over its local socket; clients use TCP with SCRAM passwords,
with or without TLS (Debian's snake-oil certificate: `sslmode=require` works, verifying does not).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multicloud.errors import MulticloudError, ProviderError
from multicloud_docker.client import guard
from multicloud_docker.dataplane.desired import Member, Probe, Publish, Unit

if TYPE_CHECKING:
    from multicloud_docker.dataplane.runner import DataPlane

MEMBER = "postgres"
PORT = 5432
REPOSITORY = "multicloud/emulated-postgres"
SECRETS = "/run/multicloud"
SOCKET_DIR = "/var/run/postgresql"
# The first RUN line is the example's db image's, letter for letter: the engine's layer cache serves both.
DOCKERFILE = """FROM debian:bookworm-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15 \\
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \\
 && install -d -o postgres -g postgres -m 0775 /var/run/postgresql
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
USER postgres
# A data directory made once at build: a server's first start copies it (initdb takes seconds)
RUN initdb -D /var/lib/postgresql/template -U postgres --auth-local=trust --auth-host=scram-sha-256 \\
    -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null \\
 && printf 'host all all 0.0.0.0/0 scram-sha-256\\nhost all all ::/0 scram-sha-256\\n' \\
    >>/var/lib/postgresql/template/pg_hba.conf
COPY start /usr/local/bin/emulated-postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["emulated-postgres"]
"""
START = """#!/bin/sh
# First start: the data directory from the image's template (local socket: trust, TCP: SCRAM), the
# administrator (a superuser) and the group role the service gives its users. Every start: the
# administrator's password from the file. Then serve, with TLS.
set -eu
password=$(cat /run/multicloud/admin-password)
[ -s "$PGDATA/PG_VERSION" ] || cp -a /var/lib/postgresql/template/. "$PGDATA/"
[ -e "$PGDATA/multicloud.initialised" ] || first=1
fast="-c fsync=off -c full_page_writes=off"
pg_ctl -D "$PGDATA" -o "-c listen_addresses='' $fast" -w start >/dev/null
{  # printf, not echo: dash's echo reads backslashes
  if [ -n "${first:-}" ]; then
    printf '%s\\n' "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') AS missing \\gset" \\
      '\\if :missing' 'CREATE ROLE :"u" SUPERUSER LOGIN;' '\\endif' \\
      "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'g') AS missing \\gset" \\
      '\\if :missing' 'CREATE ROLE :"g" NOLOGIN CREATEDB CREATEROLE;' '\\endif' 'GRANT :"g" TO :"u";'
  fi
  printf '%s\\n' '\\getenv pw PG_ADMIN_PASSWORD' 'ALTER ROLE :"u" PASSWORD :'"'"'pw'"'"';'
} | PG_ADMIN_PASSWORD=$password psql -X -q -v ON_ERROR_STOP=1 -v u="$PG_ADMIN_USER" -v g="$PG_GROUP_ROLE" -d postgres
touch "$PGDATA/multicloud.initialised"
pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
# TLS with Debian's snake-oil pair (clients that require TLS get it; verifying it fails, as it should)
snakeoil=ssl-cert-snakeoil
tls="-c ssl=on -c ssl_cert_file=/etc/ssl/certs/$snakeoil.pem -c ssl_key_file=/etc/ssl/private/$snakeoil.key"
# shellcheck disable=SC2086 # $fast and $tls are several options
exec postgres -D "$PGDATA" $fast $tls -c listen_addresses='*' -c port=5432 \\
  -c unix_socket_directories=/var/run/postgresql \\
  -c log_destination=stderr -c logging_collector=off -c log_min_messages=warning -c shared_buffers=32MB
"""


def image_reference() -> str:
    """The image's tag: its content's digest, so a changed recipe is a new image."""
    digest = hashlib.sha256((DOCKERFILE + START).encode()).hexdigest()[:12]
    return f"{REPOSITORY}:15-{digest}"


def _context() -> bytes:
    """The build context: the Dockerfile and the start script (executable)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text, mode in (("Dockerfile", DOCKERFILE, 0o644), ("start", START, 0o755)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_image(api: object) -> str:
    """Build the server image unless the engine has it; return its reference. Raises
    ProviderError naming the failing step (a failed build leaves only the engine's build cache)."""
    reference = image_reference()
    try:
        with guard(f"inspecting image {reference}"):
            api.inspect_image(reference)  # type: ignore[attr-defined]
        return reference
    except MulticloudError:
        pass
    log: list[str] = []
    with guard(f"building {reference}"):
        stream = api.build(  # type: ignore[attr-defined]
            fileobj=io.BytesIO(_context()), custom_context=True, tag=reference, rm=True, forcerm=True,
            decode=True, timeout=3600,
        )
        for chunk in stream:
            if "error" in chunk:
                tail = "\n".join(line for line in log[-10:] if line.strip())
                raise ProviderError(f"building the emulated PostgreSQL image failed: {chunk['error']}\n{tail}")
            log.extend(str(chunk.get("stream") or "").splitlines())
    return reference


@dataclass(frozen=True)
class Server:
    """One database server as a data plane runs it."""

    key: str
    admin: str
    password: str
    group_role: str
    """The role the service gives its users and databases (azure_pg_admin, cloudsqlsuperuser)."""
    host_ip: str
    """The loopback address this machine reaches the server at (port 5432)."""
    network: str | None = None
    aliases: tuple[str, ...] = ()
    cpu: float | None = None
    memory: int | None = None
    sockets: str | None = None
    """A shared volume for the server's socket directory: clients mounting it connect without TCP
    (Cloud Run's /cloudsql/CONNECTION)."""


def server_unit(server: Server, image: str) -> Unit:
    """The unit that runs a server."""
    member = Member(
        MEMBER,
        image,
        env={"PG_ADMIN_USER": server.admin, "PG_GROUP_ROLE": server.group_role},
        files={SECRETS: {"admin-password": server.password.encode()}},
        volumes={"data": "/var/lib/postgresql/data"},
        shared={server.sockets: SOCKET_DIR} if server.sockets else {},
        cpu=server.cpu,
        memory=server.memory,
        probe=Probe(("CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(PORT)), interval=1, timeout=3, retries=3),
    )
    publish = (Publish(PORT, host_ip=server.host_ip),)
    return Unit(server.key, (member,), publish=publish, network=server.network, aliases=server.aliases)


class PostgresServers:
    """The database servers of one emulator on its data plane; the image is built on first use,
    in the background (a server is not ready before)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self._lock = threading.Lock()
        self._image = ""
        self._image_error = ""
        self._building = False
        self._waiting: dict[str, Server] = {}

    def run(self, server: Server) -> None:
        """Run (or re-run with new settings or password) a server; its data stays."""
        with self._lock:
            if not self._image:
                self._waiting[server.key] = server
                if not self._building:
                    self._building = True
                    threading.Thread(target=self._build, name="postgres-image", daemon=True).start()
                return
            image = self._image
        self.plane.apply(server_unit(server, image))

    def _build(self) -> None:
        """Build the image, then run the servers that waited for it."""
        try:
            image = ensure_image(self.plane.client())
        except MulticloudError as exc:
            with self._lock:
                self._image_error, self._building = exc.message, False
            return
        with self._lock:
            self._image, self._building = image, False
            waiting, self._waiting = self._waiting, {}
        for server in waiting.values():
            self.plane.apply(server_unit(server, image))

    def stop(self, key: str) -> None:
        """Stop a server's container; its data stays."""
        with self._lock:
            self._waiting.pop(key, None)
        self.plane.remove(key)

    def delete(self, key: str) -> None:
        """Remove a server and its data."""
        with self._lock:
            self._waiting.pop(key, None)
        self.plane.purge(key)

    def ready(self, key: str) -> bool | str:
        """True once the server answers, False while it starts, else why it cannot start."""
        with self._lock:
            if self._image_error:
                return self._image_error
            if key in self._waiting:
                return False
        state = self.plane.state(key)
        if state.error:
            return state.error
        member = state.members.get(MEMBER)
        return bool(state.converged and member is not None and member.state == "running" and member.health == "healthy")

    def address(self, key: str) -> str:
        """The server's address on its network ('' before it runs)."""
        return self.plane.state(key).address

    def sql(self, key: str, script: str, values: Mapping[str, str]) -> None:
        """Run a psql script as the administrator; `values` become psql variables read with
        \\getenv (quote them as :"name" or :'name'). Raises ProviderError with psql's message."""
        lines = [f"\\getenv {name} MC_{name.upper()}" for name in values]
        env = {f"MC_{name.upper()}": value for name, value in values.items()}
        env["MC_SCRIPT"] = "\n".join([*lines, script])
        psql = "psql -X -q -v ON_ERROR_STOP=1 -d postgres 2>&1"
        argv = ["sh", "-c", 'printf "%s\\n" "$MC_SCRIPT" | ' + psql]
        code, output = self.plane.run_command(key, MEMBER, argv, env)
        if code != 0:
            raise ProviderError(f"the database server refused it: {output.strip()}")


def create_database(servers: PostgresServers, key: str, name: str, owner: str) -> None:
    """Create a database owned by a role, unless it exists."""
    script = (
        "SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS missing \\gset\n"
        "\\if :missing\nCREATE DATABASE :\"db\" OWNER :\"owner\";\n\\endif"
    )
    servers.sql(key, script, {"db": name, "owner": owner})


def drop_database(servers: PostgresServers, key: str, name: str) -> None:
    """Drop a database (its sessions are ended first), if it exists."""
    servers.sql(key, 'DROP DATABASE IF EXISTS :"db" WITH (FORCE);', {"db": name})


def ensure_user(servers: PostgresServers, key: str, name: str, password: str, group_role: str) -> None:
    """Create a login role in the group role, or set its password if it exists."""
    script = (
        "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') AS missing \\gset\n"
        "\\if :missing\nCREATE ROLE :\"name\" LOGIN PASSWORD :'pw' IN ROLE :\"grp\";\n"
        "\\else\nALTER ROLE :\"name\" LOGIN PASSWORD :'pw';\n\\endif"
    )
    servers.sql(key, script, {"name": name, "pw": password, "grp": group_role})


def drop_user(servers: PostgresServers, key: str, name: str) -> None:
    """Drop a login role, if it exists."""
    servers.sql(key, 'DROP ROLE IF EXISTS :"name";', {"name": name})


def in_background(action: Callable[[], object], name: str) -> Callable[[], bool | str]:
    """Run a server's work (a database or user change) in a daemon thread named `name`, for an
    emulator's long-running operation: the check returned is False until it ends, then True or its
    error's message."""
    outcome: list[bool | str] = []

    def run() -> None:
        try:
            action()
            outcome.append(True)
        except Exception as exc:
            outcome.append(str(getattr(exc, "message", exc)))

    threading.Thread(target=run, name=name, daemon=True).start()
    return lambda: outcome[0] if outcome else False
