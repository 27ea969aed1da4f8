"""The Cloud Run emulator: Admin API v2 Services, Revisions and Operations over REST and gRPC.

`CloudRunEmulator().start()` serves one in-memory `CloudRunModel` on two ports (REST, gRPC),
and the Cloud SQL Admin API v1 (`emulator.cloudsql`) on the REST port;
tests reach the model (request log, faults, slow operations) through the returned handle, and
another process through the REST control API under /_emulator/. With `run=True` (what
`multicloud emulate gcp` and the `gcp_emulator` fixture use) and a reachable Docker engine,
serving revisions run as containers behind a local TLS front (`emulator.running`, `emulator.front`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multicloud.contract import RunningEmulator
from multicloud.emulators import start_data_plane
from multicloud_gcp.emulator import artifacts
from multicloud_gcp.emulator.cloudsql import CloudSql
from multicloud_gcp.emulator.faults import ApiError, Faults
from multicloud_gcp.emulator.model import CloudRunModel
from multicloud_gcp.environment import ACCESS_TOKEN_ENV, API_ENDPOINT_ENV, PROJECT_NUMBER_ENV, REGISTRY_ENV
from multicloud_gcp.settings import EMULATOR_PROJECT_NUMBER

if TYPE_CHECKING:
    from multicloud_gcp.emulator.front import Certificates, Front
    from multicloud_gcp.emulator.running import RevisionRunner

CLOUDSQL_NOTE = (
    "data plane: Cloud SQL instances run PostgreSQL 15 in containers; an instance's PRIMARY address is a loopback "
    "address of its own (port 5432), its PRIVATE address answers Cloud Run instances"
)
__all__ = ["ApiError", "CloudRunEmulator", "CloudRunModel", "Faults", "RunningCloudRun"]


@dataclass(frozen=True)
class RunningCloudRun(RunningEmulator):
    """A started Cloud Run emulator: REST at `endpoint`, gRPC at `grpc_endpoint`, and its model."""

    grpc_endpoint: str
    model: CloudRunModel
    cloudsql: CloudSql | None = None
    """The emulated Cloud SQL Admin API (served on the REST port under /v1/projects/...)."""
    front: str = ""
    """host:port of the TLS front that serves every service URL (empty without a data plane)."""
    front_ca: str = ""
    """The CA file the front's certificates chain to."""

    def settings(
        self, transport: str = "rest", project: str = "demo-project", region: str = "europe-west1"
    ) -> dict[str, str]:
        """Target settings that point the gcp-cloudrun provider at this emulator."""
        endpoint = self.endpoint if transport == "rest" else self.grpc_endpoint
        sql = {} if transport == "rest" else {"sql_endpoint": self.endpoint}  # Cloud SQL Admin: REST only
        return {
            **sql,
            "project": project,
            "region": region,
            "api_endpoint": endpoint,
            "transport": transport,
            "credentials": "anonymous",
        }


