"""Per-feature scopes on the paths added after the first ones (issue 14 item 3): revision diffs
and listings, the chiefs' endpoints, the river network (trace, catchment), station status,
SensorThings and the monitoring event stream, feature statistics and collection extents.

A partner key shares a square that cuts the river network (segments 3, 4, 5 and 7 of the demo's
东西溪 / 东溪 chain lie in it, their sources do not). What each endpoint may return is worked out
here independently, with shapely on the features' geometries read from the database (and, for
the trace, a breadth-first walk in Python over the segments inside the square): nothing outside
the square ever comes back, and what lies inside comes back as for everyone. The database is a
scratch copy of the demo data: the revision tests edit red lines.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pyproj
import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient

from gis_service.access.keys import area_of_geojson, create_key
from gis_service.monitoring.hj212 import Reading
from layers.catalog import load_catalog
from tests.conftest import demo_database, scratch_database_name
from tests.test_access import (
    _forget_failed_sign_ins,  # noqa: F401 - autouse fixture
    add_user,
    bearer,
    sign_in,
    unique,
)
from tests.test_access_rules import _start
from tests.test_access_scopes import ON_WATERS
from tests.test_monitoring_status_events import _ingest, read_events

SQUARE = shapely.box(118.10, 24.695, 118.18, 24.76)
GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def scoped_url() -> str:
    return demo_database(scratch_database_name("scoped_paths"))


@pytest.fixture(scope="module")
def sdb(scoped_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(scoped_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def app(scoped_url: str) -> Iterator[TestClient]:
    client = _start(scoped_url, None)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def partner(scoped_url: str) -> dict[str, str]:
    """A partner key reading every layer inside the square."""
    area = area_of_geojson(shapely.geometry.mapping(SQUARE), "area")

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(scoped_url, autocommit=True) as conn:
            _, secret = await create_key(
                conn,
                name=unique("square"),
                role="partner",
                created_by="test-suite",
                layers=load_catalog().ids,
                area=area,
            )
            return secret

    with ThreadPoolExecutor(1) as pool:
        return {"X-API-Key": pool.submit(asyncio.run, create()).result()}


def geometries(db: psycopg.Connection, layer: str) -> dict[int, shapely.Geometry]:
    return {fid: shapely.from_wkb(wkb) for fid, wkb in db.execute(f"SELECT id, ST_AsBinary(geom) FROM {layer}")}


def inside(db: psycopg.Connection, layer: str) -> set[int]:
    return {fid for fid, geom in geometries(db, layer).items() if SQUARE.intersects(geom)}


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


# -- revisions ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redline_edits(sdb: psycopg.Connection) -> tuple[int, int]:
    """Two revisions of red lines, in and out of the square: (first, last) revision numbers."""
    shapes = geometries(sdb, "redline")
    ins = sorted(fid for fid, g in shapes.items() if SQUARE.intersects(g))
    outs = sorted(fid for fid, g in shapes.items() if not SQUARE.intersects(g))
    assert ins and len(outs) >= 3
    into = "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(118.14, 24.72), 4326), 0.003))"
    away = "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(118.30, 24.85), 4326), 0.003))"
    first = sdb.execute("SELECT max(number) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
    new = "INSERT INTO redline (code, name, function_type, domain, geom) VALUES (%s, %s, '水源涵养', '陆域', {})"
    with sdb.transaction():
        sdb.execute("UPDATE redline SET name = name || '（内改）' WHERE id = %s", [ins[0]])
        sdb.execute(f"UPDATE redline SET geom = {into} WHERE id = %s", [outs[0]])  # moves in: added for the partner
        sdb.execute("UPDATE redline SET name = name || '（外改）' WHERE id = %s", [outs[1]])
        sdb.execute("DELETE FROM redline WHERE id = %s", [outs[2]])
        sdb.execute(new.format(into), ["SCOPE-IN", "范围内新增"])
        sdb.execute(new.format(away), ["SCOPE-OUT", "范围外新增"])
    with sdb.transaction():
        sdb.execute(f"UPDATE redline SET geom = {away} WHERE id = %s", [ins[0]])  # moves out: removed for the partner
        sdb.execute("UPDATE redline SET name = name || '（再改）' WHERE id = %s", [outs[0]])
        sdb.execute("DELETE FROM redline WHERE code = 'SCOPE-IN'")
    last = sdb.execute("SELECT max(number) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
    assert last == first + 2
    return first, last


def _history(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT id, history_id, revision_from, revision_to, ST_AsBinary(geom) FROM redline_history"
    ).fetchall()


def _as_of(history: list[tuple], number: int, area: shapely.Geometry | None) -> dict[int, int]:
    """Feature id -> version (history id) as of a revision, of the features in ``area`` (None: all)."""
    return {
        fid: version
        for fid, version, start, end, wkb in history
        if start <= number
        and (end is None or end > number)
        and (area is None or area.intersects(shapely.from_wkb(wkb)))
    }


def _changes(history: list[tuple], start: int, end: int, area: shapely.Geometry | None) -> dict[int, str]:
    before, after = _as_of(history, start, area), _as_of(history, end, area)
    changes = {fid: "added" for fid in after.keys() - before.keys()}
    changes |= {fid: "removed" for fid in before.keys() - after.keys()}
    changes |= {fid: "changed" for fid in before.keys() & after.keys() if before[fid] != after[fid]}
    return changes


def _geodesic_km2(wkb: bytes) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.from_wkb(wkb))[0]) / 1e6


def test_a_partner_diff_holds_only_what_lies_in_its_area_at_either_revision(app, partner, sdb, redline_edits) -> None:
    first, last = redline_edits
    history = _history(sdb)
    for start, end in ((first, first + 1), (first + 1, last), (first, last), (0, last)):
        params = {"from": start, "to": end}
        public = _ok(app.get("/api/layers/redline/diff", params=params))
        assert {f["id"]: f["change"] for f in public["features"]} == _changes(history, start, end, None)
        scoped = _ok(app.get("/api/layers/redline/diff", params=params, headers=partner))
        expected = _changes(history, start, end, SQUARE)
        assert {f["id"]: f["change"] for f in scoped["features"]} == expected
        assert set(expected) <= {f["id"] for f in public["features"]}
        if end - start != 1 or start == first:
            assert set(expected) < {f["id"] for f in public["features"]}  # the public diff holds more
        counts = {kind: sum(change == kind for change in expected.values()) for kind in ("added", "removed", "changed")}
        assert {k: scoped["summary"][k] for k in counts} == counts
        areas = {fid: _geodesic_km2(wkb) for fid, _, s, e, wkb in history if s <= end and (e is None or e > end)}
        after = _as_of(history, end, SQUARE)
        assert scoped["summary"]["area_to_km2"] == pytest.approx(sum(areas[fid] for fid in after), rel=1e-4, abs=1e-6)


def test_a_partner_revision_list_counts_the_features_in_its_area(app, partner, sdb, redline_edits) -> None:
    history = _history(sdb)

    def expected(area: shapely.Geometry | None) -> dict[int, tuple[int, int, int, int]]:
        numbers = {start for _, _, start, _, _ in history} | {end for *_, end, _ in history if end is not None}
        rows = {}
        for n in numbers:
            mine = [h for h in history if area is None or area.intersects(shapely.from_wkb(h[4]))]
            started = {fid for fid, _, start, _, _ in mine if start == n}
            ended = {fid for fid, _, _, end, _ in mine if end == n}
            rows[n] = (len(_as_of(history, n, area)), len(started - ended), len(ended - started), len(started & ended))
        return rows

    def listed(headers: dict[str, str]) -> dict[int, tuple[int, int, int, int]]:
        revisions = _ok(app.get("/api/layers/redline/revisions", headers=headers))["revisions"]
        fields = ("feature_count", "features_added", "features_removed", "features_changed")
        return {r["number"]: tuple(r[f] for f in fields) for r in revisions}

    assert listed({}) == expected(None)  # the stored counts, as this test counts them
    scoped = listed(partner)
    assert scoped == expected(SQUARE) and scoped != listed({})
    first, _ = redline_edits
    assert scoped[first + 1][:2] == (len(_as_of(history, first + 1, SQUARE)), 2)  # moved in, and the new one


# -- the river network -------------------------------------------------------------------------------


def _walk(db: psycopg.Connection, start: int, direction: str, within: set[int]) -> set[int]:
    """The segments up- or downstream of ``start`` reached through segments of ``within`` only."""
    downstream = dict(db.execute("SELECT id, downstream_id FROM river").fetchall())
    upstream: dict[int, list[int]] = defaultdict(list)
    for segment, target in downstream.items():
        if target is not None:
            upstream[target].append(segment)
    found: set[int] = set()
    frontier = [start]
    while frontier:
        current = frontier.pop()
        nexts = upstream[current] if direction == "upstream" else [downstream[current]]
        for segment in nexts:
            if segment is not None and segment in within and segment != start and segment not in found:
                found.add(segment)
                frontier.append(segment)
    return found


def _no_feature_outside(sdb: psycopg.Connection, answer: dict) -> None:
    shapes = {layer: geometries(sdb, layer) for layer in ("river", "watershed", "station")}
    for key, layer in (
        ("segments", "river"),
        ("watersheds", "watershed"),
        ("stations", "station"),
        ("outfalls", "station"),
    ):
        outside = [item["id"] for item in answer.get(key, []) if not SQUARE.intersects(shapes[layer][item["id"]])]
        assert outside == [], (key, outside)
    for feature in answer.get("geojson", {}).get("features", []):
        assert SQUARE.intersects(shapely.geometry.shape(feature["geometry"])), feature["id"]


def test_a_partner_traces_the_network_only_inside_its_area(app, partner, sdb) -> None:
    rivers = inside(sdb, "river")
    assert rivers == {3, 4, 5, 7}  # the square of this test (the demo's chain 1 → 2 → 3 → 4 → 5 ← 7 ← 6)
    for start, direction in ((5, "upstream"), (4, "upstream"), (7, "downstream"), (3, "downstream")):
        path = f"/api/rivers/{start}/{direction}"
        public = _ok(app.get(path))
        scoped = _ok(app.get(path, headers=partner))
        assert {s["id"] for s in public["segments"]} == _walk(sdb, start, direction, set(geometries(sdb, "river")))
        assert {s["id"] for s in scoped["segments"]} == _walk(sdb, start, direction, rivers)
        _no_feature_outside(sdb, scoped)
        stations = inside(sdb, "station")
        for key in ("stations", "outfalls"):
            assert {s["id"] for s in scoped[key]} == {s["id"] for s in public[key]} & stations
    upstream = _ok(app.get("/api/rivers/5/upstream"))
    assert {1, 2, 6} <= {s["id"] for s in upstream["segments"]}  # the public trace leaves the square
    for path in ("/api/rivers/1/upstream", "/api/rivers/2/downstream"):  # starts outside: not found
        assert app.get(path).status_code == 200
        refused = app.get(path, headers=partner)
        assert refused.status_code == 404 and "does not exist" in refused.json()["detail"]


def test_a_partner_catchment_is_cut_to_its_area(app, partner, sdb) -> None:
    stations = inside(sdb, "station")
    on_network = [sid for (sid,) in sdb.execute("SELECT id FROM station WHERE river_id = 5 ORDER BY id")]
    start = next(sid for sid in on_network if sid in stations)
    public = _ok(app.get(f"/api/stations/{start}/catchment"))
    scoped = _ok(app.get(f"/api/stations/{start}/catchment", headers=partner))
    _no_feature_outside(sdb, scoped)
    assert {s["id"] for s in scoped["segments"]} == {5} | _walk(sdb, 5, "upstream", inside(sdb, "river"))
    assert len(public["geojson"]["features"]) > len(scoped["geojson"]["features"]) > 0
    watersheds = geometries(sdb, "watershed")
    expected_km2 = shapely.union_all([watersheds[w["id"]] for w in scoped["watersheds"]])
    if scoped["watersheds"]:
        assert scoped["area_km2"] == pytest.approx(abs(GEOD.geometry_area_perimeter(expected_km2)[0]) / 1e6, rel=1e-3)
    outside = min(set(geometries(sdb, "station")) - stations)
    assert app.get(f"/api/stations/{outside}/catchment").status_code == 200
    assert app.get(f"/api/stations/{outside}/catchment", headers=partner).status_code == 404


# -- chiefs ------------------------------------------------------------------------------------------


def _units(sdb: psycopg.Connection) -> dict[int, set[tuple[str, int]]]:
    """Each chief's units inside the square."""
    shapes = {layer: geometries(sdb, layer) for layer in ("river", "bay", "watershed")}
    found: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for chief, layer, fid in sdb.execute("SELECT chief_id, layer, feature_id FROM chief_assignment"):
        if SQUARE.intersects(shapes[layer][fid]):
            found[chief].add((layer, fid))
    return found


