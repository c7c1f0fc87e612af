"""The HJ 212-2017 TCP receiver: data loggers connect, send packets, get data replies.

Each connection reads packets in order. Data packets go to a group commit: packets
arriving within ``group_window_ms`` of each other, from any connection, are stored in one
transaction (``monitoring.store.store_packets``; at most ``writers`` such transactions at
once), and each is acknowledged (CN 9014) only after that transaction has committed,
when its Flag asks for a reply; a connection's replies go out in the order of its packets.
A refused packet (bad CRC or length, malformed, unknown MN or factor, time out of range)
stores nothing, is counted by reason and logged, and gets no reply, so the logger keeps it
for re-sending; the connection stays open. Packets are checked before their group is
written, so a refused one never fails the others; should a group's transaction fail all
the same (a station deleted meanwhile, say), its packets are stored again one per
transaction. A packet cut off by a disconnect was never complete: nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from psycopg import Error as PsycopgError
from psycopg import OperationalError
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
from gis_service.monitoring.store import PartitionKeeper, StoredPacket, store_packets
from gis_service.settings import HJ212Settings

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
RETRIES = 5
POOL_WAIT_S = 30.0
"""Longest wait for a pool connection: many loggers may send at once; a packet waiting
longer is not acknowledged (the logger re-sends it)."""
Outcome = StoredPacket | HJ212Error


class HJ212Receiver:
    """The asyncio TCP server and its counters (packets and observations stored, duplicates,
    packets rejected by reason, database failures, disconnects mid-packet)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        host: str,
        port: int,
        *,
        idle_timeout_s: float = 600.0,
        group_window_ms: float = 2.0,
        group_max_packets: int = 500,
        writers: int = 4,
    ) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.idle_timeout_s = idle_timeout_s
        self.group_window_s = group_window_ms / 1000
        self.group_max_packets = group_max_packets
        self.writers = writers
        self.partitions = PartitionKeeper()
        self.rejected: Counter[str] = Counter()
        self.packets_stored = 0
        self.observations_stored = 0
        self.duplicates = 0
        self.failed = 0
        self.groups = 0
        """Group transactions committed (``packets_stored / groups``: the mean group size)."""
        self.connections = 0
        self.partial_disconnects = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[tuple[DataPacket, asyncio.Future[Outcome]]] = asyncio.Queue()
        self._writer_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, read back from ``self.port``) and make the
        coming months' partitions."""
        try:
            async with self.pool.connection(timeout=5) as conn:
                await self.partitions.ensure_ahead(conn)
        except (PsycopgError, PoolTimeout) as error:  # the database may be down: the ingest retries per packet
            logger.warning("hj212: could not create the coming months' partitions yet: %s", error)
        self._writer_tasks = [asyncio.create_task(self._write_groups()) for _ in range(self.writers)]
        # SO_REUSEPORT: every worker of `ecomap serve --workers N` listens on the port and the
        # kernel spreads the loggers' connections over them (a socket of another program on the
        # port still makes the bind fail).
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=READ_SIZE, reuse_port=self.port != 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("hj212 receiver listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the open connections, then the group writers (a group being
        stored finishes first only if it commits before the cancellation reaches it; an
        uncommitted one is rolled back and never acknowledged)."""
        if self._server is not None:
            self._server.close()
        for tasks in (list(self._tasks), self._writer_tasks):
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            await self._server.wait_closed()
        logger.info(
            "hj212 receiver stopped: %d packets stored in %d transactions, %d failed, refused %s",
            self.packets_stored,
            self.groups,
            self.failed,
            dict(self.rejected),
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        peer = writer.get_extra_info("peername")
        frames = FrameReader()
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout_s):  # no task per read, unlike wait_for
                    chunk = await reader.read(READ_SIZE)
                if not chunk:
                    break
                pending: list[tuple[Frame, asyncio.Future[Outcome]]] = []
                for item in frames.feed(chunk):
                    try:
                        if isinstance(item, HJ212Error):
                            raise item
                        pending.append((item, self._submit(parse_data_packet(item))))
                    except HJ212Error as error:
                        self._reject(error, peer)
                for frame, outcome in pending:  # replies in the packets' order, each once committed
                    reply = await self._acknowledge(frame, outcome, peer)
                    if reply is not None:
                        writer.write(reply)
                if pending:
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

    def _submit(self, packet: DataPacket) -> asyncio.Future[Outcome]:
        """Queue a packet for the next group; the future holds what storing it did."""
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((packet, outcome))
        return outcome

    async def _acknowledge(self, frame: Frame, outcome: asyncio.Future[Outcome], peer: object) -> bytes | None:
        """Wait for a packet's group to commit; the reply to send, or None."""
        try:
            result = await outcome
        except (PsycopgError, PoolTimeout) as error:  # not acknowledged: the logger re-sends it
            self.failed += 1
            logger.error("hj212 %s: packet QN=%s not stored: %s", peer, frame.qn, error)
            return None
        if isinstance(result, HJ212Error):
            self._reject(result, peer)
            return None
        return data_reply(frame) if frame.wants_ack else None

    async def _write_groups(self) -> None:
        """One group writer: take the packets queued within the window, store them in one
        transaction, resolve their futures."""
        while True:
            group = [await self._queue.get()]
            if self.group_window_s:
                await asyncio.sleep(self.group_window_s)
            while len(group) < self.group_max_packets and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit(group)
            except asyncio.CancelledError:
                for _, outcome in group:
                    outcome.cancel()
                raise

    async def _commit(self, group: list[tuple[DataPacket, asyncio.Future[Outcome]]]) -> None:
        try:
            results = await self._store([packet for packet, _ in group])
        except (PsycopgError, PoolTimeout) as error:
            if len(group) > 1 and not isinstance(error, OperationalError | PoolTimeout):
                # Not the database being away: something in one packet; each on its own, so it fails alone.
                logger.warning("hj212: a group of %d packets failed (%s); storing them one by one", len(group), error)
                for item in group:
                    await self._commit([item])
                return
            for _, outcome in group:
                if not outcome.done():
                    outcome.set_exception(error)
            return
        self.groups += 1
        for (_, outcome), result in zip(group, results, strict=True):
            if isinstance(result, StoredPacket):
                self.packets_stored += 1
                self.observations_stored += result.inserted
                self.duplicates += result.duplicates
            if not outcome.done():
                outcome.set_result(result)

    async def _store(self, packets: list[DataPacket]) -> list[Outcome]:
        """Store a group, trying again when the database aborted it for a conflict with
        another transaction (a deadlock, a partition created meanwhile): nothing of an
        aborted attempt was kept."""
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection(timeout=POOL_WAIT_S) as conn:
                    return await store_packets(conn, packets, self.partitions)
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
    receiver = HJ212Receiver(
        pool,
        host,
        port,
        group_window_ms=settings.group_window_ms,
        group_max_packets=settings.group_max_packets,
        writers=settings.writers,
    )
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
