"""Cross-boundary sections: the monthly assessment on known values, the compensation by the
rules, the report per pair and city (JSON, CSV, GeoJSON for the map), and the API's errors.

A scratch database holds four sections of known hourly values for March 2026 (China time),
inserted through the observation store's trigger (which fills ``observation_daily``); the
expected means, classes and amounts are computed here from the values, the GB 3838-2002 limits
(DOMAIN.md) and the rules file read as plain YAML.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.region.rules import RULES_FILE, load_rules
from layers import db as layer_db
from layers.catalog import CatalogError
from tests.conftest import make_settings, recreate_database, scratch_database_name

CHINA = dt.timezone(dt.timedelta(hours=8))
MONTH = dt.date(2026, 3, 1)
DAYS = 31
CODES = {"codmn": "w01019", "nh3n": "w21003", "tp": "w21011", "do": "w01009"}
LIMITS = {
    # GB 3838-2002 表1, classes I..V (DOMAIN.md); DO is a minimum.
    "codmn": [2, 4, 6, 10, 15],
    "nh3n": [0.15, 0.5, 1.0, 1.5, 2.0],
    "tp": [0.02, 0.1, 0.2, 0.3, 0.4],
    "do": [7.5, 6, 5, 3, 2],
}
CLASSES = ["I", "II", "III", "IV", "V"]
SECTIONS = {
    # code: (upstream, downstream, target, {factor: base value}, days with data)
    "JJ-DM-01": ("350800", "350600", "II", {"codmn": 3.5, "nh3n": 0.51, "tp": 0.08, "do": 7.0}, DAYS),
    "T-DM-02": ("350600", "350200", "III", {"codmn": 7.0, "nh3n": 0.6, "tp": 0.25, "do": 6.5}, DAYS),
    "T-DM-03": ("350600", "350200", "III", {"codmn": 3.0, "nh3n": 0.3, "tp": 0.1, "do": 7.8}, DAYS),
    "T-DM-04": ("350800", "350600", "III", {"codmn": 3.0, "nh3n": 0.3, "tp": 0.1, "do": 7.8}, 20),
}
INVALID_DAY = 10
"""On this day 7 hours of every factor are flagged invalid: 17 valid hours, under the 18 a daily mean needs."""


def hourly_value(base: float, hour: int, day: int) -> float:
    """A known hourly series: the base value ± a swing over the day, a trend over the month."""
    return round(base * (1 + 0.2 * ((hour % 4) - 1.5) / 1.5) * (1 + 0.01 * (day - 16) / 15), 4)


def expected_mean(base: float, days: int) -> float | None:
    """The monthly mean of the daily means of the valid hours (a day needs 18, a month 27 days)."""
    daily = []
    for day in range(1, days + 1):
        hours = [hourly_value(base, h, day) for h in range(24) if not (day == INVALID_DAY and h < 7)]
        if len(hours) >= 18:
            daily.append(sum(hours) / len(hours))
    return sum(daily) / len(daily) if len(daily) >= 27 else None


def expected_class(means: dict[str, float]) -> str:
    worst = 0
    for factor, value in means.items():
        limits = LIMITS[factor]
        met = [i for i, lim in enumerate(limits) if (value >= lim if factor == "do" else value <= lim)]
        worst = max(worst, met[0] if met else len(CLASSES))
    return [*CLASSES, "劣V"][worst]


def expected_compensation(code: str, means: dict[str, float]) -> tuple[str, float]:
    """(outcome, amount) by the rules file read as plain YAML."""
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    target = CLASSES.index(SECTIONS[code][2])
    flow = (rules["sections"].get(code) or {}).get("flow_m3s")
    total = 0.0
    for factor, rate in rules["factors"].items():
        limit = LIMITS[factor][target]
        if means[factor] > limit:
            if flow:
                total += round((means[factor] - limit) * flow * DAYS * 86400 / 1e6 * rate["rate_per_tonne"], 2)
            else:
                total += round((means[factor] - limit) / limit * rate["rate_per_multiple"], 2)
    if total:
        return "upstream_pays", round(min(total, rules["cap_per_month"]), 2)
    return "downstream_pays", rules["reward_per_month"]


@pytest.fixture(scope="module")
def sections_url() -> str:
    url = recreate_database(scratch_database_name("region"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT observation_ensure_partition('2026-02-15'), observation_ensure_partition('2026-03-15')")
        for number, (code, (up, down, target, values, days)) in enumerate(SECTIONS.items()):
            station_id = conn.execute(
                "INSERT INTO station (code, name, kind, standard, water_target, city, upstream_city, downstream_city,"
                " mn, is_sample, geom) VALUES (%s, %s, 'section', 'river', %s, %s, %s, %s, %s, true,"
                " ST_SetSRID(ST_MakePoint(%s, 24.9), 4326)) RETURNING id",
                [code, f"交接断面{number}", target, down, up, down, f"T212{number:09d}", 117.5 + number / 10],
            ).fetchone()[0]
            for factor, base in values.items():
                stream = conn.execute(
                    "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
                    " VALUES (%s, %s, 'hour', %s, 'mg/L') RETURNING id",
                    [station_id, CODES[factor], factor],
                ).fetchone()[0]
                rows = []
                for day in range(1, days + 1):
                    for hour in range(24):
                        bad = day == INVALID_DAY and hour < 7
                        when = dt.datetime(2026, 3, day, hour, tzinfo=CHINA)
                        rows.append((stream, when, hourly_value(base, hour, day), "D" if bad else "N",
                                     "invalid" if bad else "good"))  # fmt: skip
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
                        " VALUES (%s, %s, %s, %s, %s, 'test')",
                        rows,
                    )
        # A section station that is not a cross-boundary section is not in the report.
        conn.execute(
            "INSERT INTO station (code, name, kind, standard, water_target, geom) VALUES"
            " ('T-DM-09', '普通断面', 'section', 'river', 'III', ST_SetSRID(ST_MakePoint(117.6, 24.8), 4326))"
        )
    return url


@pytest.fixture(scope="module")
def region_client(sections_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sections_url))) as client:
        yield client


def test_monthly_assessment_and_compensation_on_known_values(region_client: TestClient) -> None:
    report = region_client.get("/api/region/compensation", params={"month": "2026-03"}).json()
    assert report["month"] == "2026-03" and report["unit"] == "万元" and report["rules_status"] == "demo"
    rows = {row["code"]: row for row in report["sections"]}
    assert set(rows) == set(SECTIONS)
    for code, (up, down, target, values, days) in SECTIONS.items():
        row = rows[code]
        assert (row["upstream_city"], row["downstream_city"]) == (up, down)
        means = {factor: expected_mean(base, days) for factor, base in values.items()}
        got = row["assessment"]
        if None in means.values():  # 20 days of data: no valid monthly mean, not assessed
            assert got["water_class"] is None and got["meets_target"] is None
            valid_days = days - (days >= INVALID_DAY)
            assert got["factors"]["nh3n"]["valid_days"] == valid_days and got["factors"]["nh3n"]["required_days"] == 27
            assert row["compensation"]["outcome"] == "not_assessed" and row["compensation"]["amount"] == 0
            continue
        for factor, mean in means.items():
            assert got["factors"][factor]["value"] == pytest.approx(mean, rel=1e-9)
            assert got["factors"][factor]["valid_days"] == DAYS - 1  # the invalid day left out
        klass = expected_class(means)
        assert got["water_class"] == klass and got["target"] == target
        assert got["meets_target"] == (CLASSES.index(klass) <= CLASSES.index(target))
        outcome, amount = expected_compensation(code, means)
        paid = row["compensation"]
        assert paid["outcome"] == outcome
        assert paid["amount"] == pytest.approx(amount, abs=0.011)
        assert (paid["payer"], paid["payee"]) == ((up, down) if outcome == "upstream_pays" else (down, up))


def test_totals_per_city_pair_and_per_city(region_client: TestClient) -> None:
    report = region_client.get("/api/region/compensation", params={"month": "2026-03"}).json()
    pays: dict[tuple[str, str], list[float]] = {}
    balance: dict[str, float] = {}
    for row in report["sections"]:
        paid = row["compensation"]
        key = (row["upstream_city"], row["downstream_city"])
        totals = pays.setdefault(key, [0.0, 0.0])
        if paid["payer"] == key[0]:
            totals[0] += paid["amount"]
        elif paid["payer"] == key[1]:
            totals[1] += paid["amount"]
        if paid["payer"]:
            balance[paid["payer"]] = balance.get(paid["payer"], 0.0) - paid["amount"]
            balance[paid["payee"]] = balance.get(paid["payee"], 0.0) + paid["amount"]
    pairs = {(p["upstream_city"], p["downstream_city"]): p for p in report["pairs"]}
    assert set(pairs) == set(pays)
    for key, (up_pays, down_pays) in pays.items():
        assert pairs[key]["upstream_pays"] == pytest.approx(up_pays, abs=0.011)
        assert pairs[key]["downstream_pays"] == pytest.approx(down_pays, abs=0.011)
        assert pairs[key]["net_to_downstream"] == pytest.approx(up_pays - down_pays, abs=0.011)
    cities = {c["city"]: c for c in report["cities"]}
    assert cities["350600"]["name"]["zh"] == "漳州市"
    for city, value in balance.items():
        assert cities[city]["balance"] == pytest.approx(value, abs=0.011)
    # One pair only.
    one = region_client.get(
        "/api/region/compensation", params={"month": "2026-03", "upstream": "350600", "downstream": "350200"}
    ).json()
    assert {row["code"] for row in one["sections"]} == {"T-DM-02", "T-DM-03"}


def test_csv_export_matches_the_json(region_client: TestClient) -> None:
    report = region_client.get("/api/region/compensation", params={"month": "2026-03"}).json()
    response = region_client.get("/api/region/compensation", params={"month": "2026-03", "f": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="compensation-2026-03.csv"' in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    header, rows = table[0], table[1:]
    assert header[1] == "断面编码 (Section code)" and header[-3].startswith("codmn")
    by_code = {r[1]: dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_code) == {row["code"] for row in report["sections"]}
    for row in report["sections"]:
        line = by_code[row["code"]]
        assert float(line["补偿金额 (Amount)"]) == row["compensation"]["amount"]
        assert line["补偿结果 (Outcome)"] == row["compensation"]["outcome"]
        assert line["水质类别 (Class)"] == (row["assessment"]["water_class"] or "")


def test_sections_for_the_map(region_client: TestClient) -> None:
    body = region_client.get("/api/region/sections", params={"month": "2026-03"}).json()
    assert body["type"] == "FeatureCollection" and body["month"] == "2026-03"
    features = {f["properties"]["code"]: f for f in body["features"]}
    assert set(features) == set(SECTIONS)
    failing = features["T-DM-02"]["properties"]
    assert failing["water_class"] == "IV" and failing["meets_target"] is False and failing["colour"] == "#FFFF00"
    assert failing["upstream_name"]["zh"] == "漳州市" and failing["downstream_name"]["zh"] == "厦门市"
    assert features["T-DM-04"]["properties"]["colour"] == "#9E9E9E"  # not assessed: no data colour
    assert features["JJ-DM-01"]["geometry"]["type"] == "Point"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"month": "2026-13"}, "month must be YYYY-MM"),
        ({"month": "March"}, "month"),
        ({"month": "1999-12"}, "between 2000-01-01"),
        ({"month": "2026-03", "upstream": "35060"}, "upstream"),
        ({"month": "2026-03", "f": "xlsx"}, "f"),
        ({}, "month"),
    ],
)
def test_bad_requests_are_400_with_a_detail(region_client: TestClient, params: dict, fragment: str) -> None:
    response = region_client.get("/api/region/compensation", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]
    assert region_client.get("/api/region/sections", params={"month": "2026-3"}).status_code == 400


def test_the_demo_sections_are_on_the_map(client: TestClient, db: psycopg.Connection) -> None:
    """The demo's cross-boundary sections (Longyan→Zhangzhou, Zhangzhou→Xiamen), by default in the
    last complete month."""
    expected = db.execute(
        "SELECT code, upstream_city, downstream_city FROM station WHERE upstream_city IS NOT NULL"
    ).fetchall()
    body = client.get("/api/region/sections").json()
    got = {(f["properties"]["code"], f["properties"]["upstream_city"], f["properties"]["downstream_city"])
           for f in body["features"]}  # fmt: skip
    assert got == set(expected) and len(got) >= 2
    today = dt.datetime.now(CHINA).date()
    assert body["month"] == f"{today.replace(day=1) - dt.timedelta(days=1):%Y-%m}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("factors:\n  do: {rate_per_tonne: 1, rate_per_multiple: 1}\n", "no upper limit"),
        ("factors:\n  cod_x: {rate_per_tonne: 1, rate_per_multiple: 1}\n", "not a GB 3838 factor"),
        ("colour: red\n", "colour"),
    ],
)
def test_rules_are_validated_strictly(tmp_path: Path, change: str, message: str) -> None:
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rules.update(yaml.safe_load(change))
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        load_rules(path)
