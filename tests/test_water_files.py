"""One file per river and bay (一河一档 / 一湾一档): the sections' 12-month trend, and its page.

A year of hourly NH3-N values is stored for one river section, in months the demo data does not
reach; the expected monthly classes are worked out here from those very values, with the rules
written out in the test (a day counts with 18 good hours, a month with 27 valid days, 25 in
February; GB 3838-2002 表1 NH3-N limits), not with the standards engine.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_access import add_user, bearer, make_client, sign_in

CHINA = dt.timezone(dt.timedelta(hours=8))
NH3N = "w21003"
NH3N_LIMITS = [("I", 0.15), ("II", 0.5), ("III", 1.0), ("IV", 1.5), ("V", 2.0)]
"""GB 3838-2002 表1 氨氮 (mg/L): the upper limit of each class; above V: 劣V."""
LEVELS = [0.10, 0.30, 0.80, 1.20, 1.80, 2.50, 0.45, 0.95, 1.45, 1.95, 0.12, 3.00]
"""The NH3-N level of each month of the trend (oldest first)."""
MONTHS = [dt.date(2024 + (6 + i) // 12, (6 + i) % 12 + 1, 1) for i in range(12)]
"""2024-07 … 2025-06: before the demo's observations."""
SHORT_MONTH = 5
"""This month has only 26 days of data: no valid monthly mean."""
SUSPECT_DAYS = {3, 9, 17}
"""On these days of every month only 17 hours are good (the others suspect): the day does not count."""


def nh3n_class(value: float) -> str:
    return next((name for name, limit in NH3N_LIMITS if value <= limit), "劣V")


def hourly_rows(datastream_id: int) -> list[tuple]:
    """The stored hours: (datastream, time, value, quality), with a daily wave around each month's level."""
    rows = []
    for index, first in enumerate(MONTHS):
        days = calendar.monthrange(first.year, first.month)[1]
        if index == SHORT_MONTH:
            days = 26
        for day in range(1, days + 1):
            for hour in range(24):
                at = dt.datetime(first.year, first.month, day, hour, tzinfo=CHINA)
                value = round(LEVELS[index] * (1 + 0.08 * ((hour % 6) - 2.5) / 2.5), 4)
                quality = "suspect" if day in SUSPECT_DAYS and hour >= 17 else "good"
                rows.append((datastream_id, at, value, quality))
    return rows


def expected_classes(rows: list[tuple]) -> dict[str, str | None]:
    """Monthly class worked out from the rows: daily means of good hours, monthly means of valid days."""
    good: dict[dt.date, list[float]] = {}
    for _, at, value, quality in rows:
        if quality == "good":
            good.setdefault(at.astimezone(CHINA).date(), []).append(value)
    out = {}
    for first in MONTHS:
        daily = [sum(v) / len(v) for day, v in good.items() if day.replace(day=1) == first and len(v) >= 18]
        needed = 25 if first.month == 2 else 27
        out[f"{first:%Y-%m}"] = nh3n_class(sum(daily) / len(daily)) if len(daily) >= needed else None
    return out


@pytest.fixture(scope="module")
def section(database_url: str) -> Iterator[dict]:
    """A river section station with a year of NH3-N hours stored (removed afterwards)."""
    with psycopg.connect(database_url, autocommit=True) as db:
        station_id, river_id, target, datastream_id = db.execute(
            "SELECT s.id, s.river_id, s.water_target, d.id FROM station AS s"
            " JOIN datastream AS d ON d.station_id = s.id AND d.factor_code = %s AND d.aggregation = 'hour'"
            " WHERE s.standard = 'river' AND s.river_id IS NOT NULL AND s.kind <> 'outfall' ORDER BY s.id LIMIT 1",
            [NH3N],
        ).fetchone()
        for first in [dt.date(2024, 6, 1), *MONTHS]:  # UTC months: 1 July 00:00 in Beijing is 30 June in UTC
            db.execute(
                "SELECT observation_ensure_partition(%s)", [dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)]
            )
        rows = hourly_rows(datastream_id)
        with db.cursor().copy(
            "COPY observation (datastream_id, phenomenon_time, value, flag, quality, source) FROM STDIN"
        ) as copy:
            for ds, at, value, quality in rows:
                copy.write_row((ds, at, value, "N" if quality == "good" else "T", quality, "test"))
        yield {"id": station_id, "river_id": river_id, "target": target, "rows": rows}
        span = (dt.datetime(2024, 6, 30, tzinfo=CHINA), dt.datetime(2025, 7, 1, 12, tzinfo=CHINA))
        db.execute(
            "DELETE FROM observation WHERE datastream_id = %s AND phenomenon_time BETWEEN %s AND %s",
            [datastream_id, *span],
        )
        db.execute(
            "DELETE FROM observation_daily WHERE datastream_id = %s AND day BETWEEN %s AND %s",
            [datastream_id, span[0].date(), span[1].date()],
        )


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with make_client(database_url) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def planner(client: TestClient, database_url: str) -> dict[str, str]:
    return bearer(sign_in(client, *add_user(database_url, "planner"))["access_token"])


