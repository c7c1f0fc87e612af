"""The monitoring event stream and the throttled station status refresh, one per worker.

The ingest sends ``ecomap_observation`` notifications at commit (``monitoring.store``) and a
``station_status`` change sends ``ecomap_monitoring`` ones (migration 0011), so every worker's
LISTEN connection sees every event, whichever worker stored it. Observations mark their
station dirty; every ``status_interval_s`` the dirty stations are re-assessed (rows that did
not change are not written: tiles are invalidated only when a class, AQI or colour changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from gis_service.monitoring.status.service import refresh_status
from gis_service.monitoring.store import OBSERVATION_CHANNEL
from gis_service.settings import MonitoringSettings

logger = logging.getLogger(__name__)

STATUS_CHANNEL = "ecomap_monitoring"
QUEUE_SIZE = 1000
"""Events kept for one slow client; past that its oldest events are dropped."""


class MonitoringEvents:
    """Fans notifications out to event-stream clients and refreshes the dirty stations' status."""

    def __init__(self, dsn: str, pool: AsyncConnectionPool, interval_s: float, max_clients: int) -> None:
        self.dsn = dsn
        self.pool = pool
        self.interval_s = interval_s
        self.max_clients = max_clients
        self.clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self.dirty: set[int] = set()
        self.listening = asyncio.Event()
        self.first_refresh_done = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]] | None:
        """A queue of events for a new client (None when the worker serves ``max_clients`` already)."""
        if len(self.clients) >= self.max_clients:
            return None
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.clients.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self.clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        if event.get("event") == "observation":
            self.dirty.add(int(event["station_id"]))

    async def listen(self) -> None:
        """LISTEN for ever on a connection of its own, reconnecting after failures."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    await conn.execute(f"LISTEN {OBSERVATION_CHANNEL}")
                    await conn.execute(f"LISTEN {STATUS_CHANNEL}")
                    self.listening.set()
                    async for notification in conn.notifies():
                        try:
                            self.publish(json.loads(notification.payload))
                        except (ValueError, KeyError, TypeError):
                            logger.warning("ignored a malformed %s notification", notification.channel)
            except psycopg.Error as error:
                self.listening.clear()
                logger.warning("monitoring events: listening failed (%s); retrying", error)
                await asyncio.sleep(1.0)

    async def refresh(self) -> None:
        """Re-assess every station once, then the dirty ones every ``interval_s`` seconds."""
        everything = True
        while True:
            ids, self.dirty = (None if everything else sorted(self.dirty)), set()
            if everything or ids:
                try:
                    async with self.pool.connection() as conn:
                        await refresh_status(conn, ids)
                    everything = False
                except Exception:
                    logger.exception("station status refresh failed; retrying")
                    if ids:
                        self.dirty.update(ids)
                finally:
                    self.first_refresh_done.set()
            await asyncio.sleep(self.interval_s)


STARTUP_REFRESH_WAIT_S = 30.0


@contextlib.asynccontextmanager
async def running_events(
    dsn: str, pool: AsyncConnectionPool, settings: MonitoringSettings
) -> AsyncIterator[MonitoringEvents]:
    """The events and the status refresh for the app's lifespan."""
    events = MonitoringEvents(dsn, pool, settings.status_interval_s, settings.events_max_clients)
    tasks = [asyncio.create_task(events.listen()), asyncio.create_task(events.refresh())]
    # The start-up assessment of every station changes station tiles: done before requests are
    # served (a database that is down does not hold the start up for long).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(events.first_refresh_done.wait(), STARTUP_REFRESH_WAIT_S)
    try:
        yield events
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
