"""Chiefs and jurisdictions, upstream/downstream tracing, catchments and name search, checked against
independent computations on the database."""

from __future__ import annotations

from collections import defaultdict

import psycopg
import pytest
from fastapi.testclient import TestClient


def river_graph(db: psycopg.Connection) -> tuple[dict[int, int | None], dict[int, float]]:
    rows = db.execute(
        "SELECT id, downstream_id, coalesce(length_km, ST_Length(geom::geography) / 1000) FROM river"
    ).fetchall()
    return {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}


def upstream_distances(db: psycopg.Connection, start: int) -> dict[int, float]:
    """Breadth-first walk up the network in Python: segment -> km from start's upstream end."""
    downstream, length = river_graph(db)
    children: dict[int, list[int]] = defaultdict(list)
    for segment, target in downstream.items():
        if target is not None:
            children[target].append(segment)
    found: dict[int, float] = {}
    frontier = [(child, 0.0) for child in children[start]]
    while frontier:
        segment, distance = frontier.pop()
        if segment in found or segment == start:
            continue
        found[segment] = distance
        frontier += [(child, distance + length[segment]) for child in children[segment]]
    return found


def test_list_chiefs_with_filters(client: TestClient, db: psycopg.Connection) -> None:
    everyone = client.get("/api/chiefs").json()["chiefs"]
    assert len(everyone) == db.execute("SELECT count(*) FROM chief").fetchone()[0]
    bay = client.get("/api/chiefs", params={"role": "bay"}).json()["chiefs"]
    assert bay and all(c["role"] == "bay" for c in bay)
    assert {c["id"] for c in bay} == {r[0] for r in db.execute("SELECT id FROM chief WHERE role = 'bay'").fetchall()}
    town = client.get("/api/chiefs", params={"level": "town", "adcode": "350212"}).json()["chiefs"]
    expected = db.execute("SELECT id FROM chief WHERE level = 'town' AND adcode = '350212'").fetchall()
    assert {c["id"] for c in town} == {r[0] for r in expected}
    assert client.get("/api/chiefs", params={"level": "emperor"}).status_code == 400
    assert client.get("/api/chiefs", params={"adcode": "35021"}).status_code == 400


