"""The SensorThings API (/sta/v1.1) through the app over a private demo database: every answer is
compared with what the test inserted and with values worked out by SQL of its own."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.access.keys import create_key
from tests.conftest import demo_database, make_settings, scratch_database_name

START = dt.datetime(2026, 10, 30, tzinfo=dt.UTC)  # two days across a month (and partition) boundary
HOURS = 72
STA = "/sta/v1.1"


def sta_key(url: str, name: str, role: str = "station", layers: list[str] | None = None) -> str:
    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return (await create_key(conn, name=name, role=role, created_by="test-sta", layers=layers))[1]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create()).result()


def seed(conn: psycopg.Connection, station_ids: list[int]) -> dict[str, int]:
    """Hourly PM2.5 and PM10 at two stations (value = datastream id × 100 + hour index)."""
    for month in ("2026-10-01Z", "2026-11-01Z"):
        conn.execute("SELECT observation_ensure_partition(%s::timestamptz)", [month])
    streams = {}
    for station, code, name in (
        (station_ids[0], "a34004", "PM2.5"),
        (station_ids[0], "a34002", "PM10"),
        (station_ids[1], "a34004", "PM2.5"),
    ):
        ident = conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " VALUES (%s, %s, 'hour', %s, 'ug/m3') RETURNING id",
            [station, code, name],
        ).fetchone()[0]
        streams[f"{station}:{code}"] = ident
        conn.execute(
            "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
            " SELECT %s, %s + g * interval '1 hour', %s * 100 + g, CASE WHEN g = 5 THEN 'D' ELSE 'N' END,"
            " CASE WHEN g = 5 THEN 'invalid' ELSE 'good' END, 'test' FROM generate_series(0, %s) g",
            [ident, START, ident, HOURS - 1],
        )
    return streams  # datastream_latest and observation_daily: the observation trigger filled them


@pytest.fixture(scope="module")
def sta_db() -> Iterator[tuple[str, dict[str, int], list[int]]]:
    url = demo_database(scratch_database_name("sta"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE datastream CASCADE")  # the demo's observations: these tests seed their own
        stations = [r[0] for r in conn.execute("SELECT id FROM station ORDER BY id LIMIT 2")]
        streams = seed(conn, stations)
    yield url, streams, stations


@pytest.fixture(scope="module")
def sta(sta_db) -> Iterator[TestClient]:
    url = sta_db[0]
    with TestClient(create_app(make_settings(url, hj212={"enabled": False}))) as client:
        yield client


@pytest.fixture()
def sql(sta_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(sta_db[0], autocommit=True) as conn:
        yield conn


def test_service_root_lists_every_entity_set_and_conformance(sta: TestClient) -> None:
    body = sta.get(STA).json()
    names = {item["name"] for item in body["value"]}
    assert names == {
        "Things",
        "Locations",
        "HistoricalLocations",
        "Sensors",
        "ObservedProperties",
        "Datastreams",
        "Observations",
        "FeaturesOfInterest",
    }
    assert (
        "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array" in body["serverSettings"]["conformance"]
    )


def test_things_are_the_stations_without_internal_properties(sta: TestClient, sql) -> None:
    body = sta.get(f"{STA}/Things", params={"$top": "1000", "$count": "true"}).json()
    expected = sql.execute("SELECT id, name, code FROM station ORDER BY id").fetchall()
    assert body["@iot.count"] == len(expected)
    assert [(t["@iot.id"], t["name"], t["properties"]["code"]) for t in body["value"]] == expected
    first = body["value"][0]
    assert first["@iot.selfLink"].endswith(f"{STA}/Things({expected[0][0]})")
    assert first["Datastreams@iot.navigationLink"].endswith(f"Things({expected[0][0]})/Datastreams")
    assert all("operator" not in t["properties"] for t in body["value"])  # internal: signed-in staff only
    refused = sta.get(f"{STA}/Things", params={"$filter": "properties/operator eq 'x'"})
    assert refused.status_code == 401 and "operator" in refused.json()["detail"]


def test_paging_follows_next_links_to_the_end(sta: TestClient, sql) -> None:
    total = sql.execute("SELECT count(*) FROM station").fetchone()[0]
    seen, url = [], f"{STA}/Things?$top=20&$select=id"
    while url:
        body = sta.get(url).json()
        seen += [t["@iot.id"] for t in body["value"]]
        next_link = body.get("@iot.nextLink")
        url = next_link and next_link.replace("http://127.0.0.1", "")
    assert len(seen) == total == len(set(seen))


def test_datastreams_of_a_thing_and_a_location(sta: TestClient, sta_db, sql) -> None:
    _, streams, stations = sta_db
    body = sta.get(f"{STA}/Things({stations[0]})/Datastreams").json()
    assert sorted(d["@iot.id"] for d in body["value"]) == sorted(
        [streams[f"{stations[0]}:a34004"], streams[f"{stations[0]}:a34002"]]
    )
    pm25 = next(d for d in body["value"] if d["properties"]["factorCode"] == "a34004")
    assert pm25["unitOfMeasurement"]["symbol"] == "ug/m3"
    end = START + dt.timedelta(hours=HOURS - 1)
    assert pm25["phenomenonTime"] == f"{START:%Y-%m-%dT%H:%M:%S}.000Z/{end:%Y-%m-%dT%H:%M:%S}.000Z"
    assert pm25["properties"]["latest"]["result"] == pm25["@iot.id"] * 100 + HOURS - 1
    lon, lat = sql.execute("SELECT ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [stations[0]]).fetchone()
    location = sta.get(f"{STA}/Things({stations[0]})/Locations").json()["value"][0]
    assert location["location"] == {"type": "Point", "coordinates": [lon, lat]}
    assert location["encodingType"] == "application/geo+json"
    prop = sta.get(f"{STA}/Datastreams({pm25['@iot.id']})/ObservedProperty").json()
    assert (prop["@iot.id"], prop["name"]) == ("a34004", "PM2.5")
    assert sta.get(f"{STA}/Things(999999)/Datastreams").status_code == 404


def test_observations_with_a_time_filter_and_count(sta: TestClient, sta_db, sql) -> None:
    ident = sta_db[1][f"{sta_db[2][0]}:a34004"]
    since = "2026-11-01T00:00:00Z"
    params = {
        "$filter": f"phenomenonTime ge {since} and result lt {ident * 100 + 60}",
        "$count": "true",
        "$orderby": "phenomenonTime desc",
        "$top": "5",
    }
    body = sta.get(f"{STA}/Datastreams({ident})/Observations", params=params).json()
    expected = sql.execute(
        "SELECT value FROM observation WHERE datastream_id = %s AND phenomenon_time >= %s AND value < %s"
        " ORDER BY phenomenon_time DESC",
        [ident, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), ident * 100 + 60],
    ).fetchall()
    assert body["@iot.count"] == len(expected)
    assert [o["result"] for o in body["value"]] == [v for (v,) in expected[:5]]
    next_query = parse_qs(urlsplit(body["@iot.nextLink"]).query)
    assert next_query["$skip"] == ["5"] and next_query["$filter"] == [params["$filter"]]
    fault = sta.get(f"{STA}/Datastreams({ident})/Observations", params={"$filter": "parameters/flag eq 'D'"}).json()
    assert [(o["result"], o["resultQuality"]) for o in fault["value"]] == [(ident * 100 + 5, "invalid")]
    hour = sta.get(
        f"{STA}/Observations",
        params={
            "$filter": f"Datastream/id eq {ident} and hour(phenomenonTime) eq 3 and day(phenomenonTime) eq 1",
            "$select": "result",
        },
    ).json()
    assert hour["value"] == [{"result": ident * 100 + 51}]  # 2026-11-01T03:00Z is hour 51 from START


def test_filters_through_links_functions_and_geometry(sta: TestClient, sta_db, sql) -> None:
    stations = sta_db[2]
    pm10 = sta.get(
        f"{STA}/Things",
        params={"$filter": "Datastreams/ObservedProperty/name eq 'PM10'", "$select": "id", "$count": "true"},
    ).json()
    assert pm10["value"] == [{"@iot.id": stations[0]}] and pm10["@iot.count"] == 1
    name = sql.execute("SELECT name FROM station WHERE id = %s", [stations[1]]).fetchone()[0]
    found = sta.get(
        f"{STA}/Things",
        params={
            "$filter": f"startswith(name, '{name[:1]}') and length(name) eq {len(name)}"
            f" and contains(tolower(name), '{name[-1:]}')",
            "$select": "name",
        },
    ).json()
    expected = sql.execute(
        "SELECT name FROM station WHERE starts_with(name, %s) AND length(name) = %s AND strpos(lower(name), %s) > 0"
        " ORDER BY id",
        [name[:1], len(name), name[-1:]],
    ).fetchall()
    assert [t["name"] for t in found["value"]] == [n for (n,) in expected]
    box = "POLYGON((118.0 24.4, 118.2 24.4, 118.2 24.6, 118.0 24.6, 118.0 24.4))"
    inside = sta.get(
        f"{STA}/Things",
        params={"$filter": f"geo.intersects(Locations/location, geography'{box}')", "$select": "id", "$top": "1000"},
    ).json()
    expected = sql.execute(
        "SELECT id FROM station WHERE ST_Intersects(geom, ST_GeomFromText(%s, 4326)) ORDER BY id", [box]
    ).fetchall()
    assert [t["@iot.id"] for t in inside["value"]] == [i for (i,) in expected] and expected
    arithmetic = sta.get(
        f"{STA}/Observations",
        params={
            "$filter": "(result mul 2 sub 1) div 3 gt 100 and not (result mod 2 eq 0)",
            "$count": "true",
            "$top": "1",
        },
    ).json()
    exact = sql.execute("SELECT count(*) FROM observation WHERE (value * 2 - 1) / 3 > 100 AND value::int % 2 <> 0")
    assert arithmetic["@iot.count"] == exact.fetchone()[0]


def test_expand_nested_with_its_own_options(sta: TestClient, sta_db) -> None:
    station = sta_db[2][0]
    params = {
        "$expand": "Datastreams($orderby=id;$top=1;$count=true;$expand=Observations($top=2;"
        "$orderby=phenomenonTime desc;$select=result)),Locations",
        "$select": "name",
    }
    body = sta.get(f"{STA}/Things({station})", params=params).json()
    first = min(sta_db[1][f"{station}:a34004"], sta_db[1][f"{station}:a34002"])
    assert body["Datastreams@iot.count"] == 2 and [d["@iot.id"] for d in body["Datastreams"]] == [first]
    assert "Datastreams@iot.nextLink" in body and len(body["Locations"]) == 1
    observations = body["Datastreams"][0]["Observations"]
    assert observations == [{"result": first * 100 + HOURS - 1}, {"result": first * 100 + HOURS - 2}]
    one = sta.get(f"{STA}/Observations", params={"$top": "1", "$expand": "Datastream/Thing($select=id)"}).json()
    assert one["value"][0]["Datastream"]["Thing"] == {"@iot.id": station}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$filter": "result gt"}, "$filter"),
        ({"$filter": "nosuch eq 1"}, "has no property or link 'nosuch'"),
        ({"$filter": "name gt 3"}, "cannot compare a text value with a number"),
        ({"$filter": "Datastreams eq 1"}, "is a link, not a value"),
        ({"$filter": "geo.intersects(Locations/location, geography'POLYGON((1 2')"}, "not valid WKT"),
        ({"$top": "5000"}, "$top=5000 is over the limit of 1000"),
        ({"$top": "-1"}, "$top must be a whole number"),
        ({"$orderby": "properties desc"}, "cannot be compared as a whole"),
        ({"$select": "nosuch"}, "Thing has no property 'nosuch'"),
        ({"$expand": "Nowhere"}, "no navigation link 'Nowhere'"),
        ({"$expand": "Datastreams($top=x)"}, "$top must be a whole number"),
        ({"$frobnicate": "1"}, "unknown query option"),
    ],
)
def test_bad_queries_answer_400_saying_what_to_fix(sta: TestClient, params: dict, fragment: str) -> None:
    response = sta.get(f"{STA}/Things", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_unknown_paths_answer_404(sta: TestClient) -> None:
    for path in ("Nothing", "Things(abc)", "Things/Datastreams", "Things(1)/Nowhere", "ObservedProperties(1)"):
        response = sta.get(f"{STA}/{path}")
        assert response.status_code == 404 and response.json()["detail"], path


def test_create_observation_is_idempotent_and_moves_latest(sta: TestClient, sta_db, sql) -> None:
    url, streams, stations = sta_db
    ident = streams[f"{stations[1]}:a34004"]
    key = sta_key(url, "sta-create-one")
    moment = "2026-11-02T12:00:00+08:00"  # after the seeded hours: moves the latest value
    body = {"phenomenonTime": moment, "result": 42.5, "parameters": {"flag": "N"}, "Datastream": {"@iot.id": ident}}
    first = sta.post(f"{STA}/Observations", json=body, headers={"X-API-Key": key})
    assert first.status_code == 201, first.text
    again = sta.post(f"{STA}/Observations", json={**body, "result": 99.0}, headers={"X-API-Key": key})
    assert again.headers["location"] == first.headers["location"]
    stored = sql.execute(
        "SELECT value, source FROM observation WHERE datastream_id = %s AND phenomenon_time = %s",
        [ident, dt.datetime(2026, 11, 2, 4, tzinfo=dt.UTC)],
    ).fetchall()
    assert stored == [(42.5, "sta")]  # the first value stays
    latest = sql.execute("SELECT value FROM datastream_latest WHERE datastream_id = %s", [ident]).fetchone()
    assert latest == (42.5,)
    read = sta.get(first.headers["location"].replace("http://127.0.0.1", "")).json()
    assert (read["result"], read["phenomenonTime"]) == (42.5, "2026-11-02T04:00:00.000Z")
    entry = sql.execute("SELECT detail FROM audit_log WHERE actor = 'key:sta-create-one' ORDER BY id").fetchall()
    assert [e[0]["inserted"] for e in entry] == [1, 0]


def test_create_observations_batch_all_or_nothing(sta: TestClient, sta_db, sql) -> None:
    url, streams, stations = sta_db
    a, b = streams[f"{stations[0]}:a34004"], streams[f"{stations[0]}:a34002"]
    key = sta_key(url, "sta-batch")
    times = [f"2026-12-{day:02d}T00:00:00Z" for day in (1, 2)]  # a new month: its partition is made first
    sql.execute("DROP TABLE IF EXISTS observation_y2026m12")
    batch = [
        {
            "Datastream": {"@iot.id": a},
            "components": ["phenomenonTime", "result", "parameters"],
            "dataArray": [[times[0], 1.5, {"flag": "N"}], [times[1], 2.5, {"flag": "M"}]],
        },
        {"Datastream": {"@iot.id": b}, "components": ["result", "phenomenonTime"], "dataArray": [[3.5, times[0]]]},
    ]
    count_before = sql.execute("SELECT count(*) FROM observation").fetchone()[0]
    response = sta.post(f"{STA}/CreateObservations", json=batch, headers={"X-API-Key": key})
    assert response.status_code == 201, response.text
    assert len(response.json()) == 3 and all("/Observations(" in link for link in response.json())
    rows = sql.execute(
        "SELECT datastream_id, value, flag, quality FROM observation WHERE phenomenon_time >= '2026-12-01Z'"
        " ORDER BY datastream_id, phenomenon_time"
    ).fetchall()
    assert rows == sorted([(a, 1.5, "N", "good"), (a, 2.5, "M", "invalid"), (b, 3.5, "N", "good")])
    resent = sta.post(f"{STA}/CreateObservations", json=batch, headers={"X-API-Key": key})
    assert resent.status_code == 201 and resent.json() == response.json()
    assert sql.execute("SELECT count(*) FROM observation").fetchone()[0] == count_before + 3
    bad = [batch[0], {"Datastream": {"@iot.id": 987654}, "components": ["result"], "dataArray": [[1.0]]}]
    refused = sta.post(f"{STA}/CreateObservations", json=bad, headers={"X-API-Key": key})
    assert refused.status_code == 400 and "987654" in refused.json()["detail"]
    assert sql.execute("SELECT count(*) FROM observation").fetchone()[0] == count_before + 3


def _daily_from_raw(sql, ident: int, days: set[dt.date]) -> dict[dt.date, tuple[int, int, float]]:
    """(observations, valid, sum of valid values) per Beijing day, worked out here from the raw rows."""
    china = dt.timezone(dt.timedelta(hours=8))
    out: dict[dt.date, list] = {}
    rows = sql.execute(
        "SELECT phenomenon_time, value, quality FROM observation WHERE datastream_id = %s", [ident]
    ).fetchall()
    for moment, value, quality in rows:
        day = moment.astimezone(china).date()
        if day in days:
            entry = out.setdefault(day, [0, 0, 0.0])
            entry[0] += 1
            if quality == "good":
                entry[1] += 1
                entry[2] += value
    return {day: (n, valid, pytest.approx(total)) for day, (n, valid, total) in out.items()}


def test_creates_keep_the_daily_sums(sta: TestClient, sta_db, sql) -> None:
    """SensorThings creates add to observation_daily exactly what the raw rows give (a re-sent
    batch adds nothing): the Beijing day, the count, the valid count and the valid values' sum."""
    url, streams, stations = sta_db
    ident = streams[f"{stations[1]}:a34004"]
    key = sta_key(url, "sta-daily")
    # Across Beijing midnight (UTC+8): two Beijing days; flags D (invalid) and S (suspect) are not valid.
    rows = [["2026-11-04T14:00:00Z", 10.0, {"flag": "N"}], ["2026-11-04T15:30:00Z", 11.5, {"flag": "D"}]]
    rows += [["2026-11-04T16:00:00Z", 12.25, {"flag": "N"}], ["2026-11-04T17:00:00Z", 13.0, {"flag": "S"}]]
    batch = [{"Datastream": {"@iot.id": ident}, "components": ["phenomenonTime", "result", "parameters"],
              "dataArray": rows}]  # fmt: skip
    one = {"phenomenonTime": "2026-11-05T02:00:00Z", "result": 14.5, "Datastream": {"@iot.id": ident}}
    for _ in range(2):  # the second time: all already stored
        assert sta.post(f"{STA}/CreateObservations", json=batch, headers={"X-API-Key": key}).status_code == 201
        assert sta.post(f"{STA}/Observations", json=one, headers={"X-API-Key": key}).status_code == 201
    days = {dt.date(2026, 11, 4), dt.date(2026, 11, 5)}
    stored = sql.execute(
        "SELECT day, observations, valid, valid_sum FROM observation_daily WHERE datastream_id = %s AND day = ANY(%s)",
        [ident, sorted(days)],
    ).fetchall()
    expected = _daily_from_raw(sql, ident, days)
    assert {day: (n, valid, total) for day, n, valid, total in stored} == expected
    # Beijing 11-04 22:00 N, 23:30 D (invalid); 11-05 00:00 N, 01:00 S (suspect), 10:00 N.
    assert {day: value[:2] for day, value in expected.items()} == {min(days): (2, 1), max(days): (3, 2)}


