"""The observation store (migration 0010): write data packets' observations, one packet or a group per transaction.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from psycopg import AsyncConnection

from gis_service.monitoring.hj212.codec import CHINA_TIME, DataPacket, HJ212Error, Reading
from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY

logger = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
"""Data times accepted: from 2000 to a day ahead of the server's clock (a logger's clock
may run fast; a year 1900 or 2099 time is a fault, and would create a partition)."""
MONTHS_AHEAD = 2
OBSERVATION_CHANNEL = "ecomap_observation"
"""NOTIFY channel of stored observations: ``{"event": "observation", "station_id", "mn", "time", "inserted"}``."""
MOVE_LATEST_FORWARD = (
    " ON CONFLICT (datastream_id) DO UPDATE SET phenomenon_time = EXCLUDED.phenomenon_time,"
    " result_time = EXCLUDED.result_time, value = EXCLUDED.value, flag = EXCLUDED.flag, quality = EXCLUDED.quality"
    " WHERE datastream_latest.phenomenon_time < EXCLUDED.phenomenon_time"
)
"""The end of an upsert into datastream_latest: a row moves only to a newer phenomenon time."""
ADD_TO_DAY = (
    " ON CONFLICT (datastream_id, day) DO UPDATE SET observations = observation_daily.observations"
    " + EXCLUDED.observations, valid = observation_daily.valid + EXCLUDED.valid,"
    " valid_sum = observation_daily.valid_sum + EXCLUDED.valid_sum"
)
"""The end of an insert into observation_daily: a day's counts and sum grow by the new observations'."""


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


async def store_packets(
    conn: AsyncConnection, packets: Sequence[DataPacket], partitions: PartitionKeeper, source: str = "hj212"
) -> list[StoredPacket | HJ212Error]:
    """Store many packets in one transaction (group commit), committed on return; per packet,
    in order, what was stored or why it was refused.

    Every packet is checked before anything is written (time range, MN) and a refused one
    stores nothing: the values that reach the INSERT are the codec's, valid for every
    constraint, so one packet cannot make the others fail. Observations are inserted in
    (datastream, time) order, one lock order for all concurrent groups; a re-sent packet,
    or the same packet twice in the group, is a duplicate like ``store_packet``'s."""
    results: list[StoredPacket | HJ212Error | None] = [None] * len(packets)
    for i, packet in enumerate(packets):
        try:
            check_time(packet)
        except HJ212Error as error:
            results[i] = error
    for moment in sorted({month_start(p.data_time) for p, r in zip(packets, results, strict=True) if r is None}):
        await partitions.ensure(conn, moment)
    async with conn.transaction():
        mns = sorted({p.frame.mn for p, r in zip(packets, results, strict=True) if r is None})
        cur = await conn.execute("SELECT mn, id FROM station WHERE mn = ANY(%s)", (mns,))
        stations = {mn: int(ident) for mn, ident in await cur.fetchall()}
        accepted: list[tuple[int, DataPacket, int]] = []
        for i, packet in enumerate(packets):
            if results[i] is not None:
                continue
            station_id = stations.get(packet.frame.mn)
            if station_id is None:
                results[i] = HJ212Error(
                    "mn", f"unknown MN {packet.frame.mn!r}: no station has this device code (station property mn)"
                )
            else:
                accepted.append((i, packet, station_id))
        if accepted:
            streams = await _group_datastreams(conn, [(s, p) for _, p, s in accepted])
            keys = [(streams[s, p.aggregation, r.code], p.data_time, r) for _, p, s in accepted for r in p.readings]
            hourly = {
                streams[s, p.aggregation, r.code] for _, p, s in accepted if p.aggregation == "hour" for r in p.readings
            }
            inserted = await _insert_group(conn, keys, source)
            stored, seen = [], set()
            for row in keys:  # each newly stored hourly observation once (a copy in the group was not stored)
                if row[0] in hourly and (row[0], row[1]) in inserted and (row[0], row[1]) not in seen:
                    seen.add((row[0], row[1]))
                    stored.append(row)
            await _add_daily(conn, stored)
            for i, packet, station_id in accepted:
                new = 0
                for reading in packet.readings:
                    key = (streams[station_id, packet.aggregation, reading.code], packet.data_time)
                    if key in inserted:
                        inserted.discard(key)  # a second copy in the group is a duplicate
                        new += 1
                results[i] = StoredPacket(station_id, new, len(packet.readings) - new)
                if new:  # delivered to every worker's LISTEN at commit (the map's events, the status refresh)
                    event = {
                        "event": "observation",
                        "station_id": station_id,
                        "mn": packet.frame.mn,
                        "time": packet.data_time.isoformat(),
                        "inserted": new,
                    }
                    await conn.execute("SELECT pg_notify(%s, %s)", (OBSERVATION_CHANNEL, json.dumps(event)))
    return [r for r in results if r is not None]