def test_a_partner_reads_a_chief_jurisdiction_only_inside_its_area(app, partner, sdb) -> None:
    units = _units(sdb)
    chief = max(units, key=lambda c: len(units[c]))
    public = _ok(app.get(f"/api/chiefs/{chief}"))
    scoped = _ok(app.get(f"/api/chiefs/{chief}", headers=partner))
    assert {(j["layer"], j["id"]) for j in scoped["jurisdiction"]} == units[chief]
    assert len(public["jurisdiction"]) > len(scoped["jurisdiction"])
    for key, layer in (("stations", "station"), ("outfalls", "station"), ("redlines", "redline")):
        shapes = geometries(sdb, layer)
        assert all(SQUARE.intersects(shapes[item["id"]]) for item in scoped[key]), key
        assert {i["id"] for i in scoped[key]} == {i["id"] for i in public[key] if SQUARE.intersects(shapes[i["id"]])}
    page = app.get(f"/api/chiefs/{chief}/map", headers=partner)
    assert page.status_code == 200
    names = dict(sdb.execute("SELECT id, name FROM station").fetchall())
    shown = {s["id"] for s in public["stations"] + public["outfalls"]} - inside(sdb, "station")
    assert not [names[sid] for sid in shown if names[sid] in page.text]


def test_a_partner_counts_and_finds_chief_units_only_inside_its_area(app, partner, sdb) -> None:
    units = _units(sdb)
    listed = _ok(app.get("/api/chiefs", headers=partner))["chiefs"]
    assert len(listed) == sdb.execute("SELECT count(*) FROM chief").fetchone()[0]
    for chief in listed:
        mine = units.get(chief["id"], set())
        counts = {
            f"{layer}s": sum(1 for unit_layer, _ in mine if unit_layer == layer)
            for layer in ("river", "bay", "watershed")
        }
        assert {k: chief[k] for k in counts} == counts, chief["id"]
    chief = max(units, key=lambda c: len(units[c]))
    name = sdb.execute("SELECT name FROM chief WHERE id = %s", [chief]).fetchone()[0]
    hits = _ok(app.get("/api/search", params={"q": name}, headers=partner))["results"]
    hit = next(h for h in hits if h["layer"] == "chief" and h["id"] == chief)
    shapes = {layer: geometries(sdb, layer) for layer in ("river", "bay", "watershed")}
    bounds = shapely.union_all([shapes[layer][fid] for layer, fid in units[chief]]).bounds
    assert hit["bbox"] == pytest.approx(list(bounds), abs=1e-9)


