"""Recompute the generalization of edited layers in the background.

Edited features are simplified on the fly (see ``tiles.sql``) until their layer's
generalization is recomputed; this scheduler does that a moment after the edits stop
(debounced), in a worker thread, and only in one process at a time (advisory lock).
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from layers.catalog import Catalog
from tiles.generalize import generalize_layer

logger = logging.getLogger(__name__)


class GeneralizationScheduler:
    def __init__(self, dsn: str, catalog: Catalog, delay_s: float = 2.0) -> None:
        self.dsn = dsn
        self.catalog = catalog
        self.delay_s = delay_s
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()

    def schedule(self, layer_id: str) -> None:
        """Recompute a layer's generalization once no edit arrived for ``delay_s``."""
        if layer_id not in self.catalog:
            return
        loop = asyncio.get_running_loop()
        if (handle := self._pending.pop(layer_id, None)) is not None:
            handle.cancel()
        self._pending[layer_id] = loop.call_later(self.delay_s, self._start, layer_id)

    def _start(self, layer_id: str) -> None:
        self._pending.pop(layer_id, None)
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.regenerate, layer_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def regenerate(self, layer_id: str) -> bool:
        """Recompute one layer if it has dirty features and no other process is at it."""
        layer = self.catalog.get(layer_id)
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn, conn.transaction():
                locked = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtext('ecomap-generalize:' || %s))", [layer_id]
                ).fetchone()
                dirty = conn.execute("SELECT 1 FROM gen_dirty WHERE layer = %s LIMIT 1", [layer_id]).fetchone()
                if not (locked and locked[0]) or dirty is None:
                    return False
                generalize_layer(conn, layer)
                return True
        except psycopg.Error as exc:
            logger.warning("could not regeneralize %s: %s", layer_id, exc)
            return False

    async def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
