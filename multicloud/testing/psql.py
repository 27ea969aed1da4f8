"""SQL run with this machine's psql: how tests see that an emulated managed PostgreSQL really serves."""

from __future__ import annotations

import os
import subprocess


def psql(conninfo: str, sql: str, *, password: str | None = None,
         timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run SQL with psql (no psqlrc, unaligned tuples only) against a connection string or URL; the password,
    when given, travels in PGPASSWORD (no other PG* variable of this process does), and a server that does
    not answer fails the connection within 5 s. The completed process holds the output and the exit code."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "5"}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(["psql", "-X", "-tA", "-d", conninfo, "-c", sql], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