# -- station status, SensorThings, statistics, extents -----------------------------------------------


def test_a_partner_reads_station_status_only_inside_its_area(app, partner, sdb) -> None:
    stations = inside(sdb, "station")
    outside = min(set(geometries(sdb, "station")) - stations)
    last = sdb.execute("SELECT max(phenomenon_time) FROM observation").fetchone()[0]
    series = {"property": "w01001", "from": (last - dt.timedelta(days=2)).isoformat(), "to": last.isoformat()}
    for path, params in ((f"/api/stations/{outside}/latest", {}), (f"/api/stations/{outside}/series", series)):
        assert app.get(path, params=params).status_code in (200, 400)  # public: the station exists
        refused = app.get(path, params=params, headers=partner)
        assert refused.status_code == 404 and f"no station with id {outside}" in refused.json()["detail"]
    mine = min(stations)
    assert _ok(app.get(f"/api/stations/{mine}/latest", headers=partner))["station"]["id"] == mine
    standards = dict(sdb.execute("SELECT id, standard FROM station").fetchall())
    day = (last - dt.timedelta(days=1)).date().isoformat()
    water = _ok(app.get("/api/water-quality/summary", params={"date": day}, headers=partner))
    assert {s["id"] for s in water["stations"]} == {s for s in stations if standards[s] in ("river", "lake", "sea")}
    assert water["sections"] < _ok(app.get("/api/water-quality/summary", params={"date": day}))["sections"]
    air = _ok(app.get("/api/air-quality/summary", params={"date": day}, headers=partner))
    assert {s["id"] for s in air["stations"]} == {s for s in stations if standards[s] == "air"}


