"""River segments and bays on the map carry their sections' current class (tiles.status), and a
class change invalidates their cached tiles (migration 0022).

The expected class of a segment (a bay) is worked out here from ``station_status``: the worst
class among the water stations on the segment (the sea stations inside the bay), outfalls left out.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service.monitoring.status.service import refresh_status
from tests.conftest import run_async
from tests.test_access import make_client

TMS = morecantile.tms.get("WebMercatorQuad")
ORDER = ["I", "II", "III", "IV", "V", "劣V", "一类", "二类", "三类", "四类", "劣四类"]


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    async def refresh() -> None:  # the suite's database: every station's status now
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await refresh_status(conn)

    run_async(refresh())
    with make_client(database_url) as test_client:
        yield test_client


def worst(rows: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (class, colour) of the worst class among rows of (class, colour)."""
    return max(rows, key=lambda r: ORDER.index(r[0])) if rows else None


def expected_river(db: psycopg.Connection, segment_id: int) -> tuple[str, str] | None:
    return worst(
        db.execute(
            "SELECT ss.water_class, ss.colour FROM station AS s JOIN station_status AS ss ON ss.station_id = s.id"
            " WHERE s.river_id = %s AND s.kind <> 'outfall' AND ss.water_class IS NOT NULL",
            [segment_id],
        ).fetchall()
    )


def features(client: TestClient, layer: str, z: int, lon: float, lat: float) -> dict[int, dict]:
    tile = TMS.tile(lon, lat, z)
    response = client.get(f"/tiles/{layer}/{z}/{tile.x}/{tile.y}.pbf")
    assert response.status_code == 200, response.text
    decoded = mapbox_vector_tile.decode(response.content)
    return {f["id"]: f["properties"] for f in decoded.get(layer, {}).get("features", [])}


@pytest.fixture(scope="module")
def classed_segment(database_url: str, client: TestClient) -> dict:
    """A river segment with one classed station on it (which decides its class), and a point on it."""
    with psycopg.connect(database_url) as db:
        row = db.execute(
            "SELECT r.id, ST_X(p), ST_Y(p), min(s.id) FROM river AS r JOIN station AS s ON s.river_id = r.id"
            " JOIN station_status AS ss ON ss.station_id = s.id AND ss.water_class IS NOT NULL,"
            " LATERAL ST_LineInterpolatePoint(ST_GeometryN(r.geom, 1), 0.5) AS p"
            " WHERE s.kind <> 'outfall' GROUP BY r.id, p HAVING count(*) = 1 ORDER BY r.id LIMIT 1"
        ).fetchone()
    assert row, "the demo data should have a classed station on a river segment"
    return {"id": row[0], "lon": row[1], "lat": row[2], "station": row[3]}


@pytest.mark.parametrize("z", [10, 13, 16])
def test_river_tiles_carry_the_worst_class_of_their_sections(client, db, classed_segment, z) -> None:
    found = features(client, "river", z, classed_segment["lon"], classed_segment["lat"])
    assert classed_segment["id"] in found
    for segment_id, props in found.items():
        expected = expected_river(db, segment_id)
        if expected is None:
            assert "water_class" not in props and "status_colour" not in props
        else:
            assert (props["water_class"], props["status_colour"]) == expected
        assert "aqi" not in props


def test_bay_tiles_carry_the_worst_class_of_their_sea_stations(client, db) -> None:
    bays = db.execute("SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM bay").fetchall()
    classed = 0
    for bay_id, lon, lat in bays:
        expected = worst(
            db.execute(
                "SELECT ss.water_class, ss.colour FROM bay AS b JOIN station AS s ON ST_Intersects(s.geom, b.geom)"
                " JOIN station_status AS ss ON ss.station_id = s.id WHERE b.id = %s AND s.standard = 'sea'"
                " AND s.kind <> 'outfall' AND ss.water_class IS NOT NULL",
                [bay_id],
            ).fetchall()
        )
        props = features(client, "bay", 11, lon, lat)[bay_id]
        if expected is None:
            assert "water_class" not in props
        else:
            classed += 1
            assert (props["water_class"], props["status_colour"]) == expected
            assert props["water_class"] in ORDER[6:]  # a GB 3097 class
    assert classed, "some demo bays hold a classed sea station"


def test_a_class_change_invalidates_the_cached_river_tiles(client, database_url, classed_segment) -> None:
    sid, segment = classed_segment["station"], classed_segment["id"]

    def class_on_map() -> str | None:
        return features(client, "river", 13, classed_segment["lon"], classed_segment["lat"])[segment].get("water_class")

    with psycopg.connect(database_url, autocommit=True) as db:
        saved = db.execute(
            "SELECT water_class, colour, meets_target FROM station_status WHERE station_id = %s", [sid]
        ).fetchone()
        before = class_on_map()  # now cached
        new = "I" if before != "I" else "III"  # the segment's worst class becomes this one's

        revision = db.execute("SELECT revision FROM layer_state WHERE layer = 'river'").fetchone()[0]
        try:
            db.execute(
                "UPDATE station_status SET water_class = %s, colour = '#00FF00' WHERE station_id = %s", [new, sid]
            )
            bumped, box_covers = db.execute(
                "SELECT s.revision, ST_Covers(c.bbox, (SELECT ST_Envelope(geom) FROM river WHERE id = %s))"
                " FROM layer_state AS s JOIN layer_change AS c ON c.layer = s.layer AND c.revision = s.revision"
                " WHERE s.layer = 'river'",
                [segment],
            ).fetchone()
            assert bumped == revision + 1 and box_covers
            deadline = dt.datetime.now() + dt.timedelta(seconds=30)
            while class_on_map() != new and dt.datetime.now() < deadline:
                time.sleep(0.2)
            assert class_on_map() == new
        finally:
            db.execute(
                "UPDATE station_status SET water_class = %s, colour = %s, meets_target = %s WHERE station_id = %s",
                [*saved, sid],
            )
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while class_on_map() != before and dt.datetime.now() < deadline:
            time.sleep(0.2)
        assert class_on_map() == before


def test_the_legends_show_the_colours_the_tiles_carry(client) -> None:
    """The catalog's status legends name exactly the colours the status engine gives (no drift)."""
    from gis_service.monitoring.standards.tables import aqi_standards
    from gis_service.monitoring.status.assess import WATER_COLOURS

    surface = {k: WATER_COLOURS[k] for k in ORDER[:6]}
    sea = {k: WATER_COLOURS[k] for k in ORDER[6:]}
    aqi = {c.name: c.colour for std in aqi_standards() for c in std.categories}
    layers = {layer["id"]: layer for layer in client.get("/api/layers").json()["layers"]}
    assert [s["colors"] for s in layers["river"]["style"]["status"]] == [surface]
    assert [s["colors"] for s in layers["bay"]["style"]["status"]] == [sea]
    assert [s["colors"] for s in layers["station"]["style"]["status"]] == [surface, sea, aqi]
    style = {s["id"]: s for s in client.get("/styles/default.json").json()["layers"]}
    assert style["river-line"]["paint"]["line-color"][:2] == ["coalesce", ["get", "status_colour"]]
    assert style["bay-fill"]["paint"]["fill-color"][:2] == ["coalesce", ["get", "status_colour"]]
    assert style["station-circle"]["paint"]["circle-color"][:2] == ["coalesce", ["get", "status_colour"]]
    assert style["district-fill"]["paint"]["fill-color"] != ["coalesce", ["get", "status_colour"]]
