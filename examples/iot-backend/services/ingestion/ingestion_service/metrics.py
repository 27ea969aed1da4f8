"""Prometheus metrics and the small HTTP server for /healthz and /metrics."""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RECEIVED = Counter("ingestion_messages_received", "Telemetry messages received from the broker")
STORED = Counter("ingestion_readings_stored", "Readings inserted (first delivery of a device id + seq)")
DUPLICATES = Counter("ingestion_duplicates", "Valid messages whose device id + seq was already stored")
REJECTED = Counter("ingestion_messages_rejected", "Malformed messages dropped", ["reason"])
DEAD_LETTERS = Counter(
    "ingestion_dead_letters", "Messages acknowledged into the dead_letters table instead of readings", ["reason"]
)
DB_ERRORS = Counter("ingestion_db_errors", "Failed batch writes (retried)")
ADOPTED = Counter("ingestion_sessions_adopted", "Sessions of dead replicas resumed, drained and ended")
CONNECTS = Counter("ingestion_mqtt_connects", "Successful connections to the broker")
CONNECTED = Gauge("ingestion_mqtt_connected", "1 while connected to the broker")
PENDING = Gauge("ingestion_pending_messages", "Messages received but not yet committed and acknowledged")
BATCH_SECONDS = Histogram(
    "ingestion_batch_seconds",
    "Time to write and commit one batch",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_ROWS = Histogram(
    "ingestion_batch_rows", "Messages per batch", buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)
)
LATENCY = Histogram(
    "ingestion_publish_to_commit_seconds",
    "From the device's ts to the commit of its row",
    buckets=(0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 5.0, 30.0),
)
for reason in ("json", "schema", "range", "topic", "too_large"):
    REJECTED.labels(reason)
    DEAD_LETTERS.labels(reason)
DEAD_LETTERS.labels("database")


def observe_all(histogram: Histogram, amounts: list[float]) -> None:
    """histogram.observe() each of many finite amounts, with one increment per bucket touched and one of the sum
    (each takes a lock) instead of two per amount; the exposition is the same (its sum up to float rounding)."""
    if not amounts:
        return
    # observe()'s own parts: prometheus_client has no public call for many observations
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]  # 0.16 leaves this one unannotated
    ordered, done = sorted(amounts), 0
    for bound, bucket in zip(histogram._upper_bounds, histogram._buckets, strict=True):
        upto = bisect_right(ordered, bound, done)  # how many are <= bound: observe() counts each in its first such
        if upto > done:
            bucket.inc(upto - done)
            done = upto
    histogram._sum.inc(sum(ordered))


def serve(port: int, health: Callable[[], tuple[bool, dict[str, object]]]) -> ThreadingHTTPServer:
    """Serve GET /healthz (200 or 503 with a JSON reason) and GET /metrics in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                ok, detail = health()
                self._send(200 if ok else 503, json.dumps(detail).encode(), "application/json")
            else:
                self._send(404, b'{"detail": "try /healthz or /metrics"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep probes out of the log."""

    server = ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
