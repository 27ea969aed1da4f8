"""The Cloud Logging client: the one module that imports google-cloud-logging, lazily.

gRPC through the GAPIC LoggingServiceV2Client (an emulator's over an insecure channel), REST
through the library's HTTP client (`google.cloud.logging.Client`, which speaks JSON to
`entries:list`); SDK exceptions are translated once, by `client.translate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from multicloud_gcp.client import credentials_for, emulator_channel, translated
from multicloud_gcp.settings import GcpSettings

MAX_PAGE = 1000


@dataclass(frozen=True)
class Entry:
    """One log entry of a Cloud Run revision: when, what, and which service, revision and instance."""

    timestamp: datetime
    text: str
    service: str
    revision: str
    instance: str
    insert_id: str


class GoogleLoggingApi:
    """entries.list over the unmodified Cloud Logging client."""

    def __init__(self, settings: GcpSettings) -> None:
        self.settings = settings
        with translated("connect to Cloud Logging", settings):
            self._grpc = settings.transport == "grpc"
            self._client = _client(settings)

    def list_entries(self, project: str, filter_text: str, *, newest_first: bool, limit: int | None) -> list[Entry]:
        """The entries of the project that match the filter, in timestamp order (newest first when
        asked), at most `limit` (None: all of them); reads only."""
        order = "timestamp desc" if newest_first else "timestamp asc"
        size = min(limit or MAX_PAGE, MAX_PAGE)
        found: list[Entry] = []
        with translated(f"list log entries of projects/{project}", self.settings):
            if self._grpc:
                request = {"resource_names": [f"projects/{project}"], "filter": filter_text, "order_by": order,
                           "page_size": size}
                for item in self._client.list_log_entries(request=request):
                    found.append(_from_gapic(item))
                    if limit is not None and len(found) >= limit:
                        break
            else:
                for item in self._client.list_entries(resource_names=[f"projects/{project}"], filter_=filter_text,
                                                      order_by=order, max_results=limit, page_size=size):
                    found.append(_from_library(item))
        return found


def default_logging_factory(settings: GcpSettings) -> GoogleLoggingApi:
    """Build the SDK-backed Cloud Logging client for a target's settings (nothing is called yet)."""
    return GoogleLoggingApi(settings)


def _client(settings: GcpSettings) -> Any:
    """A GAPIC client for gRPC, else the library's HTTP client; to Google or to an emulator."""
    if settings.transport == "grpc":
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
        from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport

        if settings.emulated:
            return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=emulator_channel(settings)))
        return LoggingServiceV2Client(credentials=credentials_for(settings))
    from google.cloud import logging

    options = {"api_endpoint": settings.api_endpoint} if settings.emulated else None
    return logging.Client(  # type: ignore[no-untyped-call]
        project=settings.project, credentials=credentials_for(settings), _use_grpc=False, client_options=options
    )


def _from_gapic(item: Any) -> Entry:
    """An Entry from a GAPIC LogEntry."""
    resource, labels = dict(item.resource.labels), dict(item.labels)
    return Entry(item.timestamp, item.text_payload, resource.get("service_name", ""),
                 resource.get("revision_name", ""), labels.get("instanceId", ""), item.insert_id)


def _from_library(item: Any) -> Entry:
    """An Entry from the HTTP client's LogEntry (TextEntry, StructEntry)."""
    resource = dict(getattr(item.resource, "labels", None) or {})
    labels = dict(item.labels or {})
    text = item.payload if isinstance(item.payload, str) else str(item.payload or "")
    return Entry(item.timestamp, text, resource.get("service_name", ""), resource.get("revision_name", ""),
                 labels.get("instanceId", ""), str(item.insert_id or ""))