def test_creates_need_a_station_key(sta: TestClient, sta_db) -> None:
    url = sta_db[0]
    body = {"result": 1.0, "phenomenonTime": "2026-11-01T00:00:00Z", "Datastream": {"@iot.id": 1}}
    missing = sta.post(f"{STA}/Observations", json=body)
    assert missing.status_code == 401 and "sign in" in missing.json()["detail"]
    wrong = sta.post(f"{STA}/CreateObservations", json=[], headers={"X-API-Key": "ek_not-a-key"})
    assert wrong.status_code == 401 and "not known" in wrong.json()["detail"]
    partner = sta_key(url, "sta-partner", role="partner", layers=["station"])
    refused = sta.post(f"{STA}/Observations", json=body, headers={"X-API-Key": partner})
    assert refused.status_code == 403 and "observations:push" in refused.json()["detail"]
    station = sta_key(url, "sta-checks")
    for bad, fragment in (
        ({**body, "result": "high"}, "result must be a number"),
        ({**body, "phenomenonTime": "yesterday"}, "not an ISO 8601"),
        ({**body, "phenomenonTime": "1999-01-01T00:00:00Z"}, "out of range"),
        ({"result": 1.0}, "link the Observation to its Datastream"),
        ({**body, "parameters": {"flag": "Q"}}, "not an HJ 212 flag"),
    ):
        response = sta.post(f"{STA}/Observations", json=bad, headers={"X-API-Key": station})
        assert response.status_code == 400 and fragment in response.json()["detail"], bad


