"""The observation store (migration 0010): write data packets' observations, one packet or a group per transaction.

A packet is stored whole or not at all: its MN must name a station (``station.mn``),
every factor code must be known (``hj212.factors``); datastreams are created on first
sight of a known factor at a known station. Observations already stored for a
(datastream, phenomenon time) stay as they are (a re-sent packet is a no-op). Whatever
inserts observations, the statement-level trigger of migration 0021 moves
``datastream_latest`` forward, adds hourly values to ``observation_daily`` and notifies
``ecomap_observation``, in the same statement and transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from gis_service.monitoring.hj212.codec import DataPacket, HJ212Error, Reading
from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY

logger = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
"""Data times accepted: from 2000 to a day ahead of the server's clock (a logger's clock
may run fast; a year 1900 or 2099 time is a fault, and would create a partition)."""
MONTHS_AHEAD = 2
OBSERVATION_CHANNEL = "ecomap_observation"
"""NOTIFY channel of stored observations, one per station and statement (the trigger of migration
0021): ``{"event": "observation", "station_id", "mn", "time", "inserted", "source"}``."""
ADD_TO_DAY = (
    " ON CONFLICT (datastream_id, day) DO UPDATE SET observations = observation_daily.observations"
    " + EXCLUDED.observations, valid = observation_daily.valid + EXCLUDED.valid,"
    " valid_sum = observation_daily.valid_sum + EXCLUDED.valid_sum"
)
"""The end of an insert into observation_daily: a day's counts and sum grow by the new observations'
(as the trigger of migration 0021 adds them; ``bench/observations_bench.py`` fills partitions it writes directly)."""


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


RESOLVE = (
    "SELECT k.i, s.id, d.id FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS k(mn, a, c, i)"
    " LEFT JOIN station s ON s.mn = k.mn"
    " LEFT JOIN datastream d ON d.station_id = s.id AND d.aggregation = k.a AND d.factor_code = k.c"
)
"""Each (MN, aggregation, factor code) of a group: its station (NULL: unknown MN) and datastream
(NULL: none yet), by position (1-based)."""
INSERT_ROWS = (
    "INSERT INTO observation (datastream_id, phenomenon_time, value, value_min, value_max, flag, quality, source)"
    " SELECT d, t, v, lo, hi, f, q, %s FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[],"
    " %s::float8[], %s::text[], %s::text[]) AS r(d, t, v, lo, hi, f, q)"
    " ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING"
)
"""A group's observations, in (datastream, time) order (one lock order for all concurrent groups);
its trigger (migration 0021) moves the latest values, adds to the daily sums and notifies."""
INSERTED_HERE = (
    "SELECT r.i FROM unnest(%s::bigint[], %s::timestamptz[]) WITH ORDINALITY AS r(d, t, i)"
    " JOIN observation o ON o.datastream_id = r.d AND o.phenomenon_time = r.t"
    " WHERE o.xmin = pg_current_xact_id()::xid"
)
"""Which of these (datastream, time) keys this transaction inserted (by position, 1-based): asked
only when a group was partly new, partly stored already."""


async def store_packets(
    conn: AsyncConnection, packets: Sequence[DataPacket], partitions: PartitionKeeper, source: str = "hj212"
) -> list[StoredPacket | HJ212Error]:
    """Store many packets in one transaction (group commit), committed on return; per packet,
    in order, what was stored or why it was refused.

    Every packet is checked before anything is written (time range, MN) and a refused one
    stores nothing: the values that reach the INSERT are the codec's, valid for every
    constraint, so one packet cannot make the others fail. A re-sent packet, or the same
    packet twice in the group, is a duplicate like ``store_packet``'s. Datastreams are
    created for a known factor's first value at a station."""
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
        keys = [_key(packets[i], r) for i in checked for r in packets[i].readings]
        found = await _resolve(conn, keys)
        lacking = []  # packets of known stations with a factor seen for the first time
        for i in checked:
            packet = packets[i]
            station = found[_key(packet, packet.readings[0])][0]
            if station is not None and any(found[_key(packet, r)][1] is None for r in packet.readings):
                lacking.append((station, packet))
        if lacking:
            await _create_datastreams(conn, lacking)
            found.update(await _resolve(conn, sorted({k for k in keys if found[k][1] is None})))
        stations: dict[int, int] = {}
        rows: list[tuple[int, datetime, Reading]] = []
        owners: list[int] = []  # the packet of each row
        seen: set[tuple[int, datetime]] = set()
        for i in checked:
            packet = packets[i]
            station = found[_key(packet, packet.readings[0])][0]
            if station is None:
                results[i] = HJ212Error(
                    "mn", f"unknown MN {packet.frame.mn!r}: no station has this device code (station property mn)"
                )
                continue
            stations[i] = station
            results[i] = StoredPacket(station, 0, len(packet.readings))
            for r in packet.readings:
                # None only if the station went meanwhile: datastream 0 is none, the trigger fails the group
                stream = found[_key(packet, r)][1] or 0
                if (stream, packet.data_time) not in seen:  # a second copy in the group is a duplicate
                    seen.add((stream, packet.data_time))
                    rows.append((stream, packet.data_time, r))
                    owners.append(i)
        order = sorted(range(len(rows)), key=lambda j: (rows[j][0], rows[j][1]))
        rows, owners = [rows[j] for j in order], [owners[j] for j in order]
        inserted = await _insert_rows(conn, rows, source)
        if inserted == len(rows):
            new = owners
        elif inserted == 0:
            new = []
        else:  # partly re-sent: ask which rows this transaction inserted
            cur = await conn.execute(INSERTED_HERE, (_ints(d for d, _, _ in rows), _times(t for _, t, _ in rows)))
            new = [owners[int(j) - 1] for (j,) in await cur.fetchall()]
        for i, count in Counter(new).items():
            results[i] = StoredPacket(stations[i], count, len(packets[i].readings) - count)
    return [r for r in results if r is not None]


