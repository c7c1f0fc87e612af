"""Observation store benchmark: the read queries of the monitoring network at 100 M observations.

    .venv/bin/python -m bench.observations_bench                 # 100 M rows, writes bench/results/observations.md
    .venv/bin/python -m bench.observations_bench --rows 2000000  # a small run (figures printed only)

The dataset lives in its own database (``ecomap_bench_obs``, migrated like any other) and
is reused while it holds the requested size (``--rebuild`` to rebuild, ``--drop`` to drop
it at the end). 10,000 stations (scaled with ``--rows``) of the seven kinds, each with its
hourly datastreams (water kinds 7 factors, air 6), hourly from 2026-10-31 16:00 UTC (1
November Beijing time) to 1 December 2026 for every station, and for the whole year from
1 December 2025 for enough stations to reach the requested size (a network whose older
stations have a long history) — about 100 M observations. Values follow a diurnal cycle
with noise around a level per station (so sections fall in different classes); 2 % of
hours are flagged D (fault, invalid). Each month's partition is written in time order (as
the ingest writes it), then indexed and attached; ``datastream_latest`` holds every
datastream's last value. The naive reference is one unpartitioned table with the same
columns and rows and a plain primary key (datastream_id, phenomenon_time), no latest
table, written in the same order.

Queries, each repeated with varying parameters, store and naive interleaved, p95 and median:
latest values of every datastream of all stations (naive: the newest row per datastream
by its key, LATERAL … LIMIT 1); one station's one-year hourly series of one property;
a month (November, Beijing time) of daily classes of all sections (daily means of valid
hours by the standards engine's validity rule, then GB 3838 classes of all of them at once
(``surface_water_classes``) against each section's river target); the SensorThings query
``Observations?$filter=phenomenonTime ge … and phenomenonTime lt …&$top=1000`` (one day;
its SQL in the API's default order, and over HTTP when the service has the endpoint);
and the disk size per million observations.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from bench.monitoring import (
    create_database,
    database_exists,
    database_url,
    drop_database,
    machine_facts,
    now_text,
    summary_ms,
)
from gis_service.monitoring.hj212.codec import CHINA_TIME
from gis_service.monitoring.standards.tables import validity_rules
from gis_service.monitoring.standards.water import surface_water_classes
from gis_service.monitoring.store import ADD_TO_DAY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "observations.md"
DATABASE = "ecomap_bench_obs"
FULL_ROWS = 100_000_000
FULL_STATIONS = 10_000
DATASET_VERSION = 5
"""Bumped when the generated data changes: an older dataset is rebuilt."""
YEAR_START = datetime(2025, 12, 1, tzinfo=UTC)
ALL_START = datetime(2026, 10, 31, 16, tzinfo=UTC)  # 1 November, Beijing time
END = datetime(2026, 12, 1, tzinfo=UTC)
MONTH = (datetime(2026, 11, 1, tzinfo=CHINA_TIME), datetime(2026, 12, 1, tzinfo=CHINA_TIME))
"""The month of daily classes: November 2026, Beijing time."""
KINDS = [  # kind, share of stations
    ("section", 0.10),
    ("water_auto", 0.20),
    ("seawater", 0.10),
    ("drinking_intake", 0.05),
    ("outfall", 0.10),
    ("air_national", 0.05),
    ("air_local", 0.40),
]
WATER = {  # factor: typical level (mg/L; pH unitless)
    "w01001": 7.4,
    "w01009": 6.5,
    "w01018": 15.0,
    "w01019": 4.0,
    "w21003": 0.6,
    "w21011": 0.15,
    "w21001": 1.0,
}
AIR = {"a34004": 30.0, "a34002": 50.0, "a21026": 8.0, "a21004": 28.0, "a21005": 0.7, "a05024": 90.0}
TARGETS = ["II", "III", "III", "III", "IV"]
SETTINGS = ("SET jit = off", "SET max_parallel_workers_per_gather = 0")
"""The service's pool settings (gis_service/db.py), for every measured connection."""


