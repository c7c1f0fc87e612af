"""The observation store (migration 0010): write data packets' observations, one packet or a group per transaction.

A packet is stored whole or not at all: its MN must name a station (``station.mn``),
every factor code must be known (``hj212.factors``); datastreams are created on first
sight of a known factor at a known station. Observations already stored for a
(datastream, phenomenon time) stay as they are (a re-sent packet is a no-op). Whatever
inserts observations, the statement-level trigger of migration 0019 moves
``datastream_latest`` forward, adds hourly values to ``observation_daily`` and notifies
``ecomap_observation``, in the same statement and transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from gis_service.monitoring.hj212.codec import DataPacket, HJ212Error
from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY

logger = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
"""Data times accepted: from 2000 to a day ahead of the server's clock (a logger's clock
may run fast; a year 1900 or 2099 time is a fault, and would create a partition)."""
MONTHS_AHEAD = 2
OBSERVATION_CHANNEL = "ecomap_observation"
"""NOTIFY channel of stored observations, one per station and statement (the trigger of migration
0019): ``{"event": "observation", "station_id", "mn", "time", "inserted", "source"}``."""
ADD_TO_DAY = (
    " ON CONFLICT (datastream_id, day) DO UPDATE SET observations = observation_daily.observations"
    " + EXCLUDED.observations, valid = observation_daily.valid + EXCLUDED.valid,"
    " valid_sum = observation_daily.valid_sum + EXCLUDED.valid_sum"
)
"""The end of an insert into observation_daily: a day's counts and sum grow by the new observations'
(as the trigger of migration 0019 adds them; ``bench/observations_bench.py`` fills partitions it writes directly)."""


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


def _ints(values: Iterable[int]) -> str:
    """An array literal of integers, bound as one text parameter: psycopg's list dumper costs
    milliseconds per thousand elements, these a few microseconds (the receiver's hot path)."""
    return "{" + ",".join(map(str, values)) + "}"


def _floats(values: Iterable[float | None]) -> str:
    return "{" + ",".join("NULL" if v is None else repr(float(v)) for v in values) + "}"


def _words(values: Iterable[str]) -> str:
    """An array literal of words from the codec's fixed vocabularies (flags, quality codes,
    factor codes, aggregations): letters and digits, nothing to quote."""
    return "{" + ",".join(values) + "}"


def _texts(values: Iterable[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _times(values: Iterable[datetime]) -> str:
    return "{" + ",".join('"' + v.isoformat() + '"' for v in values) + "}"


async def store_packet(
    conn: AsyncConnection, packet: DataPacket, partitions: PartitionKeeper, source: str = "hj212"
) -> StoredPacket:
    """Store a data packet's observations and move the latest values, committed on return.

    Raises HJ212Error (nothing stored) for a time out of range or an unknown MN."""
    (result,) = await store_packets(conn, [packet], partitions, source)
    if isinstance(result, HJ212Error):
        raise result
    return result


GROUP_INSERT = """
WITH p AS (
    SELECT * FROM unnest(%(mn)s::text[], %(time)s::timestamptz[], %(aggregation)s::text[])
        WITH ORDINALITY AS p(mn, t, a, n)
), r AS (
    SELECT * FROM unnest(%(packet)s::int[], %(code)s::text[], %(value)s::float8[], %(low)s::float8[],
        %(high)s::float8[], %(flag)s::text[], %(quality)s::text[]) AS r(n, c, v, lo, hi, f, q)
), k AS (
    SELECT r.n, d.id AS did, p.t, r.v, r.lo, r.hi, r.f, r.q
    FROM r JOIN p ON p.n = r.n JOIN station s ON s.mn = p.mn
    JOIN datastream d ON d.station_id = s.id AND d.aggregation = p.a AND d.factor_code = r.c
), new AS (
    INSERT INTO observation (datastream_id, phenomenon_time, value, value_min, value_max, flag, quality, source)
    SELECT did, t, v, lo, hi, f, q, %(source)s FROM k ORDER BY did, t, n
    ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING
    RETURNING datastream_id, phenomenon_time
), firsts AS (
    SELECT min(k.n) AS n FROM new JOIN k ON k.did = new.datastream_id AND k.t = new.phenomenon_time
    GROUP BY new.datastream_id, new.phenomenon_time
)
SELECT p.n, s.id, coalesce(m.matched, 0), coalesce(i.inserted, 0)
FROM p LEFT JOIN station s ON s.mn = p.mn
LEFT JOIN (SELECT n, count(*) AS matched FROM k GROUP BY n) AS m ON m.n = p.n
LEFT JOIN (SELECT n, count(*) AS inserted FROM firsts GROUP BY n) AS i ON i.n = p.n
ORDER BY p.n
"""
"""A group's observations in one statement (one round trip): each packet's station by its MN,
each reading's datastream, the INSERT … ON CONFLICT DO NOTHING in (datastream, time) order
(one lock order for all concurrent groups); per packet, in order: its station (NULL for an
unknown MN), how many readings found their datastream, how many observations were new (a
second copy of a packet in the group counts as duplicates, as a re-sent one). The trigger of
migration 0019 moves the latest values, adds to the daily sums and notifies, in the same
statement."""


async def store_packets(
    conn: AsyncConnection, packets: Sequence[DataPacket], partitions: PartitionKeeper, source: str = "hj212"
) -> list[StoredPacket | HJ212Error]:
    """Store many packets in one transaction (group commit), committed on return; per packet,
    in order, what was stored or why it was refused.

    Every packet is checked before anything is written (time range here, MN in the
    statement) and a refused one stores nothing: the values that reach the INSERT are the
    codec's, valid for every constraint, so one packet cannot make the others fail. A re-sent
    packet, or the same packet twice in the group, is a duplicate like ``store_packet``'s.
    Datastreams are created for a known factor's first value at a station (then the
    packets that lacked one are inserted again: their other observations are duplicates of
    the first statement's, so each observation is counted once)."""
    results: list[StoredPacket | HJ212Error | None] = [None] * len(packets)
    for i, packet in enumerate(packets):
        try:
            check_time(packet)
        except HJ212Error as error:
            results[i] = error
    checked = [i for i, r in enumerate(results) if r is None]
    for moment in sorted({month_start(packets[i].data_time) for i in checked}):
        await partitions.ensure(conn, moment)
    async with conn.transaction():
        stored = await _insert_packets(conn, [packets[i] for i in checked], source)
        lacking = [
            (i, sid)
            for i, (sid, matched, _) in zip(checked, stored, strict=True)
            if sid and matched < len(packets[i].readings)
        ]
        if lacking:
            await _create_datastreams(conn, [(sid, packets[i]) for i, sid in lacking])
            again = await _insert_packets(conn, [packets[i] for i, _ in lacking], source)
            more = {i: inserted for (i, _), (_, _, inserted) in zip(lacking, again, strict=True)}
        else:
            more = {}
        for i, (sid, _, inserted) in zip(checked, stored, strict=True):
            packet = packets[i]
            if sid is None:
                results[i] = HJ212Error(
                    "mn", f"unknown MN {packet.frame.mn!r}: no station has this device code (station property mn)"
                )
            else:
                new = inserted + more.get(i, 0)
                results[i] = StoredPacket(sid, new, len(packet.readings) - new)
    return [r for r in results if r is not None]


async def _insert_packets(
    conn: AsyncConnection, packets: Sequence[DataPacket], source: str
) -> list[tuple[int | None, int, int]]:
    """``GROUP_INSERT`` for ``packets``: per packet, (station id or None, readings matched, inserted)."""
    if not packets:
        return []
    numbers, codes, values, lows, highs, flags, qualities = [], [], [], [], [], [], []
    for n, packet in enumerate(packets, 1):
        for r in packet.readings:
            numbers.append(n)
            codes.append(r.code)
            values.append(r.value)
            lows.append(r.minimum)
            highs.append(r.maximum)
            flags.append(r.flag)
            qualities.append(FLAG_QUALITY[r.flag])
    cur = await conn.execute(
        GROUP_INSERT,
        {
            "mn": _texts(p.frame.mn for p in packets),
            "time": _times(p.data_time for p in packets),
            "aggregation": _words(p.aggregation for p in packets),
            "packet": _ints(numbers),
            "code": _words(codes),
            "value": _floats(values),
            "low": _floats(lows),
            "high": _floats(highs),
            "flag": _words(flags),
            "quality": _words(qualities),
            "source": source,
        },
    )
    return [(sid, int(matched), int(inserted)) for _, sid, matched, inserted in await cur.fetchall()]


async def _create_datastreams(conn: AsyncConnection, packets: Sequence[tuple[int, DataPacket]]) -> None:
    """The datastreams of every reading of ``packets`` (station id, packet) that has none yet."""
    wanted = sorted({(s, p.aggregation, r.code) for s, p in packets for r in p.readings})
    await conn.execute(
        "INSERT INTO datastream (station_id, aggregation, factor_code, property, unit)"
        " SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[])"
        " ON CONFLICT (station_id, factor_code, aggregation) DO NOTHING",
        (
            _ints(k[0] for k in wanted),
            _words(k[1] for k in wanted),
            _words(k[2] for k in wanted),
            _texts(FACTORS[k[2]].name for k in wanted),
            _texts(FACTORS[k[2]].unit for k in wanted),
        ),
    )


@dataclass(frozen=True)
class BulkObservation:
    """One observation of a bulk load (a SensorThings dataArray row, a historical file's line)."""

    datastream_id: int
    phenomenon_time: datetime
    value: float
    flag: str = "N"


async def copy_observations(
    conn: AsyncConnection, rows: Sequence[BulkObservation], partitions: PartitionKeeper, source: str
) -> int:
    """Bulk ingest in one transaction: COPY into a temporary table, then one INSERT … ON
    CONFLICT DO NOTHING into the partitioned store, in key order (its trigger moves the latest
    values and adds to the daily sums); returns how many observations were new. Flags must be
    HJ 212 data flags and the datastreams must exist (else the whole load fails, nothing stored)."""
    for moment in sorted({month_start(r.phenomenon_time) for r in rows}):
        await partitions.ensure(conn, moment)
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMPORARY TABLE observation_in (datastream_id bigint, phenomenon_time timestamptz,"
            " value float8, flag text, quality text) ON COMMIT DROP"
        )
        async with conn.cursor().copy("COPY observation_in FROM STDIN") as copy:
            for r in rows:
                await copy.write_row((r.datastream_id, r.phenomenon_time, r.value, r.flag, FLAG_QUALITY[r.flag]))
        cur = await conn.execute(
            "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
            " SELECT datastream_id, phenomenon_time, value, flag, quality, %s FROM observation_in"
            " ORDER BY datastream_id, phenomenon_time ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING",
            (source,),
        )
    return cur.rowcount