class CloudRunEmulator:
    """Factory registered under `multicloud.emulators` as `gcp`."""

    def __init__(
        self, project_number: str = EMULATOR_PROJECT_NUMBER, known_secrets: set[str] | None = None, *, run: bool = False
    ) -> None:
        self.project_number = project_number
        self.known_secrets = known_secrets
        self.run = run

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningCloudRun:
        """Serve REST on `port` and gRPC on `port + 1` (both free ones when port is 0)."""
        from multicloud_gcp.emulator import grpcserve, rest

        model = CloudRunModel(self.project_number, self.known_secrets)
        registry, registry_note = artifacts.start()
        front, notes = self._data_plane(model) if self.run else (None, ())
        if registry is not None and model.runner is not None:
            model.runner.pull_auth = registry.pull_auth
        cloudsql = CloudSql()
        if model.runner is not None:
            from multicloud_docker.dataplane.postgres import PostgresServers

            from multicloud_gcp.emulator.running import NETWORK

            cloudsql.plane, cloudsql.network = PostgresServers(model.runner.plane), NETWORK
            notes = (*notes, CLOUDSQL_NOTE)
        try:
            http_server, rest_port = rest.serve(model, host, port, cloudsql)
        except Exception:
            _stop_data_plane(model, front)
            if registry is not None:
                registry.stop()
            raise
        try:
            grpc_server, grpc_port = grpcserve.serve(model, host, port + 1 if port else 0)
        except Exception:
            http_server.shutdown()
            _stop_data_plane(model, front)
            if registry is not None:
                registry.stop()
            raise

        def stop() -> None:
            grpc_server.stop(grace=None)
            http_server.shutdown()
            http_server.server_close()
            _stop_data_plane(model, front)
            if registry is not None:
                registry.stop()

        rest_url, grpc_url = f"http://{host}:{rest_port}", f"http://{host}:{grpc_port}"
        return RunningCloudRun(
            name="gcp",
            endpoint=rest_url,
            environment={API_ENDPOINT_ENV: rest_url, PROJECT_NUMBER_ENV: self.project_number,
                         **({REGISTRY_ENV: registry.endpoint, ACCESS_TOKEN_ENV: registry.token} if registry else {})},
            stop=stop,
            notes=(f"gRPC is served at {grpc_url}: set api_endpoint to it and transport: grpc to use it", *notes,
                   registry_note),
            grpc_endpoint=grpc_url,
            model=model,
            cloudsql=cloudsql,
            front=front.address if front is not None else "",
            front_ca=front.certificates.ca_bundle if front is not None else "",
        )

    @staticmethod
    def _data_plane(model: CloudRunModel) -> tuple[Front | None, tuple[str, ...]]:
        """Start the data plane and its TLS fronts for a model; None and why not when it cannot run."""
        from multicloud_gcp.emulator.front import Certificates, Front
        from multicloud_gcp.emulator.running import RevisionRunner

        plane, why = start_data_plane("gcp")
        if plane is None:
            return None, (str(why),)
        model.runner = RevisionRunner(plane)
        model.runner.attach(model.logging)
        try:
            certificates = Certificates(tempfile.mkdtemp(prefix="multicloud-gcp-front-"))
            front = Front(model.runner, certificates)
        except BaseException:
            _stop_data_plane(model, None)
            raise
        note = (
            f"data plane: serving revisions run as real containers on the local Docker engine; every service URL "
            f"https://HOST stands for the TLS front at https://{front.address} (send Host: HOST; SNI HOST; "
            f"trust {certificates.ca_bundle}); secret values: POST {{name: value}} to /_emulator/secrets"
        )
        return front, (note, _inside_front(model.runner, certificates, front))


def _inside_front(runner: RevisionRunner, certificates: Certificates, outside: Front) -> str:
    """Start the front instances reach services' URLs at (port 443 of the host's address on their
    network); return a note saying whether they can."""
    import ipaddress
    import ssl

    from multicloud_gcp.emulator.dns import RunDns
    from multicloud_gcp.emulator.front import Front
    from multicloud_gcp.emulator.running import NETWORK, Inside

    address, subnet = runner.plane.network(NETWORK)
    try:
        inner = Front(runner, certificates, address, 443, internal=ipaddress.ip_network(subnet))
    except OSError as exc:
        return f"instances cannot call services by URL: no front on {address}:443 ({exc})"
    try:
        inner.partner = RunDns(address, address)
    except OSError as exc:
        inner.stop()
        return f"instances cannot call services by URL: no name server on {address}:53 ({exc})"
    outside.partner = inner
    system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    with open(system, "rb") as handle, open(certificates.ca_bundle, "rb") as ours:
        bundle = handle.read().rstrip(b"\n") + b"\n" + ours.read()
    runner.inside = Inside(address, bundle)
    return f"instances call services' URLs through a front at {address}:443 (a name server there gives run.app names)"


def _stop_data_plane(model: CloudRunModel, front: Front | None) -> None:
    """Stop the fronts and remove every container the data plane made."""
    if front is not None:
        inner = front.partner
        if inner is not None:
            if inner.partner is not None:
                inner.partner.stop()
            inner.stop()
        front.stop()
        shutil.rmtree(front.certificates.authority.directory, ignore_errors=True)
    if model.runner is not None:
        model.runner.close()
