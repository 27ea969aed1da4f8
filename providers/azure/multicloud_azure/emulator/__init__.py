"""An ARM-compatible HTTPS emulator of Azure Container Instances (container groups).

`AzureEmulator().start()` serves `Microsoft.ContainerInstance/containerGroups` at api-version
2023-05-01 and `Microsoft.DBforPostgreSQL/flexibleServers` at 2026-10-01 (emulator.flexible)
in a background thread, with a generated test certificate and a bearer token,
and returns a `RunningEmulator` whose environment points the `azure-aci` provider at it.
With `run=True` (what `multicloud emulate azure` and the `azure_emulator` fixture use) and a
reachable Docker engine, the groups' containers really run (`emulator.running`).
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from multicloud.contract import RunningEmulator
from multicloud.testing.tls import generate
from multicloud_azure.emulator.acr import AcrBackend
from multicloud_azure.emulator.arm import Fault
from multicloud_azure.emulator.flexible import FlexibleServers
from multicloud_azure.emulator.models import AciBackend
from multicloud_azure.emulator.running import start_runner
from multicloud_azure.emulator.server import ArmServer

__all__ = ["AciBackend", "AzureEmulator", "EmulatorHandle", "Fault"]

TOKEN_ENV = "MULTICLOUD_AZURE_TOKEN"  # noqa: S105 - a variable name, not a secret
ENDPOINT_ENV = "MULTICLOUD_AZURE_ARM_ENDPOINT"
CA_BUNDLE_ENV = "MULTICLOUD_AZURE_CA_BUNDLE"
POSTGRES_NOTE = (
    "flexible servers run PostgreSQL 15 in containers; a server's fqdn resolves inside the "
    "container groups and stands, on this machine, for its own loopback address (port 5432; firewall "
    "rules are kept, not enforced)"
)


@dataclass
class EmulatorHandle:
    """A running emulator in this process: its backend (state, faults, request log) and URL."""

    backend: AciBackend
    endpoint: str
    token: str
    ca_bundle: str
    running: RunningEmulator

    def stop(self) -> None:
        """Stop serving and remove the certificate files."""
        self.running.stop()


class AzureEmulator:
    """Entry point `multicloud.emulators: azure`; `start` serves until `stop` is called."""

    def __init__(self, *, op_seconds: float = 0.05, token: str | None = None, run: bool = False) -> None:
        self.op_seconds = op_seconds
        self.token = token
        self.run = run

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
        """Serve HTTPS on host:port (0 picks a free port) in a daemon thread."""
        return self.serve(host, port).running

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorHandle:
        """Like start, but return the in-process handle tests use to inject faults and count
        requests. A failure to bind leaves no thread and removes the certificate directory."""
        token = self.token or "mc-emulator-" + secrets.token_urlsafe(24)
        backend = AciBackend(token=token, op_seconds=self.op_seconds)
        backend.postgres = FlexibleServers(op_seconds=self.op_seconds)
        notes: tuple[str, ...] = ()
        if self.run:
            backend.runner, note = start_runner()
            notes = (note,)
            if backend.runner is not None:
                from multicloud_docker.dataplane.postgres import PostgresServers

                backend.postgres.plane = PostgresServers(backend.runner.plane)
                notes = (f"{note}; {POSTGRES_NOTE}",)
        directory = tempfile.mkdtemp(prefix="multicloud-azure-emulator-")
        try:
            cert = generate(directory, [host])
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert.cert_file, cert.key_file)

            def wrap(sock: Any) -> Any:
                """Serve TLS on the listening socket; handshakes happen in the handler threads."""
                return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

            backend.acr = AcrBackend(lambda: backend.token, wrap)
            server = ArmServer((host, port), backend, wrap)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            if backend.runner is not None:
                backend.runner.close()
            raise
        thread = threading.Thread(target=server.serve_forever, name="azure-emulator", daemon=True)
        thread.start()
        shown_host = f"[{host}]" if ":" in host else host
        endpoint = f"https://{shown_host}:{server.server_address[1]}"

        def stop() -> None:
            """Shut the server down and remove the certificate directory."""
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            shutil.rmtree(directory, ignore_errors=True)
            if backend.runner is not None:
                backend.runner.close()
            if backend.acr is not None:
                backend.acr.stop()

        environment = {TOKEN_ENV: token, ENDPOINT_ENV: endpoint, CA_BUNDLE_ENV: cert.ca_bundle}
        running = RunningEmulator("azure", endpoint, environment, stop, notes=notes)
        return EmulatorHandle(backend, endpoint, token, cert.ca_bundle, running)