def factors_of(kind: str) -> dict[str, float]:
    return AIR if kind.startswith("air") else WATER


def plan(rows: int) -> tuple[int, int]:
    """Stations, and how many of them (the first) have the whole year, for about ``rows`` observations."""
    stations = max(50, round(FULL_STATIONS * rows / FULL_ROWS))
    per_station = sum(share * len(factors_of(kind)) for kind, share in KINDS)
    recent_hours = (END - ALL_START) // timedelta(hours=1)
    older_hours = (ALL_START - YEAR_START) // timedelta(hours=1)
    recent = stations * per_station * recent_hours
    year_stations = max(1, round((rows - recent) / (per_station * older_hours)))
    return stations, min(stations, year_stations)


def kind_of(i: int) -> str:
    """The kind of station ``i`` (1-based): the shares of KINDS, interleaved over the ids."""
    position = (i * 0.6180339887) % 1.0
    for kind, share in KINDS:
        if position < share:
            return kind
        position -= share
    return KINDS[-1][0]


def partition_months() -> list[datetime]:
    months, month = [], YEAR_START
    while month < END:
        months.append(month)
        month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    return months


GENERATE = (
    "INSERT INTO {table} (datastream_id, phenomenon_time, result_time, value, flag, quality, source)"
    " SELECT d.id, h, h + interval '5 minutes',"
    " round(d.level * (1 + 0.15 * sin(extract(epoch FROM h) / 13751 + d.phase)) * (0.85 + 0.3 * d.noise) * 1000)"
    " / 1000, CASE WHEN d.fault THEN 'D' ELSE 'N' END, CASE WHEN d.fault THEN 'invalid' ELSE 'good' END, 'bench'"
    " FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour', interval '1 hour') AS h,"
    " LATERAL (SELECT s.id, s.level, s.phase,"
    "   (hashint8(s.id * 100003 + extract(epoch FROM h)::bigint) & 65535) / 65536.0 AS noise,"
    "   (hashint8(s.id * 100019 + extract(epoch FROM h)::bigint + 7) & 65535) < 1311 AS fault"
    "   FROM bench_stream s WHERE s.whole_year OR h >= %s) AS d"
)
"""One month of hourly values, hour after hour with every datastream reporting then (time
order, as the ingest writes); noise and 2 % faults are hashes of (datastream, hour)."""


DAILY_FILL = (
    "INSERT INTO observation_daily (datastream_id, day, observations, valid, valid_sum)"
    " SELECT o.datastream_id, (o.phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date, count(*),"
    " count(*) FILTER (WHERE o.quality = 'good'), coalesce(sum(o.value) FILTER (WHERE o.quality = 'good'), 0)"
    " FROM {table} o JOIN datastream d ON d.id = o.datastream_id WHERE d.aggregation = 'hour' GROUP BY 1, 2"
    f"{ADD_TO_DAY}"
)
"""The daily sums the ingest keeps (``store.ADD_TO_DAY``), filled for a partition written at once
(a Beijing day may straddle two months' partitions: the second adds to the first's row)."""


def _fill_store(url: str, key: str) -> float:
    """Each month written into a table of its own, keyed (the store's own key, so attaching
    does not rebuild it), attached as the month's partition and vacuumed; seconds taken."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for month in partition_months():
            following = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
            name = f"observation_y{month:%Y}m{month:%m}"
            conn.execute(f"CREATE TABLE {name} (LIKE observation INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            conn.execute(GENERATE.format(table=name), (month, following, ALL_START))
            conn.execute(f"ALTER TABLE {name} ADD {key}")
            bounds = f"FROM ('{month.isoformat()}') TO ('{following.isoformat()}')"
            conn.execute(f"ALTER TABLE observation ATTACH PARTITION {name} FOR VALUES {bounds}")
            conn.execute(DAILY_FILL.format(table=name))
            conn.execute(f"VACUUM (ANALYZE) {name}")  # the visibility map: index-only scans
            print(f"   store: {name} written, keyed, attached ({time.monotonic() - started:.0f} s so far)")
    return time.monotonic() - started


def _fill_naive(url: str) -> float:
    """The naive table: the same rows month after month into one table, then its key; seconds taken."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for month in partition_months():
            following = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
            conn.execute(GENERATE.format(table="observation_naive"), (month, following, ALL_START))
        print(f"   naive: written ({time.monotonic() - started:.0f} s so far)")
        conn.execute("ALTER TABLE observation_naive ADD PRIMARY KEY (datastream_id, phenomenon_time)")
        conn.execute("VACUUM (ANALYZE) observation_naive")
        print(f"   naive: keyed and vacuumed ({time.monotonic() - started:.0f} s)")
    return time.monotonic() - started


