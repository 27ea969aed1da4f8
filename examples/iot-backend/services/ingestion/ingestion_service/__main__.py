"""Run ingestion: migrate, serve /healthz and /metrics, consume until SIGTERM, then drain."""

from __future__ import annotations

import logging
import signal
import threading

from ingestion_service import metrics
from ingestion_service.consumer import Consumer
from ingestion_service.db import migrate
from ingestion_service.settings import Settings


def main() -> None:
    """Start everything and block until asked to stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    migrate(settings.database_url)
    consumer = Consumer(settings)
    metrics.serve(settings.port, consumer.health)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    consumer.start()
    logging.getLogger("ingestion").info(
        "consuming %s (batches ≤ %d rows / %.0f ms), metrics on :%d",
        settings.subscription, settings.batch_max_rows, settings.batch_max_seconds * 1000, settings.port,
    )
    stop.wait()
    consumer.stop()


if __name__ == "__main__":
    main()
