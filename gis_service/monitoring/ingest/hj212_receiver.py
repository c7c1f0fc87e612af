"""The HJ 212-2017 TCP receiver: data loggers connect, send packets, get data replies.

Each connection reads packets in order; each data packet is stored in one transaction
(``monitoring.store``) and acknowledged (CN 9014) only after that transaction has
committed, when its Flag asks for a reply. A refused packet (bad CRC or length,
malformed, unknown MN or factor, time out of range) stores nothing, is counted by
reason and logged, and gets no reply, so the logger keeps it for re-sending; the
connection stays open. A packet cut off by a disconnect was never complete: nothing of
it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from psycopg import Error as PsycopgError
from psycopg.errors import DeadlockDetected, DuplicateTable, LockNotAvailable, SerializationFailure
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gis_service.monitoring.hj212.codec import (
    DataPacket,
    Frame,
    FrameReader,
    HJ212Error,
    data_reply,
    parse_data_packet,
)
from gis_service.monitoring.store import PartitionKeeper, StoredPacket, store_packet
from gis_service.settings import HJ212Settings

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
RETRIES = 5
POOL_WAIT_S = 30.0
"""Longest wait for a pool connection: many loggers may send at once; a packet waiting
longer is not acknowledged (the logger re-sends it)."""


class HJ212Receiver:
    """The asyncio TCP server and its counters (packets and observations stored, duplicates,
    packets rejected by reason, database failures, disconnects mid-packet)."""

    def __init__(self, pool: AsyncConnectionPool, host: str, port: int, *, idle_timeout_s: float = 600.0) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.idle_timeout_s = idle_timeout_s
        self.partitions = PartitionKeeper()
        self.rejected: Counter[str] = Counter()
        self.packets_stored = 0
        self.observations_stored = 0
        self.duplicates = 0
        self.failed = 0
        self.connections = 0
        self.partial_disconnects = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, read back from ``self.port``) and make the
        coming months' partitions."""
        try:
            async with self.pool.connection(timeout=5) as conn:
                await self.partitions.ensure_ahead(conn)
        except (PsycopgError, PoolTimeout) as error:  # the database may be down: the ingest retries per packet
            logger.warning("hj212: could not create the coming months' partitions yet: %s", error)
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=READ_SIZE)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("hj212 receiver listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the open connections (a packet being stored finishes first
        only if it commits before the cancellation reaches it; an uncommitted one is rolled
        back and never acknowledged)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        peer = writer.get_extra_info("peername")
        frames = FrameReader()
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout_s)
                if not chunk:
                    break
                for item in frames.feed(chunk):
                    if isinstance(item, HJ212Error):
                        self._reject(item, peer)
                        continue
                    reply = await self._ingest(item, peer)
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
            if frames.pending:
                self.partial_disconnects += 1
                logger.info("hj212 %s: disconnected mid-packet (%d bytes dropped)", peer, frames.pending)
        except (TimeoutError, ConnectionError) as error:
            logger.info("hj212 %s: connection ended: %s", peer, error.__class__.__name__)
        finally:
            self._tasks.discard(task)
            self.connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _reject(self, error: HJ212Error, peer: object) -> None:
        self.rejected[error.kind] += 1
        logger.warning("hj212 %s: packet refused (%s): %s", peer, error.kind, error)

    async def _ingest(self, frame: Frame, peer: object) -> bytes | None:
        """Store one packet; the reply to send once committed, or None."""
        try:
            packet = parse_data_packet(frame)
            stored = await self._store(packet)
        except HJ212Error as error:
            self._reject(error, peer)
            return None
        except (PsycopgError, PoolTimeout) as error:  # not acknowledged: the logger re-sends it
            self.failed += 1
            logger.error("hj212 %s: packet QN=%s not stored: %s", peer, frame.qn, error)
            return None
        self.packets_stored += 1
        self.observations_stored += stored.inserted
        self.duplicates += stored.duplicates
        return data_reply(frame) if frame.wants_ack else None

    async def _store(self, packet: DataPacket) -> StoredPacket:
        """Store a packet, trying again when the database aborted it for a conflict with
        another transaction (a deadlock, a partition created meanwhile): nothing of an
        aborted attempt was kept."""
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection(timeout=POOL_WAIT_S) as conn:
                    return await store_packet(conn, packet, self.partitions)
            except (DeadlockDetected, SerializationFailure, DuplicateTable, LockNotAvailable):
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


@contextlib.asynccontextmanager
async def running_receiver(pool: AsyncConnectionPool, settings: HJ212Settings) -> AsyncIterator[HJ212Receiver | None]:
    """The receiver for the app's lifespan (None when disabled); a port already taken is
    logged and the service runs on without it (HTTP must not fail because another process
    holds the TCP port)."""
    if not settings.enabled:
        yield None
        return
    host, port = settings.host, settings.port
    receiver = HJ212Receiver(pool, host, port)
    try:
        await receiver.start()
    except OSError as error:
        logger.error("hj212 receiver not started on %s:%d: %s", host, port, error)
        yield None
        return
    try:
        yield receiver
    finally:
        await receiver.stop()