async def _refresh_status(url: str) -> None:
    """Fill ``station_status`` as ingest keeps it: the product's ``refresh_status`` on every station."""
    from gis_service.monitoring.status.service import refresh_status

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await refresh_status(conn)


def build(url: str, rows: int) -> dict:
    """Generate the dataset (store and naive reference); returns its facts."""
    stations, year_stations = plan(rows)
    rng = random.Random(2026)
    timings = {}
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "INSERT INTO river (name, segment, target_class, geom)"
            " SELECT '基准河' || i, '河段' || i, (%s::text[])[1 + i %% %s],"
            " ST_Multi(ST_MakeLine(ST_MakePoint(117.9 + i * 0.001, 24.4), ST_MakePoint(117.9 + i * 0.001, 24.5)))"
            " FROM generate_series(1, 100) AS i",
            (TARGETS, len(TARGETS)),
        )
        river_ids = [r[0] for r in conn.execute("SELECT id FROM river ORDER BY id")]
        with conn.cursor().copy("COPY station (id, code, name, kind, mn, river_id, geom) FROM STDIN") as copy:
            for i in range(1, stations + 1):
                kind = kind_of(i)
                lon, lat = 117.9 + rng.random() * 0.5, 24.4 + rng.random() * 0.5
                river = river_ids[i % len(river_ids)] if kind == "section" else None
                copy.write_row(
                    (i, f"B{i:05d}", f"基准站{i}", kind, f"BENCH{i:010d}", river, f"SRID=4326;POINT({lon} {lat})")
                )
        conn.execute("SELECT setval(pg_get_serial_sequence('station', 'id'), %s)", (stations,))
        # Each datastream's level: around the factor's typical value, worse or better by station.
        conn.execute(
            "CREATE TABLE bench_stream (id bigint PRIMARY KEY, level float8, phase float8, whole_year boolean)"
        )
        with conn.cursor().copy(
            "COPY datastream (id, station_id, factor_code, aggregation, property, unit) FROM STDIN"
        ) as copy:
            streams = []
            ident = 0
            for i in range(1, stations + 1):
                pollution = rng.lognormvariate(0, 0.45)
                for code, level in factors_of(kind_of(i)).items():
                    ident += 1
                    copy.write_row((ident, i, code, "hour", code, "mg/L"))
                    # DO falls and pH hardly moves as pollution grows.
                    value = level / pollution if code == "w01009" else level * pollution if code != "w01001" else level
                    streams.append((ident, value, rng.uniform(0, 6.283), i <= year_stations))
        with conn.cursor().copy("COPY bench_stream FROM STDIN") as copy:
            for row in streams:
                copy.write_row(row)
        conn.execute("SELECT setval(pg_get_serial_sequence('datastream', 'id'), %s)", (len(streams),))
        conn.execute("ANALYZE bench_stream")
        timings["catalog"] = time.monotonic() - started
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'observation'::regclass"
            " AND contype = 'p'"
        ).fetchone()[0]
        conn.execute("CREATE TABLE observation_naive (LIKE observation INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # The store and the naive table written at once (two connections, the machine's two cores):
        # the values are a function of (datastream, hour), so both hold the same rows.
        with ThreadPoolExecutor(2) as pool:
            store = pool.submit(_fill_store, url, key)
            naive = pool.submit(_fill_naive, url)
            timings["store"], timings["naive"] = store.result(), naive.result()
        conn.execute(
            "INSERT INTO datastream_latest (datastream_id, phenomenon_time, result_time, value, flag, quality)"
            " SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result_time, value, flag, quality"
            " FROM observation WHERE phenomenon_time >= %s ORDER BY datastream_id, phenomenon_time DESC",
            (END - timedelta(hours=1),),
        )
        # Again once nothing else writes: a partition vacuumed while the other connection's
        # long transaction was open could not be marked all-visible (no index-only scans).
        conn.execute("VACUUM (ANALYZE) observation")
        started_status = time.monotonic()
        asyncio.run(_refresh_status(url))  # the product's own status rows (kept at ingest in service)
        timings["status"] = time.monotonic() - started_status
        for table in (
            "observation",
            "datastream_latest",
            "observation_daily",
            "datastream",
            "station",
            "station_status",
        ):
            conn.execute(f"ANALYZE {table}")
        count = conn.execute("SELECT count(*) FROM observation").fetchone()[0]
        conn.execute(
            "CREATE TABLE bench_meta (requested bigint, observations bigint, stations int, year_stations int,"
            " version int, built_at timestamptz, timings text)"
        )
        conn.execute(
            "INSERT INTO bench_meta VALUES (%s, %s, %s, %s, %s, now(), %s)",
            (rows, count, stations, year_stations, DATASET_VERSION, repr(timings)),
        )
    return dataset_facts(url)


def dataset_facts(url: str) -> dict | None:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('bench_meta')").fetchone()[0] is None:
            return None
        row = conn.execute(
            "SELECT requested, observations, stations, year_stations, version, built_at, timings FROM bench_meta"
        ).fetchone()
    keys = ("requested", "observations", "stations", "year_stations", "version", "built_at", "timings")
    return dict(zip(keys, row, strict=True))


def sizes(url: str) -> dict[str, int]:
    """Bytes on disk (tables, indexes, TOAST) of the store and of the naive table."""
    with psycopg.connect(url) as conn:
        store = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'observation'::regclass"
        ).fetchone()[0]
        latest = conn.execute("SELECT pg_total_relation_size('datastream_latest')").fetchone()[0]
        naive = conn.execute("SELECT pg_total_relation_size('observation_naive')").fetchone()[0]
        pk = conn.execute(
            "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid"
            " WHERE h.inhparent = 'observation'::regclass AND i.indisprimary"
        ).fetchone()[0]
        brin = conn.execute(
            "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE h.inhparent = 'observation'::regclass AND a.amname = 'brin'"
        ).fetchone()[0]
    return {"store": int(store), "latest": int(latest), "naive": int(naive), "pk": int(pk), "brin": int(brin)}


