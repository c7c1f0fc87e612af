"""Station status and history (gis_service/monitoring/status): values checked against classes
and AQIs worked out here from the standards' table values, not by the engine."""

from __future__ import annotations

import datetime as dt
import math
import time
from fractions import Fraction
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.monitoring.hj212 import Reading, build_data_packet, parse_data_packet, parse_frame
from gis_service.monitoring.status.service import refresh_status
from gis_service.monitoring.store import PartitionKeeper, store_packet
from tests.conftest import demo_database, make_settings, run_async, scratch_database_name

DATA = Path(__file__).resolve().parent.parent / "gis_service" / "monitoring" / "standards" / "data"
CHINA = dt.timezone(dt.timedelta(hours=8))
SURFACE = ["I", "II", "III", "IV", "V"]
# GB 3838-2002 表1 (mg/L): "≤" limits of classes I–V, river; DO "≥"; pH 6–9 for all classes.
GB3838_MAX = {
    "w01019": [2, 4, 6, 10, 15],
    "w21003": [0.15, 0.5, 1.0, 1.5, 2.0],
    "w21011": [0.02, 0.1, 0.2, 0.3, 0.4],
}
GB3838_LAKE_TP = [0.01, 0.025, 0.05, 0.1, 0.2]
GB3838_DO = [7.5, 6, 5, 3, 2]
GB3838_LAKE_TN = [0.2, 0.5, 1.0, 1.5, 2.0]


def surface_class(values: dict[str, float], lake: bool = False) -> tuple[str, set[str]]:
    """Single-factor class by the table above: the worst factor class and the factors in it."""
    classes = {}
    for code, v in values.items():
        if code == "w01001":
            classes[code] = 0 if 6 <= v <= 9 else 5
        elif code == "w01009":
            classes[code] = next((i for i, lim in enumerate(GB3838_DO) if v >= lim), 5)
        elif code in GB3838_MAX or code in ("w21001",):
            limits = GB3838_LAKE_TP if (lake and code == "w21011") else GB3838_MAX.get(code, GB3838_LAKE_TN)
            if code == "w21001" and not lake:
                continue
            classes[code] = next((i for i, lim in enumerate(limits) if v <= lim), 5)
    worst = max(classes.values())
    return ([*SURFACE, "劣V"][worst], {c for c, k in classes.items() if k == worst})


def _settings(url: str, **extra):
    return make_settings(url, hj212={"enabled": False}, monitoring={"status_interval_s": 0.2}, **extra)


@pytest.fixture(scope="module")
def status_url() -> str:
    """A private demo database (14 days of observations) whose status rows are computed."""
    url = demo_database(scratch_database_name("monitoring_status"))

    async def main():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await refresh_status(conn)

    run_async(main())
    return url


@pytest.fixture(scope="module")
def app_client(status_url: str):
    with TestClient(create_app(_settings(status_url))) as client:
        yield client


def _latest_good(db: psycopg.Connection, station_id: int) -> dict[str, float]:
    rows = db.execute(
        "SELECT d.factor_code, l.value, l.quality FROM datastream d JOIN datastream_latest l ON l.datastream_id = d.id"
        " WHERE d.station_id = %s",
        (station_id,),
    ).fetchall()
    return {code: value for code, value, quality in rows if quality == "good"}


def test_demo_stations_have_mn_target_and_standard(status_url: str) -> None:
    with psycopg.connect(status_url) as db:
        rows = db.execute("SELECT kind, mn, standard, water_target FROM station").fetchall()
    assert all(mn for _, mn, _, _ in rows)
    for kind, _, standard, target in rows:
        expected = {"water_auto": "river", "section": "river", "drinking_intake": "lake", "seawater": "sea"}
        if kind.startswith("air"):
            assert (standard, target) == ("air", None)
        elif kind == "outfall":
            assert (standard, target) == (None, None)
        else:
            assert standard == expected[kind]
            assert target in (SURFACE if standard != "sea" else ["一类", "二类", "三类", "四类"])