def test_ids_links_and_posting_to_a_datastream(sta: TestClient, sta_db, sql) -> None:
    url, streams, stations = sta_db
    ident = streams[f"{stations[1]}:a34004"]
    by_id = sta.get(f"{STA}/Things", params={"$filter": f"@iot.id eq {stations[1]}", "$select": "@iot.id"}).json()
    assert by_id["value"] == [{"@iot.id": stations[1]}]
    key = sta_key(url, "sta-path-post")
    body = {"phenomenonTime": "2026-10-15T00:00:00Z", "result": 5.0}
    created = sta.post(f"{STA}/Datastreams({ident})/Observations", json=body, headers={"X-API-Key": key})
    assert created.status_code == 201, created.text
    link = created.headers["location"].replace("http://127.0.0.1", "")
    assert sta.get(f"{link}/Datastream").json()["@iot.id"] == ident
    assert sta.get(f"{link}/FeatureOfInterest").json()["@iot.id"] == stations[1]
    assert sta.get(f"{link}/result/$value").text == "5.0"
    stored = sql.execute(
        "SELECT value FROM observation WHERE datastream_id = %s AND phenomenon_time = '2026-10-15Z'", [ident]
    ).fetchone()
    assert stored == (5.0,)


def test_counts_over_the_exact_limit_are_the_planners_estimate(sta: TestClient, sta_db, sql, monkeypatch) -> None:
    from gis_service.monitoring.sta import queries

    monkeypatch.setattr(queries, "COUNT_EXACT_LIMIT", 10)
    sql.execute("ANALYZE observation")
    body = sta.get(f"{STA}/Observations", params={"$count": "true", "$top": "1", "$filter": "result ge 0"}).json()
    exact = sql.execute("SELECT count(*) FROM observation").fetchone()[0]
    assert exact > 10 and 10 < body["@iot.count"] <= 2 * exact  # an estimate, at least the limit + 1
    small = sta.get(f"{STA}/Things", params={"$count": "true", "$top": "1", "$filter": "id le 5"}).json()
    assert small["@iot.count"] == 5