# ---------------------------------------------------------------- queries

LATEST_STORE = (
    "SELECT d.station_id, d.factor_code, l.phenomenon_time, l.value, l.quality"
    " FROM datastream_latest l JOIN datastream d ON d.id = l.datastream_id"
)
LATEST_STATUS = (
    "SELECT s.id, t.observed_at, t.water_class, t.meets_target, t.aqi, t.category, t.colour, t.standard"
    " FROM station s LEFT JOIN station_status t ON t.station_id = s.id"
)
"""The map's and the summaries' status of every station: one row each, kept at ingest (migration 0011)."""
LATEST_NAIVE = (
    "SELECT d.station_id, d.factor_code, o.phenomenon_time, o.value, o.quality FROM datastream d"
    " CROSS JOIN LATERAL (SELECT phenomenon_time, value, quality FROM {table} o WHERE o.datastream_id = d.id"
    " ORDER BY o.phenomenon_time DESC LIMIT 1) AS o"
)
SERIES = (
    "SELECT phenomenon_time, value, quality FROM {table}"
    " WHERE datastream_id = %s AND phenomenon_time >= %s AND phenomenon_time < %s ORDER BY phenomenon_time"
)
DAILY_STORE = (
    "SELECT d.station_id, d.factor_code, y.day, y.valid, y.valid_sum / nullif(y.valid, 0)"
    " FROM observation_daily y JOIN datastream d ON d.id = y.datastream_id JOIN station s ON s.id = d.station_id"
    " WHERE s.kind = 'section' AND d.aggregation = 'hour' AND y.day >= %s AND y.day < %s"
)
"""The store's daily means: the day sums kept at ingest (migration 0012)."""
DAILY = (
    "SELECT d.station_id, d.factor_code, (o.phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date AS day,"
    " count(*) FILTER (WHERE o.quality = 'good') AS valid, avg(o.value) FILTER (WHERE o.quality = 'good') AS mean"
    " FROM {table} o JOIN datastream d ON d.id = o.datastream_id JOIN station s ON s.id = d.station_id"
    " WHERE s.kind = 'section' AND d.aggregation = 'hour' AND o.phenomenon_time >= %s AND o.phenomenon_time < %s"
    " GROUP BY 1, 2, 3"
)
STA_WINDOW = (
    "SELECT datastream_id, phenomenon_time, result_time, value, flag, quality FROM {table}"
    " WHERE phenomenon_time >= %s AND phenomenon_time < %s ORDER BY datastream_id, phenomenon_time LIMIT 1001"
)
"""The SensorThings Observations query's SQL in the API's default order (datastream, time), $top + 1
(the extra row tells whether an @iot.nextLink is due)."""


