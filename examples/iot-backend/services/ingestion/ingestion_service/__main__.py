"""Run ingestion: migrate, serve /healthz and /metrics, consume until SIGTERM, then drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from iot_common.schema import migrate

from ingestion_service import metrics
from ingestion_service.adoption import Adoptions
from ingestion_service.consumer import Consumer
from ingestion_service.db import COMPONENT, MIGRATIONS
from ingestion_service.settings import Settings


async def consume(settings: Settings) -> None:
    """Consume until SIGTERM or SIGINT, then drain."""
    adoptions = Adoptions(settings)
    consumer = Consumer(settings, on_will=adoptions.announce if settings.adopt_sessions else None)
    metrics.serve(settings.port, consumer.health)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger("ingestion").info(
        "consuming %s (batches ≤ %d rows / %.0f ms), metrics on :%d",
        settings.subscription, settings.batch_max_rows, settings.batch_max_seconds * 1000, settings.port,
    )
    try:
        await consumer.run(stop)
    finally:
        await adoptions.close()


def main() -> None:
    """Start everything and block until asked to stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    migrate(settings.database_url, COMPONENT, MIGRATIONS)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(consume(settings))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (several times cheaper per read than asyncio's), else the default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