async def _group_datastreams(
    conn: AsyncConnection, packets: Sequence[tuple[int, DataPacket]]
) -> dict[tuple[int, str, str], int]:
    """Datastream ids by (station, aggregation, factor code) for every reading of the group,
    created for a known factor's first value at a station."""
    wanted = sorted({(s, p.aggregation, r.code) for s, p in packets for r in p.readings})
    query = (
        "SELECT d.station_id, d.aggregation, d.factor_code, d.id FROM datastream d"
        " JOIN unnest(%s::int[], %s::text[], %s::text[]) AS k(s, a, c)"
        " ON d.station_id = k.s AND d.aggregation = k.a AND d.factor_code = k.c"
    )

    async def find(keys: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], int]:
        cur = await conn.execute(
            query, (_ints(k[0] for k in keys), _words(k[1] for k in keys), _words(k[2] for k in keys))
        )
        return {(int(s), a, c): int(ident) for s, a, c, ident in await cur.fetchall()}

    found = await find(wanted)
    missing = [k for k in wanted if k not in found]
    if missing:
        await conn.execute(
            "INSERT INTO datastream (station_id, aggregation, factor_code, property, unit)"
            " SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " ON CONFLICT (station_id, factor_code, aggregation) DO NOTHING",
            (
                _ints(k[0] for k in missing),
                _words(k[1] for k in missing),
                _words(k[2] for k in missing),
                _texts(FACTORS[k[2]].name for k in missing),
                _texts(FACTORS[k[2]].unit for k in missing),
            ),
        )
        found.update(await find(missing))
    return found


async def _add_daily(conn: AsyncConnection, rows: list[tuple[int, datetime, Reading]]) -> None:
    """Add newly stored hourly observations to their Beijing day's sums (``observation_daily``)."""
    if not rows:
        return
    sums: dict[tuple[int, date], list[float]] = {}
    for ident, moment, reading in rows:
        entry = sums.setdefault((ident, moment.astimezone(CHINA_TIME).date()), [0, 0, 0.0])
        entry[0] += 1
        if reading.quality == "good":
            entry[1] += 1
            entry[2] += reading.value
    keys = sorted(sums)  # one lock order: no deadlocks
    await conn.execute(
        "INSERT INTO observation_daily (datastream_id, day, observations, valid, valid_sum)"
        " SELECT * FROM unnest(%s::bigint[], %s::date[], %s::int[], %s::int[], %s::float8[])"
        f"{ADD_TO_DAY}",
        (
            _ints(k[0] for k in keys),
            _words(k[1].isoformat() for k in keys),
            _ints(sums[k][0] for k in keys),
            _ints(sums[k][1] for k in keys),
            _floats(sums[k][2] for k in keys),
        ),
    )


async def _insert_group(
    conn: AsyncConnection, rows: list[tuple[int, datetime, Reading]], source: str
) -> set[tuple[int, datetime]]:
    """Insert a group's observations and move the latest values; the (datastream, time)
    keys inserted (the others were stored already)."""
    rows = sorted(rows, key=lambda row: (row[0], row[1]))  # one lock order: no deadlocks
    cur = await conn.execute(
        "INSERT INTO observation"
        " (datastream_id, phenomenon_time, value, value_min, value_max, flag, quality, source)"
        " SELECT d, t, v, lo, hi, f, q, %s"
        " FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[], %s::float8[], %s::text[],"
        " %s::text[]) AS r(d, t, v, lo, hi, f, q)"
        " ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING"
        " RETURNING datastream_id, phenomenon_time",
        (
            source,
            _ints(d for d, _, _ in rows),
            _times(t for _, t, _ in rows),
            _floats(r.value for _, _, r in rows),
            _floats(r.minimum for _, _, r in rows),
            _floats(r.maximum for _, _, r in rows),
            _words(r.flag for _, _, r in rows),
            _words(r.quality for _, _, r in rows),
        ),
    )
    inserted = set(await cur.fetchall())
    newest: dict[int, tuple[int, datetime, Reading]] = {}
    for row in rows:  # one row per datastream (an upsert may touch a row once): its newest time, first received
        if row[0] not in newest or row[1] > newest[row[0]][1]:
            newest[row[0]] = row
    latest = list(newest.values())
    await conn.execute(
        "INSERT INTO datastream_latest (datastream_id, phenomenon_time, result_time, value, flag, quality)"
        " SELECT d, t, now(), v, f, q FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], %s::text[],"
        " %s::text[]) AS r(d, t, v, f, q)"
        f"{MOVE_LATEST_FORWARD}",
        (
            _ints(d for d, _, _ in latest),
            _times(t for _, t, _ in latest),
            _floats(r.value for _, _, r in latest),
            _words(r.flag for _, _, r in latest),
            _words(r.quality for _, _, r in latest),
        ),
    )
    return inserted


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
    CONFLICT DO NOTHING into the partitioned store (in key order) and one forward-only move
    of the latest values; returns how many observations were new. Flags must be HJ 212 data
    flags and the datastreams must exist (else the whole load fails, nothing stored)."""
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
            "WITH new AS (INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
            " SELECT datastream_id, phenomenon_time, value, flag, quality, %s FROM observation_in"
            " ORDER BY datastream_id, phenomenon_time ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING"
            " RETURNING datastream_id, phenomenon_time, value, quality),"
            " daily AS (INSERT INTO observation_daily (datastream_id, day, observations, valid, valid_sum)"
            " SELECT n.datastream_id, (n.phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date, count(*),"
            " count(*) FILTER (WHERE n.quality = 'good'), coalesce(sum(n.value) FILTER (WHERE n.quality = 'good'), 0)"
            " FROM new n JOIN datastream d ON d.id = n.datastream_id WHERE d.aggregation = 'hour'"
            f" GROUP BY 1, 2 ORDER BY 1, 2{ADD_TO_DAY})"
            " SELECT count(*) FROM new",
            (source,),
        )
        inserted = int((await cur.fetchone())[0])  # type: ignore[index]
        await conn.execute(
            "INSERT INTO datastream_latest (datastream_id, phenomenon_time, result_time, value, flag, quality)"
            " SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, now(), value, flag, quality"
            " FROM observation_in ORDER BY datastream_id, phenomenon_time DESC"
            f"{MOVE_LATEST_FORWARD}"
        )
    return inserted