def test_latest_water_class_matches_the_table(app_client: TestClient, status_url: str) -> None:
    with psycopg.connect(status_url) as db:
        stations = db.execute(
            "SELECT id, standard, water_target FROM station WHERE standard IN ('river', 'lake') ORDER BY id"
        ).fetchall()
        checked = 0
        for sid, standard, target in stations:
            values = _latest_good(db, sid)
            body = app_client.get(f"/api/stations/{sid}/latest").json()
            if not values:
                assert body["water_class"] is None
                continue
            klass, deciding = surface_class(values, lake=standard == "lake")
            assert body["water_class"] == klass, (sid, values)
            assert {f["code"] for f in body["deciding_factors"]} == deciding
            assert body["target"] == target
            assert body["meets_target"] == ([*SURFACE, "劣V"].index(klass) <= SURFACE.index(target))
            assert (body["standard"], body["version"]) == ("GB 3838", "2002")
            for factor in body["deciding_factors"]:
                if factor["code"] in GB3838_MAX and not (standard == "lake" and factor["code"] == "w21011"):
                    limit = GB3838_MAX[factor["code"]][SURFACE.index(target)]
                    assert factor["limit"] == limit
                    over = factor["value"] > limit
                    expected = float((Fraction(str(factor["value"])) - Fraction(str(limit))) / Fraction(str(limit)))
                    assert factor["exceedance_multiple"] == (pytest.approx(expected) if over else None)
            checked += 1
    assert checked >= 15


def _iaqi(table: dict, levels: list[int], c: float) -> int | None:
    bps = [Fraction(str(b)) for b in table["breakpoints"]]
    c = Fraction(str(c))
    for i in range(1, len(bps)):
        if c <= bps[i]:
            return math.ceil(
                Fraction(levels[i] - levels[i - 1]) / (bps[i] - bps[i - 1]) * (c - bps[i - 1]) + levels[i - 1]
            )
    return None


def test_air_summary_aqi_from_the_tables(app_client: TestClient, status_url: str) -> None:
    day = dt.datetime.now(CHINA).date() - dt.timedelta(days=2)
    version = "2026" if day >= dt.date(2026, 3, 1) else "2012"
    std = yaml.safe_load((DATA / f"hj633-{version}.yaml").read_text(encoding="utf-8"))
    keys = std["reports"]["24h"]["keys"]
    start = dt.datetime(day.year, day.month, day.day, tzinfo=CHINA)
    body = app_client.get("/api/air-quality/summary", params={"date": day.isoformat()}).json()
    codes = {"pm25": "a34004", "pm10": "a34002", "so2": "a21026", "no2": "a21004", "co": "a21005"}
    checked = 0
    with psycopg.connect(status_url) as db:
        for station in body["stations"]:
            iaqi = {}
            for key, code in codes.items():
                rows = db.execute(
                    "SELECT o.value FROM observation o JOIN datastream d ON d.id = o.datastream_id"
                    " WHERE d.station_id = %s"
                    " AND d.factor_code = %s AND o.quality = 'good' AND o.phenomenon_time >= %s"
                    " AND o.phenomenon_time < %s",
                    (station["id"], code, start, start + dt.timedelta(days=1)),
                ).fetchall()
                if len(rows) >= 20:  # GB 3095 表4: 20 valid hours for a 24-hour mean
                    mean = math.fsum(r[0] for r in rows) / len(rows)
                    rounding = (std.get("concentration_rounding") or {}).get("digits", {})
                    if key in rounding:
                        mean = round(mean, rounding[key])
                    iaqi[key] = _iaqi(std["tables"][keys[key]], std["iaqi"], mean)
            if not iaqi:  # a logger gap: no valid 24-hour mean (O3's 8-hour windows may still give one)
                continue
            checked += 1
            top = max(v for v in iaqi.values() if v is not None)
            assert station["aqi"] >= top  # O3 (8-hour maximum) may decide it
            if station["aqi"] == top and top > 50:
                assert set(station["primary_pollutant"]) >= {k for k, v in iaqi.items() if v == top}
            assert station["version"] == version
    assert checked >= 10
    assert sum(body["categories"].values()) == sum(s["category"] is not None for s in body["stations"])