def test_the_12_month_trend_of_a_section_is_its_monthly_class(client, planner, section) -> None:
    answer = client.get(f"/api/rivers/{section['river_id']}/file", params={"month": "2025-06"}, headers=planner)
    assert answer.status_code == 200, answer.text
    file = answer.json()
    assert file["trend_months"] == [f"{m:%Y-%m}" for m in MONTHS]
    mine = next(s for s in file["sections"] if s["id"] == section["id"])
    assert mine["target"] == section["target"]
    expected = expected_classes(section["rows"])
    assert {m["month"]: m["water_class"] for m in mine["trend"]} == expected
    assert expected[f"{MONTHS[SHORT_MONTH]:%Y-%m}"] is None and len({c for c in expected.values() if c}) >= 5
    order = ["I", "II", "III", "IV", "V", "劣V"]
    for month in mine["trend"]:
        if month["water_class"] is None:
            assert month["meets_target"] is None and month["deciding_factors"] == []
        else:
            assert month["meets_target"] == (order.index(month["water_class"]) <= order.index(section["target"]))
            assert month["deciding_factors"] == [NH3N]


def test_a_file_lists_its_stations_latest_values_and_current_class(client, planner, section, db) -> None:
    file = client.get(f"/api/rivers/{section['river_id']}/file", headers=planner).json()
    for station in file["stations"]:
        latest = db.execute(
            "SELECT DISTINCT ON (d.factor_code) d.factor_code, l.value FROM datastream AS d"
            " JOIN datastream_latest AS l ON l.datastream_id = d.id WHERE d.station_id = %s"
            " ORDER BY d.factor_code, l.phenomenon_time DESC, d.aggregation = 'hour' DESC",
            [station["id"]],
        ).fetchall()
        assert [(v["code"], v["value"]) for v in station["latest"]] == [tuple(r) for r in latest]
    status = dict(db.execute("SELECT station_id, water_class FROM station_status").fetchall())
    for s in file["sections"]:
        assert s["water_class"] == status.get(s["id"])
    assert (
        client.get(f"/api/rivers/{section['river_id']}/file", params={"month": "2025-13"}, headers=planner)
        .json()["detail"]
        .startswith("month must be YYYY-MM")
    )


def test_the_file_page_is_bilingual_and_printable(client, planner, section) -> None:
    page = client.get(
        f"/api/rivers/{section['river_id']}/file", params={"month": "2025-06", "f": "html"}, headers=planner
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "一河一档" in text and "River file" in text and "@media print" in text
    assert "12-month trend" in text and "近12个月趋势" in text
    assert all(m.strftime("%y-%m") in text for m in MONTHS)
    bay_id = client.get("/ogc/collections/bay/items", params={"limit": 1}).json()["features"][0]["id"]
    bay = client.get(f"/api/bays/{bay_id}/file", params={"f": "html"}, headers=planner)
    assert bay.status_code == 200 and "一湾一档" in bay.text and "Bay file" in bay.text
    wrong = client.get(f"/api/rivers/{section['river_id']}/file", params={"f": "pdf"}, headers=planner)
    assert wrong.status_code == 400 and "html" in str(wrong.json()["detail"]), wrong.text


PERIOD = (dt.datetime(2025, 4, 1, tzinfo=CHINA), dt.datetime(2025, 7, 1, tzinfo=CHINA))
"""The assessment period of the tests: the trend's last three months."""


@pytest.fixture()
def alerts(database_url: str, section: dict) -> Iterator[dict]:
    """Alerts at the section, routed to its chiefs: opened before, in and after the period, resolved or not."""
    since, until = PERIOD
    day = dt.timedelta(days=1)
    cases = [  # (opened, resolved)
        (since - 10 * day, None),  # before the period, still open: unresolved, not opened in it
        (since - 10 * day, since - day),  # before the period, resolved before it: neither
        (since + day, since + 2 * day),  # opened and resolved in the period
        (since + 5 * day, until + day),  # opened in it, resolved after: unresolved at its end
        (until - day, None),  # opened in it, never resolved
        (until + day, None),  # after the period: neither
    ]
    with psycopg.connect(database_url, autocommit=True) as db:
        chiefs = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT chief_id FROM chief_assignment WHERE layer = 'river' AND feature_id = %s",
                [section["river_id"]],
            )
        ]
        ids: list[int] = []
        for index, (opened, resolved) in enumerate(cases):
            ids.append(
                db.execute(
                    "INSERT INTO workflow_alert (rule, station_id, state, severity, first_seen, last_seen, opened_at,"
                    " resolved_at) VALUES (%s, %s, %s, 'warning', %s, %s, %s, %s) RETURNING id",
                    [
                        f"assessment_test_{index}",
                        section["id"],
                        "resolved" if resolved else "open",
                        opened,
                        resolved or opened,
                        opened,
                        resolved,
                    ],
                ).fetchone()[0]
            )
            for chief in chiefs:
                db.execute("INSERT INTO workflow_alert_chief (alert_id, chief_id) VALUES (%s, %s)", [ids[-1], chief])
        yield {"chiefs": chiefs, "opened": 3, "unresolved": 3}
        db.execute("DELETE FROM workflow_alert WHERE id = ANY(%s)", [ids])


