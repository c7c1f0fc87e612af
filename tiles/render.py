"""Render (composite) vector tiles from PostGIS: one MVT layer per catalog layer, queried concurrently.

Concurrent requests for full-detail tiles of the same query are *batched*: they queue
while a statement of theirs is running, and the next statement answers all that queued
(``ZoomQuery.batch``: one statement, one row per tile). A tile query of a
station costs PostgreSQL ~0.2 ms, about as much as planning, sending and answering a
statement; under load, batching pays those once for many tiles (station tiles at
concurrency 16: +10–30 % tiles/s, bench/results/tiles.md). A request that finds no
statement of its query running goes out at once, in the single-tile statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from psycopg import AsyncConnection

from tiles.grid import TileAddress
from tiles.sql import TileQuery

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
"""Lends a database connection for one query (the service maps its errors)."""

MAX_BATCH = 64
"""Tiles answered by one batch statement at most."""


@dataclass
class _Queue:
    """Tiles waiting for a batch statement, and how many statements of it are running."""

    waiting: list[tuple[TileAddress, asyncio.Future[bytes]]] = field(default_factory=list)
    running: int = 0


class TileRenderer:
    """Runs layers' tile queries on borrowed connections, batching concurrent requests.

    Args:
        connect: lends a connection (and bounds how many queries run at once).
        max_running: batch statements of one query running at once; further requests
            wait for the next batch.
    """

    def __init__(self, connect: Connect, max_running: int = 1) -> None:
        self._connect = connect
        self._max_running = max_running
        self._queues: dict[bytes, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def tile(self, queries: list[TileQuery], tile: TileAddress, params: dict[str, object] | None = None) -> bytes:
        """Render a composite tile; layers below their minzoom are left out."""
        active = [query for query in queries if query.layer.minzoom <= tile.z]
        if len(active) == 1:
            return await self.layer(active[0], tile, params)
        parts = await asyncio.gather(*(self.layer(query, tile, params) for query in active))
        return b"".join(parts)

    async def layer(self, query: TileQuery, tile: TileAddress, params: dict[str, object] | None = None) -> bytes:
        """One layer's MVT bytes at a tile (empty when no feature)."""
        zoom = query.for_zoom(tile.z)
        if zoom.batch is not None and not params:
            return await self._batched(zoom.text, zoom.batch, tile)
        async with self._connect() as conn:
            return await _run_single(conn, zoom.text, tile, {**zoom.params, **(params or {})})

    async def _batched(self, single: bytes, text: bytes, tile: TileAddress) -> bytes:
        queue = self._queues.setdefault(text, _Queue())
        if queue.running < self._max_running and not queue.waiting:  # alone: no batch to form
            queue.running += 1
            try:
                async with self._connect() as conn:
                    return await _run_single(conn, single, tile)
            finally:
                queue.running -= 1
                self._start_draining(single, text, queue)
                self._forget_if_idle(text, queue)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        queue.waiting.append((tile, future))
        self._start_draining(single, text, queue)
        return await future

    def _start_draining(self, single: bytes, text: bytes, queue: _Queue) -> None:
        if queue.waiting and queue.running < self._max_running:
            queue.running += 1
            task = asyncio.create_task(self._drain(single, text, queue))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, single: bytes, text: bytes, queue: _Queue) -> None:
        """Answer the queue's waiting tiles, a batch statement at a time, until none wait
        (a tile waiting alone goes out in its single-tile statement, which costs less).
        A failure (database unreachable, statement error) goes to the requests it concerns."""
        batch: list[tuple[TileAddress, asyncio.Future[bytes]]] = []
        try:
            while queue.waiting:
                batch = []
                try:
                    async with self._connect() as conn:
                        # Taken once a connection is ours: requests arriving meanwhile join.
                        batch, queue.waiting = queue.waiting[:MAX_BATCH], queue.waiting[MAX_BATCH:]
                        if len(batch) == 1:
                            rows = [(1, await _run_single(conn, single, batch[0][0]))]
                        else:
                            cursor = conn.cursor(binary=True)  # bytea arrives as bytes
                            addresses = {"z": [t.z for t, _ in batch], "x": [t.x for t, _ in batch]}
                            await cursor.execute(text, {**addresses, "y": [t.y for t, _ in batch]}, prepare=True)
                            rows = await cursor.fetchall()
                except Exception as error:
                    if not batch:  # no connection: those waiting now would not get one either
                        batch, queue.waiting = queue.waiting, []
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for i, data in rows:
                    future = batch[i - 1][1]
                    if not future.done():
                        future.set_result(bytes(data) if data else b"")
        except asyncio.CancelledError:  # shutting down: nobody will answer these
            for _, future in [*batch, *queue.waiting]:
                future.cancel()
            queue.waiting.clear()
            raise
        finally:
            queue.running -= 1
            self._forget_if_idle(text, queue)

    def _forget_if_idle(self, text: bytes, queue: _Queue) -> None:
        """Drop a queue nobody uses (query variants come and go with requests)."""
        if not queue.waiting and queue.running == 0 and self._queues.get(text) is queue:
            del self._queues[text]


async def _run_single(
    conn: AsyncConnection, text: bytes, tile: TileAddress, params: dict[str, object] | None = None
) -> bytes:
    """Run a single-tile query; returns the MVT bytes (empty when no feature)."""
    cursor = conn.cursor(binary=True)  # bytea arrives as bytes, not as hex text to decode
    await cursor.execute(text, {"z": tile.z, "x": tile.x, "y": tile.y, **(params or {})}, prepare=True)
    row = await cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""
