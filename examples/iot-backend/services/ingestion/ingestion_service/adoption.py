"""Failover without a restart: survivors resume the session of a replica whose connection died.

Every replica connects with a retained will naming its client id on
`services/ingestion/<group>/gone/<client id>`, empties it once connected, and subscribes to
`.../gone/+`. When a replica dies (kill -9, OOM, a lost host), mosquitto publishes its will at once
and keeps it until a connection with that id empties it, so a replica subscribing later (away at the
time, or between its CONNACK and SUBACK) gets it too; meanwhile mosquitto keeps queueing that
replica's share of the group's messages to its session (mosquitto 2.0.11 does not hand a dead
member's messages to the others). Each survivor then
connects with the dead replica's client id (clean start off: the session resumes, with the
messages it was sent but never acknowledged and those queued since), unsubscribes it from the
group, stores and acknowledges everything, and ends the session. Several survivors may try: each
new connection takes the session over from the previous one (mosquitto does not publish a will on
a takeover), and whatever one committed but did not acknowledge is redelivered to the next and
skipped by the database. If the dead replica comes back first, it takes its session back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re

from ingestion_service.consumer import Consumer
from ingestion_service.settings import Settings

log = logging.getLogger("ingestion.adoption")
CLIENT_ID = re.compile(r"\A[\x21-\x7e]{1,128}\Z")


class Adoptions:
    """Resumes, drains and ends the sessions of dead replicas, one consumer (one connection) each."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.running: dict[str, asyncio.Task[None]] = {}

    def announce(self, payload: bytes) -> None:
        """A replica's will arrived: adopt its session unless it is ours or already being adopted."""
        client_id = payload.decode("ascii", errors="replace")
        prefix = f"{self.s.mqtt_username}-"  # the broker admits only these ids for our account
        if not CLIENT_ID.match(client_id) or not client_id.startswith(prefix):
            log.warning("ignored a will naming %r: not a client id of this service", client_id[:80])
            return
        if client_id == self.s.client_id or client_id in self.running:
            return
        task = asyncio.create_task(self._adopt(client_id))
        self.running[client_id] = task
        task.add_done_callback(lambda _t: self.running.pop(client_id, None))

    async def _adopt(self, client_id: str) -> None:
        settings = dataclasses.replace(self.s, client_id=client_id, db_writers=1)
        await Consumer(settings, primary=False).adopt()

    async def close(self) -> None:
        """Stop adopting (an interrupted adoption leaves the session, and its will brings another survivor)."""
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
