"""Reads from PostgreSQL streaming replicas, never older than a change the service knows of.

Tile renders and OGC feature reads may go to read replicas (``ECOMAP_DB__REPLICA_URLS``,
streaming replicas of the primary, e.g. made with ``pg_basebackup -R``); everything else,
writes included, stays on the primary. The freshness rule: **a read that follows a change
notification is never served by a replica that has not replayed that change.**

How: every change notification (the same events that invalidate the tile cache and ban the
HTTP cache, ``tiles.listener.ChangeListener``) holds the replicas back and reads the
primary's WAL position (``pg_current_wal_lsn()``) — a notification is delivered after its
transaction committed, so that position is at or past the change's commit record. Until it
is known, reads go to the primary; after, a replica is used only once its
``pg_last_wal_replay_lsn()`` has reached it (asked again only while it is behind: on the hot
path the rule costs an integer comparison). A replica that lags on purpose or by load is
simply skipped; one that cannot be reached is skipped for ``retry_s``. When the service
starts, the primary's position then is required the same way (the cache may be empty, the
replica may lag behind changes made while the service was down).

The rule is global, not per layer: after any change every replica waits for that change —
simple and safe; a local replica replays in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gis_service.db import connection
from gis_service.errors import DatabaseUnreachable
from gis_service.settings import describe_database

logger = logging.getLogger(__name__)

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def parse_lsn(text: str) -> int:
    """A PostgreSQL WAL position (``16/B374D848``) as an integer (positions only grow)."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class Replica:
    pool: AsyncConnectionPool
    name: str
    replayed: int = 0
    """The highest replay position seen on it (it only grows)."""
    skip_until: float = 0.0
    """Unreachable: not tried before this (monotonic)."""


@dataclass
class ReadStats:
    """How reads were served (``/healthz`` reports them)."""

    replica: int = 0
    primary: int = 0
    behind: int = 0
    """Reads sent to the primary because the replica tried had not replayed the last change
    (or could not be reached)."""


@dataclass
class ReadRouter:
    """Chooses where a read runs: a replica that is fresh enough, else the primary."""

    primary: AsyncConnectionPool
    replicas: list[Replica]
    wait_s: float = 1.0
    retry_s: float = 1.0
    required: int = 0
    """The WAL position every replica read must have replayed."""
    held: int = 1
    """Changes (and the start) whose position is being read: replicas wait meanwhile."""
    stats: ReadStats = field(default_factory=ReadStats)
    _next: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> None:
        """Require the primary's position now (call once the event loop runs)."""
        self._spawn()

    def changed(self, layer: str, bbox: Any = None, maxzoom: Any = None) -> None:
        """``ChangeListener`` hook: a change committed; hold the replicas until its position is known."""
        self.held += 1
        self._spawn()

    def _spawn(self) -> None:
        task = asyncio.create_task(self._require_primary_position(), name="replica-freshness")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _require_primary_position(self) -> None:
        pause = 0.1
        while True:  # until the primary answers: without the position no replica is known fresh
            try:
                async with connection(self.primary, timeout=self.wait_s) as conn:
                    row = await (await conn.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
                self.required = max(self.required, parse_lsn(row[0]))
                self.held -= 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the primary is down: reads fail over to it anyway
                logger.debug("primary WAL position not read (%s); retrying", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _candidate(self) -> Replica | None:
        if self.held or not self.replicas:
            return None
        now = time.monotonic()
        for _ in range(len(self.replicas)):
            replica = self.replicas[self._next % len(self.replicas)]
            self._next += 1
            if replica.skip_until <= now:
                return replica
        return None

    @contextlib.asynccontextmanager
    async def read(self, primary: Connect) -> AsyncIterator[AsyncConnection]:
        """A connection for one read: a fresh replica's when there is one, else ``primary()``'s."""
        replica = self._candidate()
        if replica is not None:
            yielded = False
            try:
                async with connection(replica.pool, timeout=self.wait_s) as conn:
                    if replica.replayed < self.required:  # behind when last seen: ask again
                        row = await (await conn.execute("SELECT pg_last_wal_replay_lsn()::text")).fetchone()
                        if row[0] is not None:
                            replica.replayed = max(replica.replayed, parse_lsn(row[0]))
                    # Checked now, not before the connection was had: a change notified meanwhile counts.
                    if replica.replayed >= self.required and not self.held:
                        self.stats.replica += 1
                        yielded = True
                        yield conn
                        return
            except DatabaseUnreachable as exc:
                if yielded:  # the read itself failed: the caller's error, not a reason to retry
                    raise
                replica.skip_until = time.monotonic() + self.retry_s
                logger.warning("replica %s unreachable (%s): reads go to the primary for now", replica.name, exc)
            self.stats.behind += 1
        self.stats.primary += 1
        async with primary() as conn:
            yield conn

    def describe(self) -> dict[str, Any]:
        """What ``/healthz`` says of the replicas."""
        return {
            "replicas": [r.name for r in self.replicas],
            "reads": {"replica": self.stats.replica, "primary": self.stats.primary, "behind": self.stats.behind},
            "holding": self.held > 0,
        }

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await replica.pool.close()


def replica_router(primary: AsyncConnectionPool, pools: list[tuple[str, AsyncConnectionPool]], wait_s: float):
    """A router over opened replica pools (``(dsn, pool)`` pairs; names without passwords)."""
    replicas = [Replica(pool, describe_database(dsn)) for dsn, pool in pools]
    return ReadRouter(primary, replicas, wait_s=wait_s)
