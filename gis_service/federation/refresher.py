"""The background refresher the service runs in its lifespan (``ECOMAP_FEDERATION__REFRESH_ENABLED``).

Every ``check_s`` it refreshes the remote layers whose last check is older than their
``refresh_s``. One instance refreshes at a time: a pass takes a PostgreSQL advisory lock
(session level, on a pooled connection) and skips its turn while another worker or
instance holds it; the write itself takes the layer's transaction lock too (a CLI refresh
running meanwhile waits its turn, never interleaves).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from psycopg_pool import AsyncConnectionPool

from gis_service.federation import store
from gis_service.federation.config import RemoteLayers
from gis_service.federation.refresh import RefreshResult, http_client, refresh_layer
from gis_service.settings import FederationSettings

logger = logging.getLogger(__name__)

LOCK_KEY = 0x45434F4645444552  # "ECOFEDER": the advisory lock one refresh pass holds


class Refresher:
    """Refresh passes over the pool's connections."""

    def __init__(self, pool: AsyncConnectionPool, remotes: RemoteLayers, settings: FederationSettings, region: str):
        self.pool = pool
        self.remotes = remotes
        self.settings = settings
        self.region = region
        self.client = http_client(settings)
        self.passes = 0

    async def run_pass(self, only_due: bool = True) -> list[RefreshResult] | None:
        """Refresh the layers due (all with ``only_due=False``); None when another pass holds the lock."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s), now()", [LOCK_KEY])
            locked, now = await cursor.fetchone()  # type: ignore[misc]
            if not locked:
                return None
            try:
                known = await store.states(conn)
                results = []
                for remote in self.remotes.remotes.values():
                    checked = known[remote.id].checked_at if remote.id in known else None
                    if only_due and checked is not None and now - checked < dt.timedelta(seconds=remote.refresh_s):
                        continue
                    results.append(await refresh_layer(conn, self.client, remote, self.settings, self.region))
                self.passes += 1
                return results
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])

    async def run(self) -> None:
        """Passes for ever, ``check_s`` apart; a failed pass is logged and retried."""
        while True:
            try:
                await self.run_pass()
            except Exception:
                logger.exception("remote layer refresh failed; retrying")
            await asyncio.sleep(self.settings.check_s)

    async def close(self) -> None:
        await self.client.aclose()


@contextlib.asynccontextmanager
async def running_refresher(
    pool: AsyncConnectionPool, remotes: RemoteLayers, settings: FederationSettings, region: str
) -> AsyncIterator[Refresher | None]:
    """The refresher for the app's lifespan (None when disabled or when no remote layer is declared)."""
    if not settings.refresh_enabled or not remotes:
        yield None
        return
    refresher = Refresher(pool, remotes, settings, region)
    task = asyncio.create_task(refresher.run(), name="remote-layer-refresher")
    try:
        yield refresher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await refresher.close()
