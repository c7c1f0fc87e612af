"""Re-generalize edited layers in the background.

Edited features are simplified on the fly (see ``tiles.sql``) until their layer's
generalization is brought up to date around them (``tiles.incremental``: only the edited
features and their neighbours, the whole layer only when much changed); this scheduler
does that a moment after the edits stop
(debounced), in a child process, and only one at a time per layer (advisory lock).
A service that stops ends a running child: its transaction rolls back, the features stay
marked dirty (and correct in tiles), and the next edit or ``ecomap setup`` redoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

import psycopg

from layers.catalog import Catalog, Layer
from tiles.incremental import generalize_changes

logger = logging.getLogger(__name__)


def _without_owner_url(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k != "ECOMAP_DATABASE_OWNER_URL"}


def generalize_command(layer_id: str) -> list[str]:
    """The child process that regeneralizes a layer if it has dirty features."""
    return [sys.executable, "-m", "gis_service.cli", "tiles", "generalize", "--layer", layer_id, "--if-dirty"]


class GeneralizationScheduler:
    """Runs ``command(layer)`` (default ``generalize_command``) for layers edited ``delay_s`` ago."""

    def __init__(
        self, dsn: str, catalog: Catalog, delay_s: float = 2.0, command: Callable[[str], list[str]] = generalize_command
    ) -> None:
        self.dsn = dsn
        self.catalog = catalog
        self.delay_s = delay_s
        self.command = command
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._children: set[asyncio.subprocess.Process] = set()

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
        task = asyncio.get_running_loop().create_task(self._run(layer_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, layer_id: str) -> None:
        """Regeneralize in a child process (``ecomap tiles generalize --if-dirty``): a large layer
        takes minutes of CPU and GBs of memory that must not burden the serving worker."""
        process = await asyncio.create_subprocess_exec(
            *self.command(layer_id),
            # The service's own (web role) URL: never an owner URL the environment may hold.
            env={**_without_owner_url(os.environ), "ECOMAP_DATABASE_URL": self.dsn},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._children.add(process)
        try:
            _, errors = await process.communicate()
        finally:
            self._children.discard(process)
        if process.returncode not in (0, -signal.SIGTERM):
            logger.warning("could not regeneralize %s: %s", layer_id, errors.decode(errors="replace")[-500:])

    async def close(self) -> None:
        """Cancel pending runs and end running children (a large layer takes minutes: a
        stopping service must not wait for it)."""
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        for process in self._children:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def regenerate_if_dirty(dsn: str, layer: Layer) -> bool:
    """Re-generalize one layer's changes (``tiles.incremental``) if it has dirty features and
    no other process is at it."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        locked = conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('ecomap-generalize:' || %s))", [layer.id]
        ).fetchone()
        dirty = conn.execute("SELECT 1 FROM gen_dirty WHERE layer = %s LIMIT 1", [layer.id]).fetchone()
        if not (locked and locked[0]) or dirty is None:
            return False
        generalize_changes(conn, layer)
        return True