def _key(packet: DataPacket, reading: Reading) -> tuple[str, str, str]:
    return packet.frame.mn, packet.aggregation, reading.code


async def _resolve(
    conn: AsyncConnection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[int | None, int | None]]:
    """(station, datastream) ids of (MN, aggregation, factor code) keys (``RESOLVE``)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return {}
    cur = await conn.execute(
        RESOLVE, (_texts(k[0] for k in unique), _words(k[1] for k in unique), _words(k[2] for k in unique))
    )
    return {unique[int(i) - 1]: (station, stream) for i, station, stream in await cur.fetchall()}


async def _insert_rows(conn: AsyncConnection, rows: list[tuple[int, datetime, Reading]], source: str) -> int:
    """``INSERT_ROWS``: how many of ``rows`` (datastream, time, reading) were new."""
    if not rows:
        return 0
    times: dict[datetime, str] = {}  # a packet's time is every one of its rows' time: formatted once
    cur = await conn.execute(
        INSERT_ROWS,
        (
            source,
            _ints(d for d, _, _ in rows),
            "{" + ",".join(times.get(t) or times.setdefault(t, '"' + t.isoformat() + '"') for _, t, _ in rows) + "}",
            _floats(r.value for _, _, r in rows),
            _floats(r.minimum for _, _, r in rows),
            _floats(r.maximum for _, _, r in rows),
            _words(r.flag for _, _, r in rows),
            _words(FLAG_QUALITY[r.flag] for _, _, r in rows),
        ),
    )
    return cur.rowcount


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


def copy_text(rows: Iterable[tuple[int, datetime, float, str]]) -> str:
    """COPY text lines (datastream, phenomenon time, value, flag, quality) of observations: formatted
    here, each distinct time once (a network's rows share their hours), several times faster than
    a row-by-row ``write_row`` (the bulk path's Python cost). Flags must be HJ 212 data flags
    (KeyError otherwise); the other values are numbers and times: nothing to escape."""
    times: dict[datetime, str] = {}
    lines = []
    for ident, moment, value, flag in rows:
        text = times.get(moment)
        if text is None:
            text = times[moment] = moment.isoformat()
        lines.append(f"{int(ident)}\t{text}\t{float(value)!r}\t{flag}\t{FLAG_QUALITY[flag]}\n")
    return "".join(lines)


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
            await copy.write(copy_text((r.datastream_id, r.phenomenon_time, r.value, r.flag) for r in rows))
        cur = await conn.execute(
            "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
            " SELECT datastream_id, phenomenon_time, value, flag, quality, %s FROM observation_in"
            " ORDER BY datastream_id, phenomenon_time ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING",
            (source,),
        )
    return cur.rowcount