def test_series_daily_means_and_validity(app_client: TestClient, status_url: str) -> None:
    with psycopg.connect(status_url) as db:
        sid = db.execute("SELECT id FROM station WHERE standard = 'river' ORDER BY id LIMIT 1").fetchone()[0]
        day = dt.datetime.now(CHINA).date() - dt.timedelta(days=3)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=CHINA)
        rows = db.execute(
            "SELECT o.value, o.quality FROM observation o JOIN datastream d ON d.id = o.datastream_id"
            " WHERE d.station_id = %s AND d.factor_code = 'w21003'"
            " AND o.phenomenon_time >= %s AND o.phenomenon_time < %s",
            (sid, start - dt.timedelta(days=1), start + dt.timedelta(days=1)),
        ).fetchall()
    body = app_client.get(
        f"/api/stations/{sid}/series",
        params={
            "property": "NH3-N",
            "from": (start - dt.timedelta(days=1)).isoformat(),
            "to": (start + dt.timedelta(days=1)).isoformat(),
            "step": "hour",
        },
    ).json()
    assert body["count"] == len(rows) and body["valid"] == sum(q == "good" for _, q in rows)
    daily = app_client.get(
        f"/api/stations/{sid}/series",
        params={
            "property": "w21003",
            "from": start.isoformat(),
            "to": (start + dt.timedelta(days=1)).isoformat(),
            "step": "day",
        },
    ).json()
    good = [
        p["value"] for p in body["points"] if p["quality"] == "good" and dt.datetime.fromisoformat(p["time"]) >= start
    ]
    (point,) = daily["points"]
    assert point["valid"] == len(good) and point["required"] == 18
    assert point["value"] == (pytest.approx(math.fsum(good) / len(good)) if len(good) >= 18 else None)


