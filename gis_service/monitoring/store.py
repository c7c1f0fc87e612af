"""The observation store (migration 0010): write a data packet's observations in one transaction.

A packet is stored whole or not at all: its MN must name a station (``station.mn``),
every factor code must be known (``hj212.factors``); datastreams are created on first
sight of a known factor at a known station. Observations already stored for a
(datastream, phenomenon time) stay as they are (a re-sent packet is a no-op), and
``datastream_latest`` only moves forward in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from gis_service.monitoring.hj212.codec import DataPacket, HJ212Error
from gis_service.monitoring.hj212.factors import FACTORS

logger = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
"""Data times accepted: from 2000 to a day ahead of the server's clock (a logger's clock
may run fast; a year 1900 or 2099 time is a fault, and would create a partition)."""
MONTHS_AHEAD = 2
OBSERVATION_CHANNEL = "ecomap_observation"
"""NOTIFY channel of stored observations: ``{"event": "observation", "station_id", "mn", "time", "inserted"}``."""


@dataclass(frozen=True)
class StoredPacket:
    """What storing a packet did."""

    station_id: int
    inserted: int
    duplicates: int


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month holding ``moment`` — one observation partition."""
    utc = moment.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after ``start`` (itself a month start)."""
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


class PartitionKeeper:
    """Creates the observation partitions the ingest needs, remembering those that exist.

    Creation runs in its own short transaction, before the packet's: the packet's
    transaction never holds the lock that creating a partition takes on the table."""

    def __init__(self) -> None:
        self._known: set[datetime] = set()
        self._creating = asyncio.Lock()  # one creation at a time in this process

    async def ensure(self, conn: AsyncConnection, moment: datetime) -> None:
        """Make sure the partition for ``moment`` exists."""
        start = month_start(moment)
        if start in self._known:
            return
        async with self._creating:
            if start not in self._known:
                async with conn.transaction():
                    await conn.execute("SELECT observation_ensure_partition(%s)", (start,))
                self._known.add(start)

    async def ensure_ahead(self, conn: AsyncConnection, now: datetime | None = None) -> None:
        """The current month's partition and the next ``MONTHS_AHEAD`` (called at start-up)."""
        start = month_start(now or datetime.now(UTC))
        for _ in range(MONTHS_AHEAD + 1):
            await self.ensure(conn, start)
            start = next_month(start)


def check_time(packet: DataPacket, now: datetime | None = None) -> None:
    """Refuse data times before 2000 or more than a day ahead of the clock."""
    now = now or datetime.now(UTC)
    if not EARLIEST <= packet.data_time <= now + FUTURE_SLACK:
        raise HJ212Error(
            "time", f"DataTime {packet.data_time.isoformat()} is out of range (2000 to a day ahead of the server clock)"
        )


async def station_for_mn(conn: AsyncConnection, mn: str) -> int:
    """The station whose data logger has device code ``mn``."""
    cur = await conn.execute("SELECT id FROM station WHERE mn = %s", (mn,))
    row = await cur.fetchone()
    if row is None:
        raise HJ212Error("mn", f"unknown MN {mn!r}: no station has this device code (station property mn)")
    return int(row[0])


async def _datastreams(conn: AsyncConnection, station_id: int, packet: DataPacket) -> dict[str, int]:
    codes = sorted({r.code for r in packet.readings})
    query = (
        "SELECT factor_code, id FROM datastream WHERE station_id = %s AND aggregation = %s AND factor_code = ANY(%s)"
    )
    cur = await conn.execute(query, (station_id, packet.aggregation, codes))
    found = {code: int(ident) for code, ident in await cur.fetchall()}
    missing = [code for code in codes if code not in found]
    if missing:
        await conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " SELECT %s, code, %s, name, unit FROM unnest(%s::text[], %s::text[], %s::text[]) AS f(code, name, unit)"
            " ON CONFLICT (station_id, factor_code, aggregation) DO NOTHING",
            (
                station_id,
                packet.aggregation,
                missing,
                [FACTORS[c].name for c in missing],
                [FACTORS[c].unit for c in missing],
            ),
        )
        cur = await conn.execute(query, (station_id, packet.aggregation, missing))
        found.update({code: int(ident) for code, ident in await cur.fetchall()})
    return found


async def store_packet(
    conn: AsyncConnection, packet: DataPacket, partitions: PartitionKeeper, source: str = "hj212"
) -> StoredPacket:
    """Store a data packet's observations and move the latest values, committed on return.

    Raises HJ212Error (nothing stored) for a time out of range or an unknown MN."""
    check_time(packet)
    await partitions.ensure(conn, packet.data_time)
    async with conn.transaction():
        station_id = await station_for_mn(conn, packet.frame.mn)
        streams = await _datastreams(conn, station_id, packet)
        readings = sorted(packet.readings, key=lambda r: streams[r.code])  # one lock order: no deadlocks
        ids = [streams[r.code] for r in readings]
        cur = await conn.execute(
            "INSERT INTO observation"
            " (datastream_id, phenomenon_time, value, value_min, value_max, flag, quality, source)"
            " SELECT d, %s, v, lo, hi, f, q, %s"
            " FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::text[], %s::text[])"
            " AS r(d, v, lo, hi, f, q)"
            " ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING",
            (
                packet.data_time,
                source,
                ids,
                [r.value for r in readings],
                [r.minimum for r in readings],
                [r.maximum for r in readings],
                [r.flag for r in readings],
                [r.quality for r in readings],
            ),
        )
        inserted = cur.rowcount
        if inserted:  # delivered to every worker's LISTEN at commit (the map's events, the status refresh)
            event = {
                "event": "observation",
                "station_id": station_id,
                "mn": packet.frame.mn,
                "time": packet.data_time.isoformat(),
                "inserted": inserted,
            }
            await conn.execute("SELECT pg_notify(%s, %s)", (OBSERVATION_CHANNEL, json.dumps(event)))
        await conn.execute(
            "INSERT INTO datastream_latest (datastream_id, phenomenon_time, result_time, value, flag, quality)"
            " SELECT d, %s, now(), v, f, q FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::text[])"
            " AS r(d, v, f, q)"
            " ON CONFLICT (datastream_id) DO UPDATE SET phenomenon_time = EXCLUDED.phenomenon_time,"
            " result_time = EXCLUDED.result_time, value = EXCLUDED.value, flag = EXCLUDED.flag,"
            " quality = EXCLUDED.quality"
            " WHERE datastream_latest.phenomenon_time < EXCLUDED.phenomenon_time",
            (
                packet.data_time,
                ids,
                [r.value for r in readings],
                [r.flag for r in readings],
                [r.quality for r in readings],
            ),
        )
    return StoredPacket(station_id, inserted, len(readings) - inserted)