def daily_classes(conn: psycopg.Connection, table: str) -> tuple[int, float]:
    """A month of daily classes for all sections; how many section-days got a class, and the
    seconds spent classifying (the rest is SQL)."""
    cursor = conn.cursor(binary=True)  # numbers and dates decoded from binary: a third less time
    if table == "observation":
        rows = cursor.execute(DAILY_STORE, (MONTH[0].date(), MONTH[1].date())).fetchall()
    else:
        rows = cursor.execute(DAILY.format(table=table), MONTH).fetchall()
    started = time.perf_counter()
    targets = dict(
        conn.execute(
            "SELECT s.id, coalesce(r.target_class, 'III') FROM station s LEFT JOIN river r ON r.id = s.river_id"
            " WHERE s.kind = 'section'"
        ).fetchall()
    )
    needed = validity_rules()["water_daily"].min_valid
    samples: dict[tuple[int, dt.date], int] = {}
    columns: dict[str, dict[int, float]] = defaultdict(dict)
    for station, code, day, valid, mean in rows:
        if valid >= needed:
            columns[code][samples.setdefault((station, day), len(samples))] = mean
    arrays = {}
    for code, by_sample in columns.items():
        array = np.full(len(samples), np.nan)
        array[list(by_sample)] = list(by_sample.values())
        arrays[code] = array
    classes, _ = surface_water_classes(arrays, [targets[station] for station, _ in samples], water_body="river")
    classified = sum(klass is not None for klass in classes)
    return classified, time.perf_counter() - started


def explain(conn: psycopg.Connection, query: str, params: tuple) -> str:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
    return "\n".join(r[0] for r in rows)