def test_a_partner_reads_sensorthings_only_inside_its_area(app, partner, sdb) -> None:
    stations = inside(sdb, "station")
    outside = min(set(geometries(sdb, "station")) - stations)
    for entity in ("Things", "Locations", "Sensors", "FeaturesOfInterest", "HistoricalLocations"):
        everyone = _ok(app.get(f"/sta/v1.1/{entity}", params={"$top": 1000}))["value"]
        assert len(everyone) == len(geometries(sdb, "station"))
        scoped = _ok(app.get(f"/sta/v1.1/{entity}", params={"$top": 1000, "$count": "true"}, headers=partner))
        assert {e["@iot.id"] for e in scoped["value"]} == stations and scoped["@iot.count"] == len(stations)
        assert app.get(f"/sta/v1.1/{entity}({outside})", headers=partner).status_code == 404
    owned = {d: s for d, s in sdb.execute("SELECT id, station_id FROM datastream")}
    datastreams = _ok(app.get("/sta/v1.1/Datastreams", params={"$top": 1000}, headers=partner))["value"]
    assert {d["@iot.id"] for d in datastreams} == {d for d, s in owned.items() if s in stations}
    assert app.get(f"/sta/v1.1/Things({outside})/Datastreams", headers=partner).status_code == 404
    params = {"$top": 200, "$expand": "Datastream($select=id)", "$orderby": "phenomenonTime desc"}
    observations = _ok(app.get("/sta/v1.1/Observations", params=params, headers=partner))["value"]
    assert observations and all(owned[o["Datastream"]["@iot.id"]] in stations for o in observations)
    name = sdb.execute("SELECT name FROM station WHERE id = %s", [outside]).fetchone()[0]
    filtered = {"$filter": f"Thing/name eq '{name}'"}
    assert _ok(app.get("/sta/v1.1/Datastreams", params=filtered))["value"]
    assert _ok(app.get("/sta/v1.1/Datastreams", params=filtered, headers=partner))["value"] == []


