"""The alert evaluator the service runs in its lifespan, one task per worker.

Every ``ECOMAP_ALERTS__INTERVAL_S`` it judges the stations whose latest values moved since its
last pass (``datastream_latest.result_time``, set when a value is stored, by whichever ingest:
HJ 212, SensorThings, imports) by every rule, and every station by the rules that need no new
values (data missing). The first pass judges every station. Passes of several workers do not
overlap: each takes a PostgreSQL advisory lock and skips its turn while another holds it; a
station judged twice changes nothing the second time (one open alert per station and rule).
The stations moved are looked up from a little before the last pass began, so that a value
stored by a transaction still running then is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gis_service.settings import AlertSettings
from gis_service.workflow.alerts.lifecycle import PassResult, evaluate_stations
from gis_service.workflow.alerts.rules import AlertRules, load_rules
from gis_service.workflow.machine import Workflow, load_workflow
from layers.catalog import Catalog

logger = logging.getLogger(__name__)

LOCK_KEY = 0x45434F414C455254  # "ECOALERT": the advisory lock one evaluation pass holds
OVERLAP = dt.timedelta(seconds=60)
"""Stations whose values moved this long before the last pass began are judged again."""
_MOVED = (
    "SELECT DISTINCT d.station_id FROM datastream_latest AS l JOIN datastream AS d ON d.id = l.datastream_id"
    " WHERE l.result_time >= %s"
)


async def moved_stations(conn: AsyncConnection, since: dt.datetime) -> set[int]:
    """Stations with a latest value stored at or after ``since``."""
    cursor = await conn.execute(_MOVED, [since])
    return {int(r[0]) for r in await cursor.fetchall()}


class AlertEvaluator:
    """Runs evaluation passes over the pool's connections."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        catalog: Callable[[], Catalog],
        interval_s: float,
        rules: AlertRules | None = None,
        workflow: Workflow | None = None,
    ) -> None:
        self.pool = pool
        self.catalog = catalog
        self.interval_s = interval_s
        self.rules = rules or load_rules()
        self.workflow = workflow or load_workflow()
        self.since: dt.datetime | None = None
        self.passes = 0

    async def run_pass(self) -> PassResult | None:
        """One pass, or None when another worker's pass holds the lock."""
        async with self.pool.connection() as conn:  # autocommit: the lock is the session's
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s), now()", [LOCK_KEY])
            locked, started = await cursor.fetchone()  # type: ignore[misc]
            if not locked:
                return None
            try:
                full = None if self.since is None else await moved_stations(conn, self.since)
                result = await evaluate_stations(
                    conn, self.catalog(), self.rules, self.workflow, dt.datetime.now(dt.UTC), full
                )
                self.since = started - OVERLAP
                self.passes += 1
                return result
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])

    async def run(self) -> None:
        """Passes for ever, ``interval_s`` apart; a failed pass is logged and retried."""
        while True:
            try:
                result = await self.run_pass()
                if result is not None and (result.opened or result.escalated or result.resolved):
                    logger.info(
                        "alerts: %d opened, %d escalated, %d resolved", result.opened, result.escalated, result.resolved
                    )
            except Exception:
                logger.exception("alert evaluation failed; retrying")
            await asyncio.sleep(self.interval_s)


@contextlib.asynccontextmanager
async def running_alerts(
    pool: AsyncConnectionPool, catalog: Callable[[], Catalog], settings: AlertSettings
) -> AsyncIterator[AlertEvaluator | None]:
    """The evaluator for the app's lifespan (None when disabled)."""
    if not settings.enabled:
        yield None
        return
    evaluator = AlertEvaluator(pool, catalog, settings.interval_s)
    task = asyncio.create_task(evaluator.run(), name="alert-evaluator")
    try:
        yield evaluator
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