def test_water_summary_counts_and_share(app_client: TestClient) -> None:
    day = (dt.datetime.now(CHINA).date() - dt.timedelta(days=2)).isoformat()
    body = app_client.get("/api/water-quality/summary", params={"date": day}).json()
    assessed = [s for s in body["stations"] if s["water_class"] is not None]
    assert sum(body["per_class"].values()) == len(assessed) == body["assessed"]
    judged = [s for s in assessed if s["meets_target"] is not None]
    assert body["share_meeting_target"] == pytest.approx(sum(s["meets_target"] for s in judged) / len(judged), abs=1e-4)
    assert body["worst"] and all(w["deciding_factors"] for w in body["worst"])
    for s in assessed:  # every class agrees with the target check
        if s["water_body"] != "sea":
            order = [*SURFACE, "劣V"]
            assert s["meets_target"] == (order.index(s["water_class"]) <= order.index(s["target"]))
    month = app_client.get("/api/water-quality/summary", params={"month": day[:7]})
    assert month.status_code == 200 and month.json()["from"] == day[:7] + "-01"


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            "/api/stations/17/series",
            {"property": "xx", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
            "unknown property",
        ),
        (
            "/api/stations/17/series",
            {"property": "pH", "from": "2024-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
            "at most 366 days",
        ),
        (
            "/api/stations/17/series",
            {"property": "pH", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            "must be after",
        ),
        (
            "/api/stations/17/series",
            {"property": "pH", "from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"},
            "time zone",
        ),
        ("/api/water-quality/summary", {}, "exactly one of"),
        ("/api/air-quality/summary", {"date": "1999-12-31"}, "between 2000-01-01"),
        (
            "/api/stations/17/series",
            {"property": "pH", "from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
            "between",
        ),
        ("/api/water-quality/summary", {"date": "2026-01-01", "month": "2026-01"}, "exactly one of"),
    ],
)
def test_bad_requests_say_what_to_fix(app_client: TestClient, path: str, params: dict, message: str) -> None:
    response = app_client.get(path, params=params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_unknown_station_is_404(app_client: TestClient) -> None:
    response = app_client.get("/api/stations/99999/latest")
    assert response.status_code == 404 and "no station" in response.json()["detail"]


def _packet(mn: str, when: dt.datetime, readings: list[Reading]):
    return parse_data_packet(parse_frame(build_data_packet(mn=mn, cn="2061", data_time=when, readings=readings)))


def test_tiles_carry_the_class_and_change_after_new_observations(status_url: str) -> None:
    """(Last in this module: it writes an observation.)"""
    url = status_url
    with psycopg.connect(url, autocommit=True) as db:
        sid, mn, lon, lat = db.execute(
            "SELECT id, mn, ST_X(geom), ST_Y(geom) FROM station WHERE standard = 'river' AND water_target = 'III'"
            " AND status = 'active' ORDER BY id LIMIT 1"
        ).fetchone()
        latest = db.execute(
            "SELECT max(l.phenomenon_time) FROM datastream d JOIN datastream_latest l ON l.datastream_id = d.id"
            " WHERE d.station_id = %s",
            (sid,),
        ).fetchone()[0]
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 14)

    def station_props(client: TestClient) -> dict:
        response = client.get(f"/tiles/station/14/{tile.x}/{tile.y}.pbf")
        assert response.status_code == 200
        decoded = mapbox_vector_tile.decode(response.content)
        return next(f["properties"] for f in decoded["station"]["features"] if f["id"] == sid)

    with TestClient(create_app(_settings(url))) as client:
        client.get("/api/stations/1/latest")  # the app refreshes every station at start-up
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while "status_colour" not in station_props(client) and dt.datetime.now() < deadline:
            time.sleep(0.2)
        before = station_props(client)
        assert before["status_colour"].startswith("#") and "water_class" in before
        bad = [Reading("w21003", 2.6, "N"), Reading("w01009", 7.0, "N"), Reading("w01001", 7.2, "N")]

        async def ingest():
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await store_packet(conn, _packet(mn, latest + dt.timedelta(hours=1), bad), PartitionKeeper())

        run_async(ingest())
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        after = station_props(client)
        while after.get("water_class") != "劣V" and dt.datetime.now() < deadline:
            time.sleep(0.3)
            after = station_props(client)
        assert after["water_class"] == "劣V"  # NH3-N 2.6 > 2.0, the class V limit
        assert after["status_colour"] == "#FF0000" and after["meets_target"] is False
        body = client.get(f"/api/stations/{sid}/latest").json()
        assert body["water_class"] == "劣V" and [f["code"] for f in body["deciding_factors"]] == ["w21003"]
        assert body["deciding_factors"][0]["exceedance_multiple"] == pytest.approx((2.6 - 1.0) / 1.0)


def test_a_full_refresh_keeps_status_rows_for_stations_with_values_only(status_url: str) -> None:
    """Every station with values has its status row after a full refresh; one that never
    reported has none (the tiles' LEFT JOIN reads that as no data), and a station whose values
    are gone loses its row. (Last in this module: the dropped station keeps no latest values.)"""
    with psycopg.connect(status_url, autocommit=True) as db:
        silent = db.execute(
            "INSERT INTO station (code, name, kind, status, is_sample, geom) VALUES"
            " ('T-SILENT', '无数据站', 'water_auto', 'active', true, ST_SetSRID(ST_MakePoint(118.1, 24.5), 4326))"
            " RETURNING id"
        ).fetchone()[0]
        reported = db.execute(
            "SELECT DISTINCT d.station_id FROM datastream d JOIN datastream_latest l ON l.datastream_id = d.id"
        ).fetchall()
        dropped = db.execute("SELECT min(station_id) FROM station_status").fetchone()[0]
        streams = db.execute("SELECT id FROM datastream WHERE station_id = %s", [dropped]).fetchall()
        try:
            db.execute("DELETE FROM datastream_latest WHERE datastream_id = ANY(%s)", [[s[0] for s in streams]])

            async def refresh() -> None:
                async with await psycopg.AsyncConnection.connect(status_url, autocommit=True) as conn:
                    await refresh_status(conn)

            run_async(refresh())
            rows = {r[0] for r in db.execute("SELECT station_id FROM station_status").fetchall()}
            assert rows == {r[0] for r in reported} - {dropped}
            assert silent not in rows
        finally:
            db.execute("DELETE FROM station WHERE id = %s", [silent])