def test_a_chief_sees_a_thing_operator_only_on_their_waters(app, scoped_url: str, sdb) -> None:
    units = _units(sdb)
    chief = max(units, key=lambda c: len(units[c]))
    login, password = add_user(scoped_url, "chief", chief)
    headers = bearer(sign_in(app, login, password)["access_token"])
    on_waters = {row[0] for row in sdb.execute(ON_WATERS, [chief])}
    operated = {row[0] for row in sdb.execute("SELECT id FROM station WHERE operator IS NOT NULL")}
    assert on_waters & operated and operated - on_waters
    things = _ok(app.get("/sta/v1.1/Things", params={"$top": 1000}, headers=headers))["value"]
    assert len(things) == len(geometries(sdb, "station"))
    assert {t["@iot.id"] for t in things if t["properties"].get("operator")} == on_waters & operated


def test_a_partner_gets_no_statistics_or_extent_of_features_outside_its_area(app, partner, sdb) -> None:
    redlines = geometries(sdb, "redline")
    outside = min(fid for fid, g in redlines.items() if not SQUARE.intersects(g))
    assert app.get(f"/api/layers/redline/{outside}/stats").status_code == 200
    refused = app.get(f"/api/layers/redline/{outside}/stats", headers=partner)
    assert refused.status_code == 404 and "does not exist" in refused.json()["detail"]
    stations = geometries(sdb, "station")
    mine = shapely.union_all([g for g in stations.values() if SQUARE.intersects(g)]).bounds
    collection = _ok(app.get("/ogc/collections/station", params={"f": "json"}, headers=partner))
    assert collection["extent"]["spatial"]["bbox"][0] == pytest.approx(list(mine), abs=1e-6)
    everyone = _ok(app.get("/ogc/collections/station", params={"f": "json"}))["extent"]["spatial"]["bbox"][0]
    assert everyone == pytest.approx(list(shapely.union_all(list(stations.values())).bounds), abs=1e-6)
    listed = _ok(app.get("/ogc/collections", params={"f": "json"}, headers=partner))["collections"]
    assert next(c for c in listed if c["id"] == "station")["extent"] == collection["extent"]


