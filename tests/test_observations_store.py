"""The observation store (migration 0010): partitions, indexes, idempotence, latest values."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gis_service.monitoring.hj212 import HJ212Error, Reading, build_data_packet, parse_data_packet, parse_frame
from gis_service.monitoring.hj212.codec import CHINA_TIME
from gis_service.monitoring.store import (
    BulkObservation,
    PartitionKeeper,
    copy_observations,
    month_start,
    next_month,
    store_packet,
    store_packets,
)
from layers import db as layer_db
from tests.conftest import recreate_database, run_async, scratch_database_name


@pytest.fixture(scope="module")
def store_url() -> str:
    """A migrated scratch database with two stations that have device codes."""
    url = recreate_database(scratch_database_name("observations"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO station (code, name, kind, mn, geom) VALUES"
            " ('S1', 'water', 'water_auto', 'MN-W1', ST_SetSRID(ST_MakePoint(118.1, 24.5), 4326)),"
            " ('S2', 'air', 'air_local', 'MN-A1', ST_SetSRID(ST_MakePoint(118.2, 24.6), 4326))"
        )
    return url


def _partitions(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'observation'::regclass"
    ).fetchall()
    return dict(rows)


def _packet(mn: str, when: datetime, readings: list[Reading], cn: str = "2061"):
    return parse_data_packet(parse_frame(build_data_packet(mn=mn, cn=cn, data_time=when, readings=readings)))


def _store(url: str, packet, keeper: PartitionKeeper | None = None):
    async def main():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await store_packet(conn, packet, keeper or PartitionKeeper())

    return run_async(main())


def test_migration_0010_downgrades_and_upgrades_cleanly() -> None:
    url = recreate_database(scratch_database_name("observations_migration"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'observation'::regclass"
        ).fetchone() == ("r",)
        indexes = dict(
            conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'observation'").fetchall()
        )
        assert any("USING brin (phenomenon_time)" in d for d in indexes.values())
        assert any("(datastream_id, phenomenon_time)" in d for d in indexes.values())
        conn.execute("SELECT observation_ensure_partition('2026-01-15')")
    layer_db.downgrade(url, "0009")
    with psycopg.connect(url, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        assert not tables & {"datastream", "observation", "datastream_latest", "observation_y2026m01"}
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'station'"
            ).fetchall()
        }
        assert "mn" not in columns
        assert conn.execute("SELECT to_regproc('observation_ensure_partition')").fetchone() == (None,)
    layer_db.upgrade(url)


def test_monthly_partitions_with_their_bounds(store_url: str) -> None:
    with psycopg.connect(store_url, autocommit=True) as conn:
        # 1 March 02:00 Beijing time is still February in UTC.
        name = conn.execute(
            "SELECT observation_ensure_partition(%s)", (datetime(2024, 3, 1, 2, 0, tzinfo=CHINA_TIME),)
        ).fetchone()[0]
        assert name == "observation_y2024m02"
        assert conn.execute("SELECT observation_ensure_partition('2024-02-10T00:00Z')").fetchone()[0] == name
        bounds = _partitions(conn)[name]
        assert bounds == "FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00')"


def test_month_arithmetic() -> None:
    assert month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)


def test_partitions_ahead(store_url: str) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as conn:
            await PartitionKeeper().ensure_ahead(conn, now=datetime(2030, 11, 20, tzinfo=UTC))

    run_async(main())
    with psycopg.connect(store_url) as conn:
        assert {"observation_y2030m11", "observation_y2030m12", "observation_y2031m01"} <= set(_partitions(conn))


def test_concurrent_sessions_create_one_partition(store_url: str) -> None:
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        try:
            with psycopg.connect(store_url, autocommit=True) as conn:
                barrier.wait()
                conn.execute("SELECT observation_ensure_partition('2023-07-04T00:00Z')")
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(store_url) as conn:
        assert "observation_y2023m07" in _partitions(conn)


def test_a_query_for_one_month_reads_one_partition(store_url: str) -> None:
    when = datetime(2024, 5, 10, 8, 0, tzinfo=CHINA_TIME)
    _store(store_url, _packet("MN-W1", when, [Reading("w01001", 7.0, "N")]))
    _store(store_url, _packet("MN-W1", when + timedelta(days=40), [Reading("w01001", 7.1, "N")]))
    with psycopg.connect(store_url) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT * FROM observation"
                " WHERE phenomenon_time >= '2024-05-01Z' AND phenomenon_time < '2024-05-31Z'"
            ).fetchall()
        )
    assert "observation_y2024m05" in plan
    assert "observation_y2024m06" not in plan


def test_store_is_idempotent_and_latest_moves_forward(store_url: str) -> None:
    t0 = datetime(2024, 8, 1, 10, 0, tzinfo=CHINA_TIME)
    first = _store(store_url, _packet("MN-A1", t0, [Reading("a34004", 35.0, "N"), Reading("a05024", 120.0, "T")]))
    again = _store(store_url, _packet("MN-A1", t0, [Reading("a34004", 99.0, "N"), Reading("a05024", 1.0, "N")]))
    older = _store(store_url, _packet("MN-A1", t0 - timedelta(hours=1), [Reading("a34004", 20.0, "D")]))
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (again.inserted, again.duplicates) == (0, 2)
    assert (older.inserted, older.duplicates) == (1, 0)
    with psycopg.connect(store_url) as conn:
        stored = conn.execute(
            "SELECT d.factor_code, o.phenomenon_time, o.value, o.flag, o.quality FROM observation o"
            " JOIN datastream d ON d.id = o.datastream_id WHERE d.station_id = %s ORDER BY 1, 2",
            (first.station_id,),
        ).fetchall()
        assert stored == [
            ("a05024", t0, 120.0, "T", "good"),
            ("a34004", t0 - timedelta(hours=1), 20.0, "D", "invalid"),
            ("a34004", t0, 35.0, "N", "good"),  # the first value received stays
        ]
        latest = conn.execute(
            "SELECT d.factor_code, l.phenomenon_time, l.value FROM datastream_latest l"
            " JOIN datastream d ON d.id = l.datastream_id WHERE d.station_id = %s ORDER BY 1",
            (first.station_id,),
        ).fetchall()
        assert latest == [("a05024", t0, 120.0), ("a34004", t0, 35.0)]
        streams = conn.execute(
            "SELECT factor_code, aggregation, property, unit FROM datastream WHERE station_id = %s ORDER BY 1",
            (first.station_id,),
        ).fetchall()
        assert streams == [("a05024", "hour", "O3", "ug/m3"), ("a34004", "hour", "PM2.5", "ug/m3")]


def test_unknown_mn_and_out_of_range_times_store_nothing(store_url: str) -> None:
    when = datetime(2024, 9, 1, tzinfo=CHINA_TIME)
    with pytest.raises(HJ212Error, match="unknown MN 'MN-NONE'") as caught:
        _store(store_url, _packet("MN-NONE", when, [Reading("w01001", 7.0, "N")]))
    assert caught.value.kind == "mn"
    for bad in (datetime(1999, 12, 31, tzinfo=CHINA_TIME), datetime.now(CHINA_TIME) + timedelta(days=3)):
        with pytest.raises(HJ212Error, match="out of range") as caught:
            _store(store_url, _packet("MN-W1", bad.replace(microsecond=0), [Reading("w01001", 7.0, "N")]))
        assert caught.value.kind == "time"
    with psycopg.connect(store_url) as conn:
        assert conn.execute("SELECT count(*) FROM observation WHERE phenomenon_time = %s", (when,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM observation WHERE phenomenon_time < '2000-01-01Z'").fetchone() == (0,)


def test_deleting_a_station_removes_its_series(store_url: str) -> None:
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO station (code, name, kind, mn, geom) VALUES"
            " ('S9', 'gone', 'section', 'MN-GONE', ST_SetSRID(ST_MakePoint(118.1, 24.5), 4326))"
        )
        stored = _store(
            store_url, _packet("MN-GONE", datetime(2024, 10, 1, tzinfo=CHINA_TIME), [Reading("w21011", 0.1, "N")])
        )
        conn.execute("DELETE FROM station WHERE code = 'S9'")
        left = conn.execute(
            "SELECT (SELECT count(*) FROM datastream WHERE station_id = %(s)s),"
            " (SELECT count(*) FROM observation o"
            "  WHERE NOT EXISTS (SELECT 1 FROM datastream d WHERE d.id = o.datastream_id))",
            {"s": stored.station_id},
        ).fetchone()
        assert left == (0, 0)


def _bulk(url: str, rows: list[BulkObservation]) -> int:
    """copy_observations on a connection of its own; how many were new."""

    async def main() -> int:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await copy_observations(conn, rows, PartitionKeeper(), "bulk-test")

    return run_async(main())


def test_bulk_copy_stores_once_creates_partitions_and_moves_latest_forward(store_url: str) -> None:
    """copy_observations (the bulk path: COPY into a temporary table, INSERT … ON CONFLICT)."""
    t0 = datetime(2023, 1, 31, 23, 0, tzinfo=UTC)  # a series across a month boundary: two partitions
    with psycopg.connect(store_url, autocommit=True) as conn:
        stream = conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " SELECT id, 'w21003', 'day', 'NH3-N', 'mg/L' FROM station WHERE mn = 'MN-W1' RETURNING id"
        ).fetchone()[0]
    rows = [BulkObservation(stream, t0 + timedelta(hours=h), 0.5 + h, "D" if h == 2 else "N") for h in range(4)]

    assert _bulk(store_url, rows) == 4
    # Again, with one new value and an older one changed: only the new one is stored.
    changed = [BulkObservation(stream, t0, 99.0), BulkObservation(stream, t0 + timedelta(hours=4), 7.5)]
    assert _bulk(store_url, changed) == 1
    with psycopg.connect(store_url) as conn:
        stored = conn.execute(
            "SELECT tableoid::regclass::text, phenomenon_time, value, flag, quality, source FROM observation"
            " WHERE datastream_id = %s ORDER BY phenomenon_time",
            (stream,),
        ).fetchall()
        latest = conn.execute(
            "SELECT phenomenon_time, value FROM datastream_latest WHERE datastream_id = %s", (stream,)
        ).fetchone()
    assert stored == [
        ("observation_y2023m01", t0, 0.5, "N", "good", "bulk-test"),
        ("observation_y2023m02", t0 + timedelta(hours=1), 1.5, "N", "good", "bulk-test"),
        ("observation_y2023m02", t0 + timedelta(hours=2), 2.5, "D", "invalid", "bulk-test"),
        ("observation_y2023m02", t0 + timedelta(hours=3), 3.5, "N", "good", "bulk-test"),
        ("observation_y2023m02", t0 + timedelta(hours=4), 7.5, "N", "good", "bulk-test"),
    ]
    assert latest == (t0 + timedelta(hours=4), 7.5)
    assert _bulk(store_url, [BulkObservation(stream, t0 - timedelta(days=30), 1.0)]) == 1  # older: latest stays
    with psycopg.connect(store_url) as conn:
        assert conn.execute(
            "SELECT phenomenon_time FROM datastream_latest WHERE datastream_id = %s", (stream,)
        ).fetchone() == (t0 + timedelta(hours=4),)


def test_daily_sums_count_each_new_hourly_observation_once(store_url: str) -> None:
    """observation_daily: per hourly datastream and Beijing day, observations, valid ones and their sum."""
    day1 = datetime(2024, 11, 5, 0, 0, tzinfo=CHINA_TIME)  # Beijing midnight: 16:00 UTC the day before
    packets = [
        _packet("MN-W1", day1, [Reading("w21011", 0.1, "N")]),
        _packet("MN-W1", day1 + timedelta(hours=1), [Reading("w21011", 0.3, "N")]),
        _packet("MN-W1", day1 + timedelta(hours=2), [Reading("w21011", 9.9, "D")]),  # invalid: counted, not summed
        _packet("MN-W1", day1 + timedelta(hours=24), [Reading("w21011", 0.2, "N")]),  # the next Beijing day
        _packet("MN-W1", day1, [Reading("w21011", 5.0, "N")], cn="2011"),  # real-time: no daily sums
    ]

    async def store(group: list) -> list:
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as conn:
            return await store_packets(conn, group, PartitionKeeper())

    run_async(store([*packets, packets[1]]))  # the same packet twice in one group
    run_async(store(packets[:2]))  # re-sent later: already stored
    with psycopg.connect(store_url) as conn:
        rows = conn.execute(
            "SELECT y.day, y.observations, y.valid, round(y.valid_sum::numeric, 6) FROM observation_daily y"
            " JOIN datastream d ON d.id = y.datastream_id JOIN station s ON s.id = d.station_id"
            " WHERE s.mn = 'MN-W1' AND d.factor_code = 'w21011' ORDER BY 1"
        ).fetchall()
    assert [(r[0].isoformat(), r[1], r[2], float(r[3])) for r in rows] == [
        ("2024-11-05", 3, 2, 0.4),
        ("2024-11-06", 1, 1, 0.2),
    ]


def test_bulk_copy_adds_hourly_observations_to_their_days(store_url: str) -> None:
    with psycopg.connect(store_url, autocommit=True) as conn:
        stream = conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " SELECT id, 'w21001', 'hour', 'TN', 'mg/L' FROM station WHERE mn = 'MN-W1' RETURNING id"
        ).fetchone()[0]
    t0 = datetime(2022, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 Beijing time; the next hour is 2 March there
    rows = [
        BulkObservation(stream, t0, 1.0),
        BulkObservation(stream, t0 + timedelta(hours=1), 2.0),
        BulkObservation(stream, t0 + timedelta(hours=2), 4.0, "M"),
    ]

    assert _bulk(store_url, rows) == 3
    assert _bulk(store_url, rows) == 0  # again: nothing new, nothing added
    with psycopg.connect(store_url) as conn:
        days = conn.execute(
            "SELECT day::text, observations, valid, valid_sum FROM observation_daily WHERE datastream_id = %s"
            " ORDER BY day",
            (stream,),
        ).fetchall()
    assert days == [("2022-03-01", 1, 1, 1.0), ("2022-03-02", 2, 1, 2.0)]
