"""Status and history queries: each function takes a connection (no request).

Values are read from the hourly datastreams (aggregation ``hour``, HJ 212 CN 2061) for
series and summaries, and from ``datastream_latest`` for the latest status; only ``good``
values count in classes and means (``suspect`` and ``invalid`` ones are shown, flagged).
Days and months are China time (UTC+8), as the standards' daily values are.

The routes' functions read the stations through ``Sources`` (``{station}``): a caller with a
per-feature scope reads only the stations it may (a partner's area), others are not found.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter, defaultdict
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from gis_service.access.scopes import Sources
from gis_service.errors import InvalidRequest, NotFound
from gis_service.monitoring.hj212.factors import FACTORS
from gis_service.monitoring.standards import daily_mean, monthly_mean, o3_8h_moving, o3_daily_max_8h
from gis_service.monitoring.status.assess import (
    CHINA,
    NO_DATA_COLOUR,
    WATER_COLOURS,
    Assessment,
    air_detail,
    china_date,
    classify,
    daily_aqi,
    hourly_aqi,
    water_detail,
)

Step = Literal["hour", "day", "month"]
MAX_RANGE = {"hour": dt.timedelta(days=366), "day": dt.timedelta(days=3 * 366), "month": dt.timedelta(days=10 * 366)}
"""The longest time range of a series per step (checked before any query)."""
FIRST_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LAST_TIME = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
"""The times a series or summary may ask about (the store holds data from 2000 on)."""
WATER_STANDARDS = ("river", "lake", "sea")
WORST_SECTIONS = 5
_STATION = "SELECT s.id, s.code, s.name, s.kind, s.status, s.standard, s.water_target, s.mn FROM {station} AS s"
ALL_STATIONS = Sources({"station": sql.Identifier("station")}, {})
"""Every station (the platform's own reads, and tests)."""
_LATEST = """
SELECT DISTINCT ON (d.factor_code) d.factor_code AS code, d.property, d.unit, d.aggregation,
       l.phenomenon_time AS time, l.value, l.flag, l.quality
FROM datastream AS d JOIN datastream_latest AS l ON l.datastream_id = d.id
WHERE d.station_id = %s
ORDER BY d.factor_code, l.phenomenon_time DESC, d.aggregation = 'hour' DESC
"""
LATEST_OF_STATIONS = """
SELECT DISTINCT ON (d.station_id, d.factor_code) d.station_id, d.factor_code AS code, d.property, d.unit,
       d.aggregation, l.phenomenon_time AS time, l.value, l.flag, l.quality
FROM datastream AS d JOIN datastream_latest AS l ON l.datastream_id = d.id
WHERE d.station_id = ANY(%s)
ORDER BY d.station_id, d.factor_code, l.phenomenon_time DESC, d.aggregation = 'hour' DESC
"""
"""``_LATEST`` of many stations in one query (the status refresh: one round trip, not one a station)."""
_HOURLY = """
SELECT d.station_id, d.factor_code, o.phenomenon_time, o.value, o.quality
FROM datastream AS d JOIN observation AS o ON o.datastream_id = d.id
WHERE d.station_id = ANY(%s) AND d.aggregation = 'hour' AND o.phenomenon_time >= %s AND o.phenomenon_time < %s
"""


async def station(conn: AsyncConnection, station_id: int, stations: Sources = ALL_STATIONS) -> dict[str, Any]:
    """The station's catalog row, or NotFound (also when ``stations`` leaves it out)."""
    cur = conn.cursor(row_factory=dict_row)
    statement = stations.statement(_STATION + " WHERE s.id = %(id)s")
    row = await (await cur.execute(statement, stations.bind({"id": station_id}))).fetchone()
    if row is None:
        raise NotFound(f"no station with id {station_id}")
    return row


async def station_ids(conn: AsyncConnection, stations: Sources) -> frozenset[int]:
    """The ids of the ``stations`` (e.g. those a caller's scope lets it read)."""
    cursor = await conn.execute(stations.statement("SELECT s.id FROM {station} AS s"), stations.bind({}))
    return frozenset(row[0] for row in await cursor.fetchall())


async def _latest_values(conn: AsyncConnection, station_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return await (await cur.execute(_LATEST, (station_id,))).fetchall()


async def hourly(
    conn: AsyncConnection, station_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[tuple[int, str], dict[dt.datetime, float | None]]:
    """Hourly values in [start, end) per (station, factor code): the value, None when not good."""
    out: dict[tuple[int, str], dict[dt.datetime, float | None]] = defaultdict(dict)
    cur = await conn.execute(_HOURLY, (station_ids, start, end))
    for sid, code, time, value, quality in await cur.fetchall():
        out[(sid, code)][time] = value if quality == "good" else None
    return out


def _slots(values: dict[dt.datetime, float | None], start: dt.datetime, hours: int) -> list[float | None]:
    return [values.get(start + dt.timedelta(hours=i)) for i in range(hours)]


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=CHINA)


async def assess(conn: AsyncConnection, row: dict[str, Any], latest: list[dict[str, Any]]) -> Assessment:
    """The station's status from its latest values, by the standard in force on their date."""
    good = [v for v in latest if v["quality"] == "good"]
    if not good or row["standard"] is None:
        return Assessment(max((v["time"] for v in latest), default=None))
    when = max(v["time"] for v in good)
    on = china_date(when)
    values = {v["code"]: v["value"] for v in good}
    if row["standard"] == "air":
        start = when - dt.timedelta(hours=23)
        series = await hourly(conn, [row["id"]], start, when + dt.timedelta(hours=1))
        last_24h = {code: _slots(series.get((row["id"], code), {}), start, 24) for code in values}
        result = hourly_aqi(values, last_24h, on)
        if result is None:
            return Assessment(when, standard="air")
        detail = air_detail(result)
        return Assessment(when, None, None, result.aqi, result.category, result.colour, "air", detail)
    water = classify(row["standard"], values, row["water_target"], on)
    if water is None or water.klass is None:  # none of the latest factors is one the standard assesses
        return Assessment(when, standard=row["standard"])
    detail = water_detail(row["standard"], water, values, {v["code"]: v["unit"] for v in good})
    name = detail["water_class"]
    return Assessment(when, name, water.meets_target, None, None, WATER_COLOURS[name], row["standard"], detail)


async def latest(conn: AsyncConnection, station_id: int, stations: Sources = ALL_STATIONS) -> dict[str, Any]:
    """``/api/stations/{id}/latest``: values per property and the station's class or AQI."""
    row = await station(conn, station_id, stations)
    values = await _latest_values(conn, station_id)
    status = await assess(conn, row, values)
    body: dict[str, Any] = {
        "station": {k: row[k] for k in ("id", "code", "name", "kind", "status", "standard", "water_target", "mn")},
        "observed_at": status.observed_at,
        "values": [
            {
                "code": v["code"],
                "property": v["property"],
                "unit": v["unit"],
                "time": v["time"],
                "value": v["value"],
                "flag": v["flag"],
                "quality": v["quality"],
            }
            for v in values
        ],
        "colour": status.colour,
    }
    if row["standard"] == "air":
        body.update(
            status.detail or {"aqi": None, "primary_pollutant": [], "category": None, "standard": None, "version": None}
        )
    elif row["standard"] in WATER_STANDARDS:
        body.update(
            status.detail
            or {
                "water_class": None,
                "target": row["water_target"],
                "meets_target": None,
                "deciding_factors": [],
                "standard": None,
                "version": None,
            }
        )
    return body


_UPSERT = """
INSERT INTO station_status AS s (station_id, observed_at, water_class, meets_target, aqi, category, colour, standard)
SELECT * FROM unnest(%s::int[], %s::timestamptz[], %s::text[], %s::bool[], %s::int[], %s::text[], %s::text[],
                     %s::text[])
ON CONFLICT (station_id) DO UPDATE SET observed_at = EXCLUDED.observed_at, water_class = EXCLUDED.water_class,
    meets_target = EXCLUDED.meets_target, aqi = EXCLUDED.aqi, category = EXCLUDED.category,
    colour = EXCLUDED.colour, standard = EXCLUDED.standard, updated_at = now()
WHERE (s.water_class, s.meets_target, s.aqi, s.category, s.colour, s.standard)
      IS DISTINCT FROM (EXCLUDED.water_class, EXCLUDED.meets_target, EXCLUDED.aqi, EXCLUDED.category,
                        EXCLUDED.colour, EXCLUDED.standard)
"""


_HAS_VALUES = (
    "SELECT 1 FROM datastream AS d JOIN datastream_latest AS l ON l.datastream_id = d.id WHERE d.station_id = "
)
"""The start of an EXISTS test: the station named after it has latest values."""


async def refresh_status(conn: AsyncConnection, station_ids: list[int] | None = None) -> int:
    """Recompute ``station_status`` of the given stations (all when None), in one transaction;
    rows whose class, AQI or colour did not change are left alone (their tiles stay cached).
    Returns how many stations changed."""
    cur = conn.cursor(row_factory=dict_row)
    query = "SELECT id, code, name, kind, status, standard, water_target, mn FROM station"
    if station_ids is not None:
        await cur.execute(query + " WHERE id = ANY(%s)", (station_ids,))
    else:
        # Every station that has values; one that never reported has no status row (the tiles
        # and files read the status with a LEFT JOIN: no row is "no data"), so a million
        # stations without loggers cost one query, not a million assessments a worker start.
        await cur.execute(query + f" AS station WHERE EXISTS ({_HAS_VALUES}station.id)")
    rows = await cur.fetchall()
    latest: dict[int, list[dict[str, Any]]] = defaultdict(list)
    await cur.execute(LATEST_OF_STATIONS, ([row["id"] for row in rows],))
    for value in await cur.fetchall():
        latest[value.pop("station_id")].append(value)
    states = [(row["id"], await assess(conn, row, latest[row["id"]])) for row in rows]
    if station_ids is None:  # stations whose values are gone (their datastreams deleted)
        async with conn.transaction():
            gone = await conn.execute(f"DELETE FROM station_status AS s WHERE NOT EXISTS ({_HAS_VALUES}s.station_id)")
        if not states:
            return gone.rowcount
    if not states:
        return 0
    columns = list(
        zip(
            *(
                (sid, s.observed_at, s.water_class, s.meets_target, s.aqi, s.category, s.colour, s.standard)
                for sid, s in states
            ),
            strict=True,
        )
    )
    async with conn.transaction():
        changed = await conn.execute(_UPSERT, [list(c) for c in columns])
    return changed.rowcount


async def refresh_all_status(database_url: str) -> int:
    """Every station's status now, on a connection of its own (after a bulk load such as the
    demo's, so the first service start finds it current)."""
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        return await refresh_status(conn)


def factor_code(prop: str) -> str:
    """A factor given by HJ 212 code or property name (``w21003``, ``NH3-N``), as its code."""
    key = prop.strip()
    if key.lower() in FACTORS:
        return key.lower()
    for code, factor in FACTORS.items():
        if factor.name.lower() == key.lower():
            return code
    known = ", ".join(f"{c} ({f.name})" for c, f in FACTORS.items())
    raise InvalidRequest(f"unknown property {prop!r}: use an HJ 212 factor code or name: {known}")


def check_range(start: dt.datetime, end: dt.datetime, step: Step) -> None:
    """Refuse a reversed, naive or too long range before any query."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRequest("from and to need a time zone (e.g. 2026-05-01T00:00:00+08:00 or ...Z)")
    if end <= start:
        raise InvalidRequest(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    if start < FIRST_TIME or end > LAST_TIME:
        raise InvalidRequest(f"from and to must lie between {FIRST_TIME:%Y-%m-%d} and {LAST_TIME:%Y-%m-%d}")
    if end - start > MAX_RANGE[step]:
        raise InvalidRequest(f"a series with step={step} spans at most {MAX_RANGE[step].days} days; ask for less")


async def series(
    conn: AsyncConnection,
    station_id: int,
    prop: str,
    start: dt.datetime,
    end: dt.datetime,
    step: Step,
    stations: Sources = ALL_STATIONS,
) -> dict[str, Any]:
    """``/api/stations/{id}/series``: hourly values, or daily / monthly means by the validity rules."""
    check_range(start, end, step)
    code = factor_code(prop)
    row = await station(conn, station_id, stations)
    factor = FACTORS[code]
    medium: Literal["air", "water"] = "air" if factor.medium == "air" else "water"
    body: dict[str, Any] = {
        "station_id": station_id,
        "code": code,
        "property": factor.name,
        "unit": factor.unit,
        "step": step,
        "from": start,
        "to": end,
    }
    if step == "hour":
        cur = await conn.execute(
            "SELECT o.phenomenon_time, o.value, o.flag, o.quality FROM datastream AS d"
            " JOIN observation AS o ON o.datastream_id = d.id WHERE d.station_id = %s AND d.factor_code = %s"
            " AND d.aggregation = 'hour' AND o.phenomenon_time >= %s AND o.phenomenon_time < %s"
            " ORDER BY o.phenomenon_time",
            (row["id"], code, start, end),
        )
        points = [{"time": t, "value": v, "flag": f, "quality": q} for t, v, f, q in await cur.fetchall()]
        body["points"] = points
        body["valid"] = sum(p["quality"] == "good" for p in points)
        body["count"] = len(points)
        return body
    first = start.astimezone(CHINA).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(CHINA).date()
    if step == "month":
        first = first.replace(day=1)
    values = (
        await hourly(
            conn, [row["id"]], _day_start(first) - dt.timedelta(hours=7), _day_start(last) + dt.timedelta(days=1)
        )
    ).get((row["id"], code), {})
    days = {}
    day = first
    while day <= last:
        days[day] = _daily(values, day, code, medium)
        day += dt.timedelta(days=1)
    if step == "day":
        body["points"] = [_point(day.isoformat(), agg) for day, agg in days.items()]
    else:
        months = []
        month = first
        while month <= last:
            n = calendar.monthrange(month.year, month.month)[1]
            daily = [days[d].value if d in days else None for d in (month.replace(day=i) for i in range(1, n + 1))]
            months.append(_point(f"{month:%Y-%m}", monthly_mean(daily, year=month.year, month=month.month)))
            month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        body["points"] = months
    body["valid"] = sum(p["value"] is not None for p in body["points"])
    body["count"] = len(body["points"])
    return body


def _daily(values: dict[dt.datetime, float | None], day: dt.date, code: str, medium: Literal["air", "water"]):
    start = _day_start(day)
    if code == "a05024":  # O3: the daily maximum 8-hour mean (the 8-hour windows end in the day)
        hours = _slots(values, start - dt.timedelta(hours=7), 31)
        return o3_daily_max_8h(o3_8h_moving(hours))
    return daily_mean(_slots(values, start, 24), medium=medium)


def _point(period: str, agg) -> dict[str, Any]:
    return {"period": period, "value": agg.value, "valid": agg.valid, "required": agg.required, "reason": agg.reason}


async def _stations(conn: AsyncConnection, standards: tuple[str, ...], stations: Sources) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    query = stations.statement(
        "SELECT s.id, s.code, s.name, s.kind, s.standard, s.water_target FROM {station} AS s"
        " WHERE s.standard = ANY(%(standards)s) ORDER BY s.id"
    )
    return await (await cur.execute(query, stations.bind({"standards": list(standards)}))).fetchall()


def check_day(day: dt.date) -> dt.date:
    """Refuse a day outside the years the store may hold."""
    if not FIRST_TIME.date() <= day < LAST_TIME.date():
        raise InvalidRequest(f"the date must lie between {FIRST_TIME:%Y-%m-%d} and {LAST_TIME:%Y-%m-%d}, got {day}")
    return day


def parse_period(date: dt.date | None, month: str | None) -> tuple[dt.date, dt.date]:
    """The first and last day of ``date`` or ``month`` (YYYY-MM); exactly one must be given."""
    if (date is None) == (month is None):
        raise InvalidRequest("give exactly one of date=YYYY-MM-DD or month=YYYY-MM")
    if date is not None:
        return check_day(date), date
    try:
        first = dt.datetime.strptime(month or "", "%Y-%m").date()
    except ValueError:
        raise InvalidRequest(f"month must be YYYY-MM, got {month!r}") from None
    check_day(first)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


async def water_summary(
    conn: AsyncConnection, first: dt.date, last: dt.date, stations: Sources = ALL_STATIONS
) -> dict[str, Any]:
    """Sections per class, the share meeting their target (达标率) and the worst sections, for
    a day (daily means) or a month (monthly means of the daily means), of the ``stations``."""
    rows = await _stations(conn, WATER_STANDARDS, stations)
    values = await hourly(conn, [r["id"] for r in rows], _day_start(first), _day_start(last) + dt.timedelta(days=1))
    sections = []
    for row in rows:
        codes = {code for sid, code in values if sid == row["id"]}
        means: dict[str, float] = {}
        for code in codes:
            daily = {}
            day = first
            while day <= last:
                daily[day] = daily_mean(_slots(values[(row["id"], code)], _day_start(day), 24), medium="water")
                day += dt.timedelta(days=1)
            if first == last:
                agg = daily[first]
            else:
                days = [daily[first.replace(day=i)].value for i in range(1, last.day + 1)]
                agg = monthly_mean(days, year=first.year, month=first.month)
            if agg.value is not None:
                means[code] = agg.value
        result = classify(row["standard"], means, row["water_target"], first) if means else None
        entry = {"id": row["id"], "code": row["code"], "name": row["name"], "water_body": row["standard"]}
        if result is None:
            sections.append({**entry, "water_class": None, "target": row["water_target"], "meets_target": None})
            continue
        detail = water_detail(row["standard"], result, means, {c: FACTORS[c].unit for c in means})
        sections.append(
            {
                **entry,
                **{
                    k: detail[k]
                    for k in ("water_class", "target", "meets_target", "deciding_factors", "standard", "version")
                },
            }
        )
    assessed = [s for s in sections if s["water_class"] is not None]
    judged = [s for s in assessed if s["meets_target"] is not None]
    per_class = Counter(s["water_class"] for s in assessed)
    surface, sea = ["I", "II", "III", "IV", "V", "劣V"], ["一类", "二类", "三类", "四类", "劣四类"]
    order = surface + sea
    worst = sorted(
        assessed,
        key=lambda s: (
            -(sea if s["water_body"] == "sea" else surface).index(s["water_class"]),
            -max((f["exceedance_multiple"] or 0.0 for f in s["deciding_factors"]), default=0.0),
        ),
    )[:WORST_SECTIONS]
    return {
        "from": first,
        "to": last,
        "sections": len(sections),
        "assessed": len(assessed),
        "per_class": {k: per_class[k] for k in order if per_class[k]},
        "meeting_target": sum(bool(s["meets_target"]) for s in judged),
        "share_meeting_target": round(sum(bool(s["meets_target"]) for s in judged) / len(judged), 4)
        if judged
        else None,
        "worst": [
            {k: s[k] for k in ("id", "code", "name", "water_class", "target", "meets_target", "deciding_factors")}
            for s in worst
        ],
        "stations": sections,
    }


async def air_summary(conn: AsyncConnection, day: dt.date, stations: Sources = ALL_STATIONS) -> dict[str, Any]:
    """The daily AQI (日报) of every air station (of the ``stations``) and how many fall in each category."""
    check_day(day)
    rows = await _stations(conn, ("air",), stations)
    start = _day_start(day)
    values = await hourly(conn, [r["id"] for r in rows], start - dt.timedelta(hours=7), start + dt.timedelta(days=1))
    stations = []
    for row in rows:
        codes = {code for sid, code in values if sid == row["id"]}
        hours = {c: _slots(values[(row["id"], c)], start, 24) for c in codes}
        if "a05024" in hours:  # the 8-hour windows ending in the day's first hours reach back 7 hours
            hours["a05024"] = _slots(values[(row["id"], "a05024")], start - dt.timedelta(hours=7), 31)
        result = daily_aqi(hours, day)
        entry = {"id": row["id"], "code": row["code"], "name": row["name"]}
        if result is None:
            stations.append({**entry, "aqi": None, "primary_pollutant": [], "category": None, "colour": NO_DATA_COLOUR})
        else:
            detail = air_detail(result)
            stations.append(
                {
                    **entry,
                    **{
                        k: detail[k]
                        for k in ("aqi", "primary_pollutant", "category", "level", "colour", "standard", "version")
                    },
                }
            )
    counts = Counter(s["category"] for s in stations if s["category"])
    return {"date": day, "stations": stations, "categories": dict(counts)}
