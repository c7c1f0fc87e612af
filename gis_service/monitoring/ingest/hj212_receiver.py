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
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from typing import cast

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
MAX_UNANSWERED = 1000
"""Packets of one connection waiting for their commit: past that, its reading pauses until
replies go out (a logger that sends without reading its replies cannot fill the memory)."""
Outcome = StoredPacket | HJ212Error


class _Packet:
    """A data packet on its way: its connection, then what storing it did."""

    __slots__ = ("connection", "done", "frame", "packet", "reply")

    def __init__(self, connection: _LoggerConnection, frame: Frame, packet: DataPacket) -> None:
        self.connection, self.frame, self.packet = connection, frame, packet
        self.done = False
        self.reply: bytes | None = None


class _LoggerConnection(asyncio.Protocol):
    """One data logger's TCP connection (an asyncio protocol: no task and no stream per
    connection, the receiver's cost per packet is the parsing and the store's). Packets are
    parsed as bytes arrive; replies go out in the packets' order, each once its group committed."""

    def __init__(self, receiver: HJ212Receiver) -> None:
        self.receiver = receiver
        self.frames = FrameReader()
        self.waiting: deque[_Packet] = deque()
        self.transport: asyncio.Transport | None = None
        self.peer: object = None
        self.last_read = time.monotonic()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP server's transport
        self.peer = transport.get_extra_info("peername")
        self.receiver.connections += 1
        self.receiver._open.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        receiver = self.receiver
        for item in self.frames.feed(data):
            if isinstance(item, HJ212Error):
                receiver._reject(item, self.peer)
                continue
            try:
                packet = parse_data_packet(item)
            except HJ212Error as error:
                receiver._reject(error, self.peer)
                continue
            waiting = _Packet(self, item, packet)
            self.waiting.append(waiting)
            receiver._submit(waiting)
        if len(self.waiting) > MAX_UNANSWERED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def answer(self) -> None:
        """Send the replies of the packets done, in order, up to the first still waiting."""
        replies = []
        while self.waiting and self.waiting[0].done:
            reply = self.waiting.popleft().reply
            if reply is not None:
                replies.append(reply)
        if self.transport is None or self.transport.is_closing():
            return
        if replies:
            self.transport.write(b"".join(replies))
        if self.paused and len(self.waiting) <= MAX_UNANSWERED // 2:
            self.paused = False
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        receiver = self.receiver
        receiver.connections -= 1
        receiver._open.discard(self)
        if self.frames.pending:
            receiver.partial_disconnects += 1
            logger.info("hj212 %s: disconnected mid-packet (%d bytes dropped)", self.peer, self.frames.pending)
        elif exc is not None:
            logger.info("hj212 %s: connection ended: %s", self.peer, exc.__class__.__name__)
        self.transport = None


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
        self._open: set[_LoggerConnection] = set()
        self._queue: deque[_Packet] = deque()
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, read back from ``self.port``) and make the
        coming months' partitions."""
        try:
            async with self.pool.connection(timeout=5) as conn:
                await self.partitions.ensure_ahead(conn)
        except (PsycopgError, PoolTimeout) as error:  # the database may be down: the ingest retries per packet
            logger.warning("hj212: could not create the coming months' partitions yet: %s", error)
        self._tasks = [asyncio.create_task(self._write_groups()) for _ in range(self.writers)]
        self._tasks.append(asyncio.create_task(self._close_idle()))
        # SO_REUSEPORT: every worker of `ecomap serve --workers N` listens on the port and the
        # kernel spreads the loggers' connections over them (a socket of another program on the
        # port still makes the bind fail).
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _LoggerConnection(self), self.host, self.port, reuse_port=self.port != 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("hj212 receiver listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the open connections, then the group writers (a group being
        stored finishes first only if it commits before the cancellation reaches it; an
        uncommitted one is rolled back and never acknowledged)."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._open):
            if connection.transport is not None:
                connection.transport.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
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

    async def _close_idle(self) -> None:
        """Close connections silent for ``idle_timeout_s`` (checked a few times per timeout)."""
        while True:
            await asyncio.sleep(min(self.idle_timeout_s / 4, 30.0))
            oldest = time.monotonic() - self.idle_timeout_s
            for connection in list(self._open):
                if connection.last_read < oldest and connection.transport is not None:
                    logger.info("hj212 %s: connection ended: idle for %.0f s", connection.peer, self.idle_timeout_s)
                    connection.transport.close()

    def _reject(self, error: HJ212Error, peer: object) -> None:
        self.rejected[error.kind] += 1
        logger.warning("hj212 %s: packet refused (%s): %s", peer, error.kind, error)

    def _submit(self, waiting: _Packet) -> None:
        """Queue a packet for the next group."""
        self._queue.append(waiting)
        self._queued.set()

    async def _write_groups(self) -> None:
        """One group writer: take the packets queued within the window, store them in one
        transaction, answer them."""
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            if self.group_window_s:
                await asyncio.sleep(self.group_window_s)
            group = []
            while self._queue and len(group) < self.group_max_packets:
                group.append(self._queue.popleft())
            if not group:  # another writer took them
                continue
            try:
                await self._commit(group)
            finally:  # cancelled too: what was not committed is never acknowledged
                for item in group:
                    item.done = True
                for connection in {item.connection for item in group}:
                    connection.answer()

    async def _commit(self, group: list[_Packet]) -> None:
        try:
            results = await self._store([item.packet for item in group])
        except (PsycopgError, PoolTimeout) as error:
            if len(group) > 1 and not isinstance(error, OperationalError | PoolTimeout):
                # Not the database being away: something in one packet; each on its own, so it fails alone.
                logger.warning("hj212: a group of %d packets failed (%s); storing them one by one", len(group), error)
                for item in group:
                    await self._commit([item])
                return
            for item in group:  # not acknowledged: the logger re-sends it
                self.failed += 1
                logger.error("hj212 %s: packet QN=%s not stored: %s", item.connection.peer, item.frame.qn, error)
            return
        self.groups += 1
        for item, result in zip(group, results, strict=True):
            if isinstance(result, HJ212Error):
                self._reject(result, item.connection.peer)
                continue
            self.packets_stored += 1
            self.observations_stored += result.inserted
            self.duplicates += result.duplicates
            if item.frame.wants_ack:
                item.reply = data_reply(item.frame)

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