def test_a_partner_event_stream_holds_only_the_stations_in_its_area(live_server: str, database_url: str) -> None:
    """Over real HTTP (the session database): observations of a station outside the area and of
    one inside it are stored while a partner key reads the stream; it gets the one inside only."""
    area = area_of_geojson(shapely.geometry.mapping(SQUARE), "area")

    async def key() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            _, secret = await create_key(
                conn, name=unique("square-sse"), role="partner", created_by="test-suite", layers=["station"], area=area
            )
            return secret

    with ThreadPoolExecutor(1) as pool:
        headers = {"X-API-Key": pool.submit(asyncio.run, key()).result()}
    with psycopg.connect(database_url) as db:
        mine = inside(db, "station")
        water = dict(db.execute("SELECT id, mn FROM station WHERE standard = 'river' AND mn IS NOT NULL").fetchall())
        latest = db.execute("SELECT max(phenomenon_time) FROM observation").fetchone()[0]
    sid_in = min(set(water) & mine)
    sid_out = min(set(water) - mine)
    events: list[tuple[str, dict]] = []
    connected = threading.Event()

    def done(name: str, event: dict) -> bool:
        return name == "observation" and event["station_id"] == sid_in

    url = f"{live_server}/api/monitoring/events"
    reader = threading.Thread(target=read_events, args=(url, events, connected, done, headers), daemon=True)
    reader.start()
    assert connected.wait(30), "the stream did not open"
    readings = [Reading("w01001", 7.2, "N"), Reading("w01009", 6.8, "N")]
    for offset, sid in ((7, sid_out), (8, sid_in)):  # hours after the newest data: nothing else stored there
        _ingest(database_url, water[sid], latest + dt.timedelta(hours=offset), readings)
    reader.join(60)
    assert any(n == "observation" and e["station_id"] == sid_in for n, e in events), events
    assert {e["station_id"] for _, e in events} <= mine