def measure(runs: int, make: Callable[[int], Callable[[], object]]) -> list[float]:
    """Durations in seconds of ``runs`` calls, ``make(i)`` building the i-th call (its parameters)."""
    durations = []
    for i in range(runs):
        call = make(i)
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def has_route(path: str) -> bool:
    from gis_service.app import create_app
    from gis_service.settings import Settings

    return any(getattr(r, "path", None) == path for r in create_app(Settings()).routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="observations in the store (about)")
    parser.add_argument("--runs", type=int, default=30, help="runs of each fast query (store and naive each)")
    parser.add_argument("--daily-runs", type=int, default=5, help="runs of the month of daily classes")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the dataset even if it has the size")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    parser.add_argument("--estimate", action="store_true", help="build, print times and sizes, and stop")
    args = parser.parse_args()
    url = database_url(DATABASE)
    facts = dataset_facts(url) if database_exists(DATABASE) else None
    if args.rebuild or not facts or facts["requested"] != args.rows or facts["version"] != DATASET_VERSION:
        stations, year_stations = plan(args.rows)
        print(
            f"building {DATABASE}: ~{args.rows:,} observations, {stations:,} stations ({year_stations:,} with a year)"
        )
        url = create_database(DATABASE)
        started = time.monotonic()
        facts = build(url, args.rows)
        print(f"built in {time.monotonic() - started:.0f} s: {facts}")
    else:
        print(f"reusing {DATABASE}: {facts}")
    size = sizes(url)
    millions = facts["observations"] / 1e6
    print(
        f"store {size['store'] / 2**20:,.0f} MiB ({size['store'] / millions / 2**20:.1f} MiB per million), "
        f"naive {size['naive'] / 2**20:,.0f} MiB"
    )
    if args.estimate:
        return
    machine = machine_facts(url)
    date = now_text()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SETTINGS:
            conn.execute(statement)
        year_streams = [
            r[0]
            for r in conn.execute(
                "SELECT d.id FROM datastream d WHERE d.station_id <= %s ORDER BY d.id", (facts["year_stations"],)
            )
        ]
        stations = facts["stations"]
        latest_rows = len(conn.execute(LATEST_STORE).fetchall())
        results = []

        def series(table: str) -> Callable[[int], Callable[[], object]]:
            def make(i: int) -> Callable[[], object]:
                stream = year_streams[(i * 7919) % len(year_streams)]
                start = YEAR_START
                return lambda: conn.execute(
                    SERIES.format(table=table), (stream, start, start + timedelta(days=365))
                ).fetchall()

            return make

        def window(table: str) -> Callable[[int], Callable[[], object]]:
            def make(i: int) -> Callable[[], object]:
                day = datetime(2026, 11, 1 + (i * 11) % 29, tzinfo=CHINA_TIME)
                return lambda: conn.execute(STA_WINDOW.format(table=table), (day, day + timedelta(days=1))).fetchall()

            return make

        check = {
            "series": len(
                conn.execute(SERIES.format(table="observation"), (year_streams[0], YEAR_START, END)).fetchall()
            ),
            "window": len(
                conn.execute(
                    STA_WINDOW.format(table="observation"), (MONTH[0], MONTH[0] + timedelta(days=1))
                ).fetchall()
            ),
        }
        status_rows = conn.execute("SELECT count(*) FROM station_status WHERE colour IS NOT NULL").fetchone()[0]
        cases = [
            (
                f"latest status of all {stations:,} stations (class or AQI and colour of {status_rows:,},"
                " `station_status`; naive: the newest row of every datastream, before any classification)",
                50,
                args.runs,
                lambda i: lambda: conn.execute(LATEST_STATUS).fetchall(),
                lambda i: lambda: conn.execute(LATEST_NAIVE.format(table="observation_naive")).fetchall(),
            ),
            (
                f"latest values of all {stations:,} stations ({latest_rows:,} datastreams)",
                None,
                args.runs,
                lambda i: lambda: conn.execute(LATEST_STORE).fetchall(),
                lambda i: lambda: conn.execute(LATEST_NAIVE.format(table="observation_naive")).fetchall(),
            ),
            (
                f"one station's one-year hourly series of one property ({check['series']:,} values)",
                50,
                args.runs,
                series("observation"),
                series("observation_naive"),
            ),
            (
                "SensorThings `Observations?$filter=phenomenonTime ge D and phenomenonTime lt D+1 day&$top=1000` (SQL)",
                200,
                args.runs,
                window("observation"),
                window("observation_naive"),
            ),
        ]
        classify_share = {}
        for table in ("observation", "observation_naive"):
            classified, seconds = daily_classes(conn, table)  # warm, and the count
            classify_share[table] = (classified, seconds)
        cases.append(
            (
                f"a month of daily classes for all sections ({classify_share['observation'][0]:,} section-days)",
                1000,
                args.daily_runs,
                lambda i: lambda: daily_classes(conn, "observation"),
                lambda i: lambda: daily_classes(conn, "observation_naive"),
            )
        )
        for label, target_ms, runs, store_call, naive_call in cases:
            store_times, naive_times = [], []
            for i in range(runs):  # interleaved: a slow spell of the machine falls on both
                store_times += measure(1, lambda _, i=i, call=store_call: call(i))
                naive_times += measure(1, lambda _, i=i, call=naive_call: call(i))
            s50, s95 = summary_ms(store_times)
            n50, n95 = summary_ms(naive_times)
            results.append((label, target_ms, runs, s50, s95, n50, n95))
            print(f"{label}: store p50 {s50:.1f} p95 {s95:.1f} ms | naive p50 {n50:.1f} p95 {n95:.1f} ms")
        plans = {
            "latest status (store)": explain(conn, LATEST_STATUS, ()),
            "latest values (store)": explain(conn, LATEST_STORE, ()),
            "series (store)": explain(conn, SERIES.format(table="observation"), (year_streams[0], YEAR_START, END)),
            "STA window (store)": explain(
                conn, STA_WINDOW.format(table="observation"), (MONTH[0], MONTH[0] + timedelta(days=1))
            ),
            "daily (store)": explain(conn, DAILY_STORE, (MONTH[0].date(), MONTH[1].date())),
            "daily (naive)": explain(conn, DAILY.format(table="observation_naive"), MONTH),
        }
    lines = [
        "# Observation store benchmark",
        "",
        *(
            []
            if facts["observations"] >= FULL_ROWS * 0.95
            else [f"**A reduced run: {facts['observations']:,} observations, not the 100 M of the targets.**", ""]
        ),
        f"Command: `.venv/bin/python -m bench.observations_bench {' '.join(sys.argv[1:])}`".replace(" `", " `") + "  ",
        f"Date: {date}  ",
        f"Machine: {machine}",
        "",
        f"Dataset (`{DATABASE}`, built {facts['built_at']:%Y-%m-%d %H:%M} UTC, timings {facts['timings']}):"
        f" {facts['observations']:,} hourly observations, {facts['stations']:,} stations,"
        f" {latest_rows:,} datastreams; every station from 2026-10-31 16:00 UTC to 2026-12-01, the first"
        f" {facts['year_stations']:,} stations from 2025-12-01 (13 monthly partitions).",
        "",
        "| query | target | runs | store p50 ms | store p95 ms | naive p50 ms | naive p95 ms |"
        " naive p95 / store p95 | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, target_ms, runs, s50, s95, n50, n95 in results:
        lines.append(
            f"| {label} | {f'< {target_ms:,} ms' if target_ms else '—'} | {runs} | {s50:.1f} | {s95:.1f} |"
            f" {n50:.1f} | {n95:.1f} | {n95 / s95:.1f}× |"
            f" {'—' if target_ms is None else 'yes' if s95 < target_ms else '**no**'} |"
        )
    lines += [
        "",
        f"Disk: the store {size['store'] / 2**30:.2f} GiB for {millions:,.1f} M observations ="
        f" **{size['store'] / millions / 2**20:.0f} MiB per million** (primary keys {size['pk'] / 2**30:.2f} GiB,"
        f" BRIN {size['brin'] / 2**10:,.0f} kB), plus `datastream_latest` {size['latest'] / 2**20:.1f} MiB;"
        f" the naive table {size['naive'] / 2**30:.2f} GiB ({size['naive'] / millions / 2**20:.0f} MiB per million).",
        "",
        f"Daily classes: the classification (`surface_water_classes`: GB 3838 for all section-days at once) took"
        f" {classify_share['observation'][1] * 1000:.0f} ms of a run; the rest is SQL.",
        "",
        "## Plans (EXPLAIN ANALYZE, store)",
        "",
    ]
    for name, text in plans.items():
        lines += [f"### {name}", "", "```", text, "```", ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    if args.drop:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
