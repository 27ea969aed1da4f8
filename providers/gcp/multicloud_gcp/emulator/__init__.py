"""The Cloud Run emulator: Admin API v2 Services, Revisions and Operations over REST and gRPC.

`CloudRunEmulator().start()` serves one in-memory `CloudRunModel` on two ports (REST, gRPC);
tests reach the model (request log, faults, slow operations) through the returned handle, and
another process through the REST control API under /_emulator/.
"""

from __future__ import annotations

from dataclasses import dataclass

from multicloud.contract import RunningEmulator
from multicloud_gcp.emulator.faults import ApiError, Faults
from multicloud_gcp.emulator.model import CloudRunModel
from multicloud_gcp.environment import API_ENDPOINT_ENV, PROJECT_NUMBER_ENV
from multicloud_gcp.settings import EMULATOR_PROJECT_NUMBER

__all__ = ["ApiError", "CloudRunEmulator", "CloudRunModel", "Faults", "RunningCloudRun"]


@dataclass(frozen=True)
class RunningCloudRun(RunningEmulator):
    """A started Cloud Run emulator: REST at `endpoint`, gRPC at `grpc_endpoint`, and its model."""

    grpc_endpoint: str
    model: CloudRunModel

    def settings(
        self, transport: str = "rest", project: str = "demo-project", region: str = "europe-west1"
    ) -> dict[str, str]:
        """Target settings that point the gcp-cloudrun provider at this emulator."""
        endpoint = self.endpoint if transport == "rest" else self.grpc_endpoint
        return {
            "project": project,
            "region": region,
            "api_endpoint": endpoint,
            "transport": transport,
            "credentials": "anonymous",
        }


class CloudRunEmulator:
    """Factory registered under `multicloud.emulators` as `gcp`."""

    def __init__(self, project_number: str = EMULATOR_PROJECT_NUMBER, known_secrets: set[str] | None = None) -> None:
        self.project_number = project_number
        self.known_secrets = known_secrets

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningCloudRun:
        """Serve REST on `port` and gRPC on `port + 1` (both free ones when port is 0)."""
        from multicloud_gcp.emulator import grpcserve, rest

        model = CloudRunModel(self.project_number, self.known_secrets)
        http_server, rest_port = rest.serve(model, host, port)
        try:
            grpc_server, grpc_port = grpcserve.serve(model, host, port + 1 if port else 0)
        except Exception:
            http_server.shutdown()
            raise

        def stop() -> None:
            grpc_server.stop(grace=None)
            http_server.shutdown()
            http_server.server_close()

        rest_url, grpc_url = f"http://{host}:{rest_port}", f"http://{host}:{grpc_port}"
        return RunningCloudRun(
            name="gcp",
            endpoint=rest_url,
            environment={API_ENDPOINT_ENV: rest_url, PROJECT_NUMBER_ENV: self.project_number},
            stop=stop,
            notes=(f"gRPC is served at {grpc_url}: set api_endpoint to it and transport: grpc to use it",),
            grpc_endpoint=grpc_url,
            model=model,
        )