def test_the_assessment_counts_sections_meeting_targets_and_alerts_unresolved(
    client, planner, section, alerts, db
) -> None:
    since, until = PERIOD
    answer = client.get(
        "/api/assessment", params={"since": since.isoformat(), "until": until.isoformat()}, headers=planner
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    months = {f"{m:%Y-%m}": c for m, c in zip(MONTHS, expected_classes(section["rows"]).values(), strict=True)}
    in_period = [months[m] for m in ("2025-04", "2025-05", "2025-06")]
    order = ["I", "II", "III", "IV", "V", "劣V"]
    assessed = sum(c is not None for c in in_period)
    met = sum(c is not None and order.index(c) <= order.index(section["target"]) for c in in_period)
    assert assessed == 3 and 0 < met < 3  # the data were chosen so
    for chief in alerts["chiefs"]:
        row = next(r for r in result["chiefs"] if r["chief_id"] == chief)
        sections = db.execute(
            "SELECT count(DISTINCT s.id) FROM station AS s JOIN chief_assignment AS a ON a.chief_id = %s"
            " LEFT JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id"
            " LEFT JOIN bay AS b ON a.layer = 'bay' AND b.id = a.feature_id"
            " LEFT JOIN watershed AS w ON a.layer = 'watershed' AND w.id = a.feature_id"
            " WHERE s.kind <> 'outfall' AND s.standard <> 'air' AND s.water_target IS NOT NULL"
            " AND (s.river_id = r.id OR ST_DWithin(s.geom::geography, r.geom::geography, 500)"
            " OR ST_Intersects(s.geom, b.geom) OR ST_Intersects(s.geom, w.geom))",
            [chief],
        ).fetchone()[0]
        # Only the test's section has observations in the period: its months are the chief's.
        assert (row["sections"], row["section_months"], row["section_months_met"]) == (sections, assessed, met)
        assert (row["alerts"], row["alerts_unresolved"]) == (alerts["opened"], alerts["unresolved"])
    adcode = db.execute("SELECT adcode FROM station WHERE id = %s", [section["id"]]).fetchone()[0]
    district = next(d for d in result["districts"] if d["adcode"] == adcode)
    in_district = db.execute(
        "SELECT count(*) FROM station WHERE adcode = %s AND kind <> 'outfall' AND standard <> 'air'"
        " AND water_target IS NOT NULL",
        [adcode],
    ).fetchone()[0]
    assert (district["sections"], district["section_months"], district["section_months_met"]) == (
        in_district,
        assessed,
        met,
    )
    assert (district["alerts"], district["alerts_unresolved"]) == (alerts["opened"], alerts["unresolved"])

    from openpyxl import load_workbook

    sheet = client.get(
        "/api/assessment",
        params={"since": since.isoformat(), "until": until.isoformat(), "f": "xlsx"},
        headers=planner,
    )
    book = load_workbook(io.BytesIO(sheet.content))
    header = [c.value for c in book["河湖长 Chiefs"][1]]
    assert "达标断面月数 (Section-months meeting target)" in header and "未解除预警 (Alerts unresolved)" in header
    first = alerts["chiefs"][0]
    line = next(r for r in book["河湖长 Chiefs"].iter_rows(min_row=2, values_only=True) if r[0] == first)
    mine = next(r for r in result["chiefs"] if r["chief_id"] == first)
    assert line[header.index("未解除预警 (Alerts unresolved)")] == mine["alerts_unresolved"]
    districts = [c.value for c in book["区 Districts"][1]]
    assert "达标断面月数 (Section-months meeting target)" in districts