def test_chief_jurisdiction(client: TestClient, db: psycopg.Connection) -> None:
    chief_id = db.execute(
        "SELECT chief_id FROM chief_assignment WHERE layer = 'river' GROUP BY chief_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    detail = client.get(f"/api/chiefs/{chief_id}").json()
    assert detail["chief"]["id"] == chief_id
    assigned = set(
        db.execute("SELECT layer, feature_id FROM chief_assignment WHERE chief_id = %s", [chief_id]).fetchall()
    )
    assert {(j["layer"], j["id"]) for j in detail["jurisdiction"]} == assigned
    rivers = [fid for layer, fid in assigned if layer == "river"]
    linked = db.execute("SELECT id, kind FROM station WHERE river_id = ANY(%s)", [rivers]).fetchall()
    listed = {s["id"] for s in detail["stations"]} | {s["id"] for s in detail["outfalls"]}
    assert linked and {row[0] for row in linked} <= listed
    assert all(s["kind"] == "outfall" for s in detail["outfalls"])
    touching = db.execute(
        "SELECT DISTINCT l.id FROM redline l JOIN river r ON ST_Intersects(l.geom, r.geom) WHERE r.id = ANY(%s)",
        [rivers],
    ).fetchall()
    assert {r["id"] for r in detail["redlines"]} >= {row[0] for row in touching}
    x0, y0, x1, y1 = detail["bbox"]
    for unit in detail["jurisdiction"]:
        assert x0 <= unit["bbox"][0] and unit["bbox"][2] <= x1 and y0 <= unit["bbox"][1] and unit["bbox"][3] <= y1


def test_chief_map_and_missing_chief(client: TestClient, db: psycopg.Connection) -> None:
    chief_id, name = db.execute("SELECT id, name FROM chief ORDER BY id LIMIT 1").fetchone()
    page = client.get(f"/api/chiefs/{chief_id}/map")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert name in page.text and "leaflet" in page.text.lower()
    assert "市级河长 City river chief" in page.text or "市级湾长 City bay chief" in page.text  # the post in words
    missing = client.get("/api/chiefs/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert client.get("/api/chiefs/999999/map").status_code == 404


def test_upstream_matches_an_independent_walk(client: TestClient, db: psycopg.Connection) -> None:
    start = db.execute(
        "SELECT downstream_id FROM river WHERE downstream_id IS NOT NULL GROUP BY downstream_id "
        "ORDER BY count(*) DESC, downstream_id LIMIT 1"
    ).fetchone()[0]
    expected = upstream_distances(db, start)
    assert len(expected) >= 2
    body = client.get(f"/api/rivers/{start}/upstream").json()
    got = {s["id"]: s["distance_km"] for s in body["segments"]}
    assert set(got) == set(expected)
    for segment, distance in expected.items():
        assert got[segment] == pytest.approx(distance, abs=0.002)
    watersheds = {w["id"] for w in body["watersheds"]}
    segment_watersheds = db.execute(
        "SELECT DISTINCT watershed_id FROM river WHERE id = ANY(%s) AND watershed_id IS NOT NULL", [list(expected)]
    ).fetchall()
    assert {row[0] for row in segment_watersheds} <= watersheds
    on_network = db.execute(
        "SELECT id FROM station WHERE river_id = ANY(%s) AND kind <> 'outfall'", [list(expected)]
    ).fetchall()
    assert {row[0] for row in on_network} <= {s["id"] for s in body["stations"]}
    distances = [s["distance_km"] for s in body["stations"] if s["distance_km"] is not None]
    assert distances == sorted(distances)


def test_downstream_follows_the_chain(client: TestClient, db: psycopg.Connection) -> None:
    downstream, length = river_graph(db)
    start = max(downstream, key=lambda s: _chain_length(downstream, s))
    chain, distances, travelled = [], [], 0.0
    current = downstream[start]
    while current is not None:
        chain.append(current)
        distances.append(travelled)
        travelled += length[current]
        current = downstream[current]
    body = client.get(f"/api/rivers/{start}/downstream").json()
    assert [s["id"] for s in body["segments"]] == chain
    assert [s["distance_km"] for s in body["segments"]] == pytest.approx(distances, abs=0.002)
    assert body["total_length_km"] == pytest.approx(sum(length[s] for s in chain), abs=0.01)


def _chain_length(downstream: dict[int, int | None], start: int) -> int:
    steps, current = 0, downstream[start]
    while current is not None and steps < 100:
        steps, current = steps + 1, downstream[current]
    return steps


def test_station_catchment(client: TestClient, db: psycopg.Connection) -> None:
    station_id, river_id = db.execute(
        "SELECT s.id, s.river_id FROM station s JOIN river r ON r.id = s.river_id "
        "WHERE EXISTS (SELECT 1 FROM river u WHERE u.downstream_id = r.id) ORDER BY s.id LIMIT 1"
    ).fetchone()
    body = client.get(f"/api/stations/{station_id}/catchment").json()
    assert body["station"]["id"] == station_id and body["segment_id"] == river_id
    segments = {s["id"] for s in body["segments"]}
    assert segments == {river_id, *upstream_distances(db, river_id)}
    assert body["area_km2"] > 0
    features = body["geojson"]["features"]
    assert {f["properties"]["id"] for f in features if f["properties"]["layer"] == "river"} == segments
    assert {f["properties"]["id"] for f in features if f["properties"]["layer"] == "watershed"} == {
        w["id"] for w in body["watersheds"]
    }
    assert station_id not in {s["id"] for s in body["stations"]}


def test_missing_segment_or_station(client: TestClient) -> None:
    for path in ("/api/rivers/999999/upstream", "/api/rivers/999999/downstream", "/api/stations/999999/catchment"):
        response = client.get(path)
        assert response.status_code == 404 and "999999" in response.json()["detail"]
    assert client.get("/api/rivers/abc/upstream").status_code == 400


def test_search_ranks_exact_before_prefix_before_substring(client: TestClient, db: psycopg.Connection) -> None:
    bay_id, bay_name = db.execute("SELECT id, name FROM bay ORDER BY length(name) DESC LIMIT 1").fetchone()
    results = client.get("/api/search", params={"q": bay_name}).json()["results"]
    assert (results[0]["layer"], results[0]["id"], results[0]["score"]) == ("bay", bay_id, 3.0)
    assert results[0]["bbox"] and len(results[0]["bbox"]) == 4
    prefix = client.get("/api/search", params={"q": bay_name[:2], "limit": 100}).json()["results"]
    scores = [r["score"] for r in prefix]
    assert scores == sorted(scores, reverse=True)
    assert all(
        bay_name[:2] in (r["name"] + (r["name_en"] or "") + (r["detail"] or "")) or r["layer"] == "chief"
        for r in prefix
        if r["score"] == 2.0
    )
    substring = client.get("/api/search", params={"q": bay_name[1:]}).json()["results"]
    assert any(r["layer"] == "bay" and r["id"] == bay_id and r["score"] == 1.0 for r in substring)


def test_search_english_names_chiefs_and_wildcards(client: TestClient, db: psycopg.Connection) -> None:
    name_en = db.execute("SELECT name_en FROM bay WHERE name_en IS NOT NULL ORDER BY id LIMIT 1").fetchone()[0]
    english = client.get("/api/search", params={"q": name_en.lower()}).json()["results"]
    assert english[0]["name_en"] == name_en and english[0]["score"] == 3.0
    chief_id, chief_name = db.execute("SELECT id, name FROM chief ORDER BY id LIMIT 1").fetchone()
    chiefs = client.get("/api/search", params={"q": chief_name}).json()["results"]
    assert any(r["layer"] == "chief" and r["id"] == chief_id for r in chiefs)
    assert client.get("/api/search", params={"q": "%"}).json()["results"] == []
    assert client.get("/api/search", params={"q": "_"}).json()["results"] == []
    limited = client.get("/api/search", params={"q": "溪", "limit": 3}).json()["results"]
    assert len(limited) == 3
    assert client.get("/api/search", params={"q": ""}).status_code == 400


def test_catchment_of_the_boundary_section_crosses_into_the_upstream_cities(
    client: TestClient, db: psycopg.Connection
) -> None:
    """The Zhangzhou→Xiamen section's catchment reaches up the Jiulong into Zhangzhou and Longyan,
    with the cross-boundary section between them among its stations."""
    station_id, river_id = db.execute(
        "SELECT id, river_id FROM station WHERE upstream_city = '350600' AND downstream_city = '350200'"
    ).fetchone()
    body = client.get(f"/api/stations/{station_id}/catchment").json()
    segments = {s["id"] for s in body["segments"]}
    assert segments == {river_id, *upstream_distances(db, river_id)}
    cities = {r[0] for r in db.execute("SELECT DISTINCT city FROM river WHERE id = ANY(%s)", [list(segments)])}
    assert cities == {"350600", "350800"}
    upper = db.execute("SELECT id FROM station WHERE upstream_city = '350800'").fetchone()[0]
    assert upper in {s["id"] for s in body["stations"]}
    # And from the bay: the Jiulong's mouth segment traced upstream finds the same segments.
    upstream = client.get(f"/api/rivers/{river_id}/upstream").json()
    assert {s["id"] for s in upstream["segments"]} == segments - {river_id}


def test_an_alert_in_the_jiulong_estuary_is_routed_up_into_zhangzhou_and_longyan(
    database_url: str, db: psycopg.Connection
) -> None:
    """A seawater station of the 九龙江口 bay is traced from the Jiulong's mouth: the upstream
    segments, their chiefs (the neighbours' city chiefs) and the candidate sources reach across the
    city boundary."""
    from gis_service.workflow.alerts.routing import route
    from layers.catalog import load_catalog
    from tests.conftest import run_async

    station_id = db.execute(
        "SELECT s.id FROM station AS s JOIN bay AS b ON ST_Intersects(b.geom, s.geom)"
        " WHERE b.name = '九龙江口' AND s.kind = 'seawater' ORDER BY s.id LIMIT 1"
    ).fetchone()[0]

    async def routed() -> dict:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await route(conn, load_catalog(), station_id)

    routing = run_async(routed())
    assert routing["traced"] == "bay"
    segments = [s["id"] for s in routing["segments"]]
    cities = dict(db.execute("SELECT id, city FROM river WHERE id = ANY(%s)", [segments]).fetchall())
    assert {"350600", "350800"} <= set(cities.values())
    neighbour_chiefs = {
        r[0] for r in db.execute("SELECT id FROM chief WHERE adcode IN ('350600', '350800') AND role = 'river'")
    }
    assert neighbour_chiefs & {c["id"] for c in routing["upstream_chiefs"]}
    sections = {r[0] for r in db.execute("SELECT id FROM station WHERE upstream_city IS NOT NULL")}
    assert sections <= {c["id"] for c in routing["candidates"]}