def test_signed_in_staff_see_and_filter_the_internal_operator(sta: TestClient, sta_db, sql) -> None:
    from gis_service.access.accounts import create_account
    from gis_service.access.passwords import hash_password

    async def make() -> None:
        async with await psycopg.AsyncConnection.connect(sta_db[0], autocommit=True) as conn:
            await create_account(conn, "sta-analyst", "analyst", hash_password("sta-analyst-password"))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result()
    token = sta.post("/api/auth/token", data={"username": "sta-analyst", "password": "sta-analyst-password"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    operator = sql.execute("SELECT operator FROM station WHERE operator IS NOT NULL ORDER BY id LIMIT 1").fetchone()[0]
    body = sta.get(
        f"{STA}/Things",
        params={"$filter": f"properties/operator eq '{operator}'", "$select": "id,properties"},
        headers=headers,
    ).json()
    expected = sql.execute("SELECT id FROM station WHERE operator = %s ORDER BY id", [operator]).fetchall()
    assert [t["@iot.id"] for t in body["value"]] == [i for (i,) in expected]
    assert all(t["properties"]["operator"] == operator for t in body["value"])


def test_time_functions_and_durations(sta: TestClient, sta_db, sql) -> None:
    ident = sta_db[1][f"{sta_db[2][0]}:a34002"]
    base = f"{STA}/Datastreams({ident})/Observations"
    first_day = sta.get(base, params={"$filter": "date(phenomenonTime) eq 2026-10-30", "$count": "true"}).json()
    assert first_day["@iot.count"] == 24
    early = sta.get(base, params={"$filter": "phenomenonTime add duration'PT1H' le 2026-10-30T02:00:00Z"}).json()
    assert [o["result"] for o in early["value"]] == [ident * 100.0, ident * 100.0 + 1]
    month = sta.get(
        base,
        params={
            "$filter": "month(phenomenonTime) eq 11 and minute(phenomenonTime) eq 0",
            "$count": "true",
            "$top": "1",
        },
    ).json()
    expected = sql.execute(
        "SELECT count(*) FROM observation WHERE datastream_id = %s AND extract(month FROM phenomenon_time"
        " AT TIME ZONE 'UTC') = 11",
        [ident],
    ).fetchone()[0]
    assert month["@iot.count"] == expected == HOURS - 48
    text = sta.get(
        f"{STA}/ObservedProperties",
        params={"$filter": "substringof('PM', name) and endswith(properties/factorCode, '4')"},
    ).json()
    assert [p["@iot.id"] for p in text["value"]] == ["a34004"]
