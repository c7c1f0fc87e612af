"""The production tile engine: caching and exact invalidation, filters, generalization, archives."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import mapbox_vector_tile
import morecantile
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service import create_app
from layers.catalog import load_catalog
from tests.conftest import generalized_demo_database, make_settings, run_async, scratch_database_name
from tiles.generalize import generalize_layer, generalized_zooms, grid_cell, pixel_size
from tiles.maintenance import GeneralizationScheduler
from tiles.sql import tile_properties

CATALOG = load_catalog()
TMS = morecantile.tms.get("WebMercatorQuad")


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def feature_tile(db: psycopg.Connection, layer: str, feature_id: int, z: int) -> morecantile.Tile:
    lon, lat = db.execute(
        f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM {layer} WHERE id = %s) s",
        [feature_id],
    ).fetchone()
    return TMS.tile(lon, lat, z)


def wait_for(predicate, timeout: float = 60.0, what: str = "the awaited condition") -> None:
    """Poll ``predicate`` until it holds; fail saying ``what`` never happened. The deadline is
    only there so that a broken behaviour fails instead of hanging: how fast is for bench/."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def _decoded_features(data: bytes) -> dict[str, list]:
    """A tile's features by layer, in id order (their order in the bytes may vary with the plan)."""
    return {
        name: sorted((f["id"], repr(f["geometry"]), sorted(f["properties"].items())) for f in layer["features"])
        for name, layer in decode(data).items()
    }


def _cached_client(url: str, cache_dir: Path):
    """The app over ``url`` with a disk tile cache, once its change listener is connected."""
    client = TestClient(create_app(make_settings(url, tiles={"cache_dir": cache_dir})))
    with client:
        wait_for(client.app.state.change_listener.connected.is_set, what="the change listener never connected")
        yield client


@pytest.fixture()
def cached_client(database_url: str, tmp_path: Path):
    """A caching app over the shared session database: only for tests that do not write."""
    yield from _cached_client(database_url, tmp_path / "tiles")


@pytest.fixture(scope="module")
def edits_url() -> str:
    """A private database for the tests that edit features (generalized like the session one):
    the shared session database is read by other tests and written by background
    regeneralization, so no test edits it."""
    return generalized_demo_database(scratch_database_name("tile_edits"))


@pytest.fixture()
def edits_db(edits_url: str):
    """An autocommit connection to the private editing database."""
    with psycopg.connect(edits_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def edits_client(edits_url: str):
    """The app over the private editing database."""
    with TestClient(create_app(make_settings(edits_url))) as client:
        yield client


@pytest.fixture()
def edits_cached_client(edits_url: str, tmp_path: Path):
    """A caching app over the private editing database."""
    yield from _cached_client(edits_url, tmp_path / "tiles")


def test_etag_and_304(cached_client: TestClient, db: psycopg.Connection) -> None:
    tile = feature_tile(db, "redline", 1, 12)
    url = f"/tiles/redline/12/{tile.x}/{tile.y}.pbf"
    first = cached_client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert first.headers["cache-control"] == "no-cache"
    again = cached_client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_gzip_once_and_never_twice(cached_client: TestClient, db: psycopg.Connection) -> None:
    tile = feature_tile(db, "district", 1, 9)
    url = f"/tiles/district/9/{tile.x}/{tile.y}.pbf"
    plain = cached_client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = cached_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    # httpx decodes gzip once: equal bytes prove the body was compressed exactly once
    assert zipped.content == plain.content
    assert decode(zipped.content)["district"]["features"]


def test_edit_invalidates_its_tiles_and_keeps_neighbours(
    edits_cached_client: TestClient, edits_db: psycopg.Connection
) -> None:
    cached_client, db = edits_cached_client, edits_db
    engine = cached_client.app.state.tile_engine
    station_id, old_name, lon, lat = db.execute(
        "SELECT id, name, ST_X(geom), ST_Y(geom) FROM station WHERE kind = 'seawater' ORDER BY id LIMIT 1"
    ).fetchone()
    here = TMS.tile(lon, lat, 14)
    far = TMS.tile(118.35, 24.85, 14)  # another corner of the city
    near_url = f"/tiles/station/14/{here.x}/{here.y}.pbf"
    far_url = f"/tiles/station/14/{far.x}/{far.y}.pbf"
    low = TMS.tile(lon, lat, 9)
    low_url = f"/tiles/station/9/{low.x}/{low.y}.pbf"
    for url in (near_url, far_url, low_url):
        cached_client.get(url)
    before = {url: cached_client.get(url).headers["etag"] for url in (near_url, far_url, low_url)}
    hits = engine.cache.hits
    new_name = f"edited {time.time()}"
    try:
        db.execute("UPDATE station SET name = %s WHERE id = %s", [new_name, station_id])

        def refreshed() -> bool:
            response = cached_client.get(near_url)
            names = {f["properties"]["name"] for f in decode(response.content)["station"]["features"]}
            return new_name in names

        wait_for(refreshed, what="the edited name never showed in its z14 tile")
        misses = engine.cache.misses
        cached_client.get(low_url)
        assert engine.cache.misses == misses + 1, "tiles at every zoom are invalidated"
        hits_before_far = engine.cache.hits
        assert cached_client.get(far_url).headers["etag"] == before[far_url]
        assert engine.cache.hits == hits_before_far + 1, "the unaffected tile is still served from the cache"
        assert engine.cache.hits > hits
    finally:
        db.execute("UPDATE station SET name = %s WHERE id = %s", [old_name, station_id])


def test_deleted_feature_disappears(edits_cached_client: TestClient, edits_db: psycopg.Connection) -> None:
    cached_client, db = edits_cached_client, edits_db
    cursor = db.execute("SELECT * FROM station ORDER BY id DESC LIMIT 1")
    columns = [d.name for d in cursor.description]
    row = cursor.fetchone()
    station_id = row[columns.index("id")]
    tile = feature_tile(db, "station", station_id, 15)
    url = f"/tiles/station/15/{tile.x}/{tile.y}.pbf"
    assert station_id in {f["id"] for f in decode(cached_client.get(url).content)["station"]["features"]}
    db.execute("DELETE FROM station WHERE id = %s", [station_id])
    try:

        def gone() -> bool:
            response = cached_client.get(url)
            return response.status_code == 204 or station_id not in {
                f["id"] for f in decode(response.content).get("station", {}).get("features", [])
            }

        wait_for(gone, what="the deleted station never left its z15 tile")
    finally:
        keep = [c for c in columns if c not in ("geom_3857",)]
        values = dict(zip(columns, row, strict=True))
        db.execute(
            f"INSERT INTO station ({', '.join(keep)}) VALUES ({', '.join(['%s'] * len(keep))})",
            [values[c] for c in keep],
        )


def test_concurrent_misses_render_once(database_url: str) -> None:
    import asyncio

    from gis_service.runtime import runtime

    settings = make_settings(database_url)

    async def scenario() -> tuple[int, set[str]]:
        async with runtime(settings, CATALOG, regeneralize=False) as running:
            await asyncio.wait_for(running.listener.connected.wait(), 10)
            engine = running.engine
            calls = 0
            original = engine._connect

            def counting():
                nonlocal calls
                calls += 1
                return original()

            engine._connect = counting
            layers = [CATALOG.get("redline"), CATALOG.get("river")]
            t = TMS.tile(118.1, 24.6, 11)
            from tiles.grid import tile_address

            results = await asyncio.gather(*(engine.tile(layers, tile_address(11, t.x, t.y)) for _ in range(20)))
            return calls, {r.etag for r in results}

    calls, etags = run_async(scenario())
    assert calls == 2, "20 concurrent requests for one composite tile → one query per layer"
    assert len(etags) == 1


def test_tile_queries_wait_their_turn(database_url: str) -> None:
    """At most tiles.max_renders tile queries run at once per worker; the others wait, and
    every tile still comes out complete."""
    import asyncio
    import contextlib

    from gis_service.runtime import runtime
    from gis_service.settings import TileSettings
    from tiles.grid import tile_address

    settings = make_settings(database_url, tiles=TileSettings(cache_enabled=False, max_renders=2))

    async def scenario() -> tuple[int, list[bytes], list[bytes]]:
        async with runtime(settings, CATALOG, regeneralize=False) as running:
            engine = running.engine
            running_now = peak = 0
            original = engine._connect

            @contextlib.asynccontextmanager
            async def tracked():
                nonlocal running_now, peak
                async with original() as conn:
                    running_now += 1
                    peak = max(peak, running_now)
                    try:
                        yield conn
                    finally:
                        running_now -= 1

            engine._connect = tracked
            layers = [CATALOG.get("redline"), CATALOG.get("river"), CATALOG.get("watershed")]
            addresses = [tile_address(11, t.x, t.y) for t in TMS.tiles(117.95, 24.45, 118.3, 24.75, zooms=[11])][:8]
            limited = await asyncio.gather(*(engine.tile(layers, a) for a in addresses))
            one_by_one = [await engine.tile(layers, a) for a in addresses]
            return peak, [t.data for t in limited], [t.data for t in one_by_one]

    # No background regeneralization (left over from earlier tests' edits) may change these
    # layers between the two renderings: hold the lock a recomputation takes.
    keys = [f"ecomap-generalize:{layer}" for layer in ("redline", "river", "watershed")]
    with psycopg.connect(database_url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext(k)) FROM unnest(%s::text[]) AS k", [keys])
        peak, limited, one_by_one = run_async(scenario())
    assert peak == 2, f"{peak} tile queries ran at once; the limit is 2"
    assert any(limited)
    assert [_decoded_features(d) for d in limited] == [_decoded_features(d) for d in one_by_one]


def test_concurrent_tiles_share_batch_statements(database_url: str, db: psycopg.Connection) -> None:
    """Concurrent misses of different full-detail tiles are answered by batch statements
    (far fewer statements than tiles), and every tile is exactly what it is when rendered
    alone and holds exactly the features PostGIS finds in the tile and its buffer."""
    import asyncio
    import contextlib

    from gis_service.runtime import runtime
    from gis_service.settings import TileSettings
    from tiles.grid import tile_address

    stations = db.execute("SELECT ST_X(geom), ST_Y(geom) FROM station").fetchall()
    station_tiles = sorted({TMS.tile(lon, lat, 14) for lon, lat in stations})[:40]
    red = feature_tile(db, "redline", 1, 16)
    red_tiles = [morecantile.Tile(red.x + dx, red.y + dy, 16) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    requests = [("station", t) for t in station_tiles] + [("redline", t) for t in red_tiles]
    assert len(station_tiles) >= 20, "the demo data should put stations in many z14 tiles"
    settings = make_settings(database_url, tiles=TileSettings(cache_enabled=False))

    async def scenario() -> tuple[int, list[bytes], list[bytes]]:
        async with runtime(settings, CATALOG, regeneralize=False) as running:
            engine = running.engine
            statements = 0
            original = engine._connect

            @contextlib.asynccontextmanager
            async def counted():
                nonlocal statements
                statements += 1
                async with original() as conn:
                    yield conn

            engine._connect = counted
            addresses = [(CATALOG.get(layer), tile_address(t.z, t.x, t.y)) for layer, t in requests]
            together = await asyncio.gather(*(engine.tile([layer], a) for layer, a in addresses))
            batched_statements = statements
            alone = [await engine.tile([layer], a) for layer, a in addresses]
            return batched_statements, [t.data for t in together], [t.data for t in alone]

    statements, together, alone = run_async(scenario())
    assert statements <= len(requests) // 4, f"{statements} statements for {len(requests)} concurrent tiles"
    assert [_decoded_features(d) for d in together] == [_decoded_features(d) for d in alone]
    margin = 64 / 4096
    for (layer, t), data in zip(requests, together, strict=True):
        expected = {
            row[0]
            for row in db.execute(
                f"SELECT id FROM {layer} WHERE ST_Intersects(geom_3857, ST_TileEnvelope(%s, %s, %s, margin => %s))",
                [t.z, t.x, t.y, margin],
            )
        }
        got = {f["id"] for f in decode(data).get(layer, {"features": []})["features"]}
        assert got == expected, f"{layer} tile {t}: missing {expected - got}, extra {got - expected}"
    assert any(together[: len(station_tiles)]) and any(together[len(station_tiles) :])


@pytest.mark.parametrize("failure", ["no connection", "statement fails"])
def test_a_failed_batch_reaches_every_waiting_request(database_url: str, failure: str) -> None:
    """When the database cannot answer a batch, every request waiting for it gets the error
    (none hangs), and the next requests are served again."""
    import asyncio
    import contextlib

    from gis_service.errors import DatabaseUnavailable
    from gis_service.runtime import runtime
    from gis_service.settings import TileSettings
    from tiles.grid import tile_address

    settings = make_settings(database_url, tiles=TileSettings(cache_enabled=False))
    station = CATALOG.get("station")
    addresses = [tile_address(14, t.x, t.y) for t in TMS.tiles(117.9, 24.4, 118.3, 24.7, zooms=[14])][:30]

    async def scenario() -> tuple[list[object], bytes]:
        async with runtime(settings, CATALOG, regeneralize=False) as running:
            engine = running.engine
            original = engine._connect

            @contextlib.asynccontextmanager
            async def broken():
                if failure == "no connection":
                    raise DatabaseUnavailable("the database is unreachable: test")
                async with original() as conn:
                    await conn.close()  # the statement then fails on a closed connection
                    yield conn

            engine._connect = broken
            results = await asyncio.wait_for(
                asyncio.gather(*(engine.tile([station], a) for a in addresses), return_exceptions=True), 20
            )
            engine._connect = original
            again = await asyncio.wait_for(engine.tile([station], addresses[0]), 20)
            return results, again.data

    results, again = run_async(scenario())
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == len(addresses), f"{len(addresses) - len(failed)} requests did not get the error"
    if failure == "no connection":
        assert all("unreachable" in str(r) for r in failed)
    else:
        assert all(isinstance(r, DatabaseUnavailable) and "closed" in str(r) for r in failed), failed[:2]
    assert isinstance(again, bytes)


@pytest.mark.parametrize(
    ("filter_text", "condition"),
    [
        ("zone = '核心区'", "zone = '核心区'"),
        ("zone IN ('核心区', '缓冲区') AND area_ha > 0", "zone IN ('核心区', '缓冲区') AND area_ha > 0"),
        ("name LIKE '%国家%'", "name LIKE '%%国家%%'"),
        ("NOT (zone = '核心区')", "NOT (zone = '核心区')"),
        ("established BETWEEN 1990 AND 2005", "established BETWEEN 1990 AND 2005"),
    ],
)
def test_filters_select_features(client: TestClient, db: psycopg.Connection, filter_text: str, condition: str) -> None:
    t = TMS.tile(118.1, 24.5, 9)
    url = f"/tiles/protected_area/9/{t.x}/{t.y}.pbf"
    everything = {f["id"] for f in decode(client.get(url).content)["protected_area"]["features"]}
    matching = {r[0] for r in db.execute(f"SELECT id FROM protected_area WHERE {condition}").fetchall()}
    response = client.get(url, params={"filter": filter_text})
    assert response.status_code in (200, 204), response.text
    kept = decode(response.content).get("protected_area", {}).get("features", []) if response.content else []
    assert {f["id"] for f in kept} == everything & matching


def test_properties_selection(client: TestClient) -> None:
    t = TMS.tile(118.1, 24.5, 9)
    response = client.get(f"/tiles/protected_area/9/{t.x}/{t.y}.pbf", params={"properties": "name,zone"})
    features = decode(response.content)["protected_area"]["features"]
    assert features and all(set(f["properties"]) <= {"name", "zone"} for f in features)
    bad = client.get(f"/tiles/protected_area/9/{t.x}/{t.y}.pbf", params={"properties": "name,password"})
    assert bad.status_code == 400
    assert "password" in bad.json()["detail"]


@pytest.mark.parametrize(
    "attack",
    [
        "name = 'x'; DROP TABLE redline; --",
        "name = 'x' OR 1=1) UNION SELECT * FROM pg_user --",
        "\"name; DROP TABLE redline\" = 'x'",
        "pg_sleep(5) = 1",
        "name = 'x'' OR ''1''=''1'",
        "geom_3857 IS NULL OR updated_at > '2020-01-01'",
    ],
)
def test_filter_injection_is_refused_or_harmless(client: TestClient, db: psycopg.Connection, attack: str) -> None:
    count = db.execute("SELECT count(*) FROM redline").fetchone()[0]
    t = TMS.tile(118.1, 24.6, 10)
    response = client.get(f"/tiles/redline/10/{t.x}/{t.y}.pbf", params={"filter": attack})
    assert response.status_code in (400, 204), response.text
    if response.status_code == 400:
        assert response.json()["detail"]
    if "pg_sleep" in attack:  # refused before any SQL runs: no function call reaches the database
        assert response.status_code == 400 and "pg_sleep" in response.json()["detail"], response.text
    assert db.execute("SELECT count(*) FROM redline").fetchone()[0] == count


def test_injection_through_layer_and_properties(client: TestClient) -> None:
    assert client.get("/tiles/redline;DROP TABLE redline/10/850/441.pbf").status_code == 404
    response = client.get("/tiles/redline/10/850/441.pbf", params={"properties": "name FROM redline; --"})
    assert response.status_code == 400


def test_generalized_low_zoom_is_smaller(client: TestClient, db: psycopg.Connection) -> None:
    """Low-zoom geometry is simplified: far fewer vertices than the originals."""
    t = TMS.tile(118.1, 24.6, 8)
    features = decode(client.get(f"/tiles/redline/8/{t.x}/{t.y}.pbf").content)["redline"]["features"]
    tile_vertices = sum(
        len(shapely.geometry.shape(f["geometry"]).exterior.coords)
        if f["geometry"]["type"] == "Polygon"
        else sum(len(p.exterior.coords) for p in shapely.geometry.shape(f["geometry"]).geoms)
        for f in features
    )
    source_vertices = db.execute(
        "SELECT sum(ST_NPoints(geom)) FROM redline WHERE id = ANY(%s)", [[f["id"] for f in features]]
    ).fetchone()[0]
    assert tile_vertices < source_vertices * 0.7


def assert_generalization_current(db: psycopg.Connection, layer_id: str) -> None:
    """The generalized rows of a layer in the shared session database are those computed when
    the session began: no test edits that database (edits go to ``edits_url``)."""
    dirty = db.execute("SELECT count(*) FROM gen_dirty WHERE layer = %s", [layer_id]).fetchone()[0]
    assert dirty == 0, (
        f"{dirty} {layer_id} features were edited in the shared session database; "
        "a test that edits must use a scratch database of its own (scratch_database_name)"
    )


@pytest.mark.parametrize("layer_id", [layer.id for layer in CATALOG if layer.coverage])
def test_generalized_neighbours_leave_no_gaps(db: psycopg.Connection, layer_id: str) -> None:
    """Within each coverage, the union of the generalized polygons covers what the originals
    covered (to within a pixel) and neighbours do not overlap (beyond sub-pixel strips)."""
    layer = CATALOG.get(layer_id)
    assert_generalization_current(db, layer_id)
    group = layer.coverage_by or "NULL"
    rows = db.execute(f"SELECT id, ST_AsBinary(geom_3857), {group}::text FROM {layer.table}").fetchall()
    originals = {r[0]: shapely.make_valid(shapely.from_wkb(bytes(r[1]))) for r in rows}
    groups = {r[0]: r[2] for r in rows}
    for z in (15, 12, 10, 8):
        assert z in generalized_zooms(layer)
        generalized = {
            r[0]: shapely.from_wkb(bytes(r[1]))
            for r in db.execute(f"SELECT id, ST_AsBinary(geom) FROM {layer.table}_gen WHERE z = %s", [z]).fetchall()
        }
        tolerance = pixel_size(z)
        for value in set(groups.values()):
            members = [i for i, g in groups.items() if g == value]
            kept = [generalized[i] for i in members if i in generalized]
            if z >= 12:
                assert len(kept) == len(members), f"no feature may be dropped at z{z}"
            source = shapely.union_all([originals[i] for i in members if i in generalized])
            uncovered = shapely.difference(source, shapely.union_all(kept))
            # what is left uncovered is thin: it vanishes when shrunk by the tolerance
            assert shapely.buffer(uncovered, -tolerance).area <= tolerance**2, (layer_id, value, z)
            # Neighbours overlap at most by strips thinner than half a pixel: the rows lie on
            # the zoom's tile grid, where a vertex that sat on a neighbour's edge (not one of
            # its vertices) moves by up to half a grid cell — as ST_AsMVTGeom moved it in tiles.
            overlaps = shapely.union_all(
                [shapely.intersection(a, b) for n, a in enumerate(kept) for b in kept[n + 1 :] if a.intersects(b)]
            )
            thick = shapely.buffer(overlaps, -tolerance / 4).area
            assert thick <= tolerance**2 / 100, (layer_id, value, z, overlaps.area, thick)


@pytest.mark.parametrize("layer_id", ["redline", "river"])
def test_generalized_rows_lie_on_their_zooms_tile_grid(db: psycopg.Connection, layer_id: str) -> None:
    """Generalized rows are stored valid and snapped to the MVT grid of their zoom (so tiles
    can scale them without ST_AsMVTGeom); rows left off the grid are only sub-cell ones."""
    layer = CATALOG.get(layer_id)
    assert_generalization_current(db, layer_id)
    rows = db.execute(f"SELECT z, ST_AsBinary(geom), grid_extent FROM {layer.table}_gen").fetchall()
    on_grid = [(z, shapely.from_wkb(bytes(wkb))) for z, wkb, extent in rows if extent == layer.tiles.extent]
    assert len(on_grid) >= 0.99 * len(rows) > 0
    for z, geom in on_grid:
        cells = shapely.get_coordinates(geom) / grid_cell(z, layer.tiles.extent)
        assert np.abs(cells - np.round(cells)).max() < 1e-6, (layer_id, z)
        assert shapely.is_valid(geom), (layer_id, z, shapely.is_valid_reason(geom))
    for z, wkb, extent in rows:
        if extent is None:
            assert shapely.area(shapely.from_wkb(bytes(wkb))) < grid_cell(z, layer.tiles.extent) ** 2 * 4


@pytest.mark.parametrize("layer_id", ["redline", "river", "watershed"])
def test_low_zoom_tile_geometry_equals_st_asmvtgeom(client: TestClient, db: psycopg.Connection, layer_id: str) -> None:
    """Every feature of a generalized tile has the geometry ST_AsMVTGeom makes of its
    generalized row — whether the tile scaled it (wholly inside) or clipped it (crossing)."""
    layer = CATALOG.get(layer_id)
    assert_generalization_current(db, layer_id)
    inside_total = 0
    for z in (8, 10, 12):
        for tile in TMS.tiles(117.9, 24.4, 118.4, 24.8, zooms=[z]):
            envelope = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
            expected = {
                row[0]: (shapely.from_wkb(bytes(row[1])), row[2])
                for row in db.execute(
                    f"SELECT id, ST_AsBinary(ST_AsMVTGeom(geom, {envelope}, 4096, 64, true)), geom @ {envelope}"
                    f" FROM {layer.table}_gen WHERE z = %(z)s"
                    f" AND geom && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096)",
                    {"z": z, "x": tile.x, "y": tile.y},
                )
                if row[1] is not None
            }
            response = client.get(f"/tiles/{layer_id}/{z}/{tile.x}/{tile.y}.pbf")
            assert response.status_code in (200, 204)
            features = decode(response.content).get(layer_id, {"features": []})["features"] if response.content else []
            got = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in features}
            assert set(got) == set(expected), (layer_id, z, tile)
            for feature_id, (want, inside) in expected.items():
                assert shapely.equals(got[feature_id], want), (layer_id, z, tile, feature_id)
                if layer.is_polygon:  # same ring orientation as ST_AsMVTGeom's (clockwise on screen)
                    assert [shapely.is_ccw(r) for r in _rings(got[feature_id])] == [
                        shapely.is_ccw(r) for r in _rings(want)
                    ], (layer_id, z, tile, feature_id)
                inside_total += inside
    assert inside_total > 10, "tiles should hold features wholly inside them (the scaled path)"


def _rings(geom) -> list:
    """Exterior and interior rings of a (multi)polygon, in order."""
    return [ring for part in getattr(geom, "geoms", [geom]) for ring in [part.exterior, *part.interiors]]


def test_pmtiles_export_is_readable(database_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from pmtiles.reader import MmapSource, Reader
    from pmtiles.tile import Compression

    out = tmp_path / "xiamen.pmtiles"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gis_service.cli",
            "tiles",
            "export",
            str(out),
            "--layers",
            "district,redline",
            "--minzoom",
            "8",
            "--maxzoom",
            "10",
        ],
        env={**__import__("os").environ, "ECOMAP_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with out.open("rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert (header["min_zoom"], header["max_zoom"]) == (8, 10)
        assert header["tile_compression"] == Compression.GZIP
        layer_ids = [v["id"] for v in reader.metadata()["vector_layers"]]
        assert layer_ids == ["district", "redline", "district_label", "redline_label"]
        t = TMS.tile(118.1, 24.6, 9)
        import gzip

        tile = decode(gzip.decompress(reader.get(9, t.x, t.y)))
        assert set(tile) == {"district", "district_label", "redline"}  # red-line labels from z12


def test_tiles_cli_rejects_bad_input(database_url: str) -> None:
    import subprocess
    import sys

    env = {**__import__("os").environ, "ECOMAP_DATABASE_URL": database_url}
    for args, message in [
        (["tiles", "export", "out.zip"], "use a .pmtiles or .mbtiles"),
        (["tiles", "export", "out.pmtiles", "--layers", "nope"], "unknown layer 'nope'"),
        (["tiles", "export", "out.pmtiles", "--bbox", "1,2,3"], "--bbox must be"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "gis_service.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0
        assert message in result.stderr


def test_service_serves_a_pmtiles_archive(database_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ECOMAP_DATABASE_URL": database_url}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gis_service.cli",
            "tiles",
            "export",
            str(tmp_path / "offline.pmtiles"),
            "--layers",
            "district",
            "--minzoom",
            "8",
            "--maxzoom",
            "9",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    settings = make_settings(database_url, tiles={"archive_dir": tmp_path})
    with TestClient(create_app(settings)) as client:
        meta = client.get("/archives/offline.json").json()
        assert meta["tiles"][0].endswith("/archives/offline/{z}/{x}/{y}.pbf")
        t = TMS.tile(118.1, 24.6, 9)
        archived = client.get(f"/archives/offline/9/{t.x}/{t.y}.pbf")
        live = client.get(f"/tiles/district/9/{t.x}/{t.y}.pbf")
        assert archived.status_code == 200
        assert decode(archived.content) == decode(live.content)
        assert client.get("/archives/offline/12/0/0.pbf").status_code == 204
        missing = client.get("/archives/nope.json")
        assert missing.status_code == 404
        assert "offline" in missing.json()["detail"]
        # an archive holds whole layers: a partner key with a shared area gets the live tiles only
        whole, scoped = (_partner_key(database_url, area) for area in (None, "350206"))
        for path in ("/archives/offline.json", f"/archives/offline/9/{t.x}/{t.y}.pbf"):
            assert client.get(path, headers=whole).status_code == 200
            refused = client.get(path, headers=scoped)
            assert refused.status_code == 403 and "/tiles/district/" in refused.json()["detail"]
        assert client.get(f"/tiles/district/9/{t.x}/{t.y}.pbf", headers=scoped).status_code == 200


def _partner_key(database_url: str, area: str | None) -> dict[str, str]:
    """The X-API-Key header of a new partner key reading the district layer (inside ``area``: adcodes)."""
    from gis_service.access.keys import create_key, parse_area

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            shared = parse_area(area) if area else None
            name = f"archive-{uuid.uuid4().hex[:8]}"
            _, secret = await create_key(
                conn, name=name, role="partner", created_by="test-suite", layers=["district"], area=shared
            )
            return secret

    return {"X-API-Key": run_async(create())}


def test_tiles_as_of_a_revision(edits_client: TestClient, edits_db: psycopg.Connection) -> None:
    """?revision= and ?asof= show a layer as it was; the current tile shows the edit."""
    client, db = edits_client, edits_db
    before = db.execute("SELECT max(number) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
    feature_id = db.execute("SELECT min(id) FROM redline").fetchone()[0]
    tile = feature_tile(db, "redline", feature_id, 13)
    url = f"/tiles/redline/13/{tile.x}/{tile.y}.pbf"
    envelope = "ST_TileEnvelope(13, %s, %s, margin => 64.0 / 4096)"

    def ids(response) -> set[int]:
        return {f["id"] for f in decode(response.content)["redline"]["features"]} if response.content else set()

    try:
        valid_from = db.execute("SELECT valid_from FROM redline WHERE id = %s", [feature_id]).fetchone()[0]
        db.execute(
            "UPDATE redline SET geom = ST_Translate(geom, 0.3, 0), valid_from = '2031-01-01' WHERE id = %s",
            [feature_id],
        )
        current = {
            r[0]
            for r in db.execute(
                f"SELECT id FROM redline WHERE ST_Intersects(geom_3857, {envelope})", [tile.x, tile.y]
            ).fetchall()
        }
        historic = {
            r[0]
            for r in db.execute(
                "SELECT id FROM redline_history WHERE revision_from <= %s AND (revision_to IS NULL OR revision_to > %s)"
                f" AND ST_Intersects(geom_3857, {envelope})",
                [before, before, tile.x, tile.y],
            ).fetchall()
        }
        assert feature_id in historic and feature_id not in current
        assert ids(client.get(url)) == current
        assert ids(client.get(url, params={"revision": before})) == historic
        created = db.execute(
            "SELECT created_at FROM layer_revision WHERE layer = 'redline' AND number = %s", [before]
        ).fetchone()[0]
        # asof follows validity: the moved red line takes effect on 2031-01-01
        assert ids(client.get(url, params={"asof": created.isoformat()})) == historic
        assert ids(client.get(url, params={"asof": "2030-12-31"})) == historic
        assert ids(client.get(url, params={"asof": "2031-01-01"})) == current
        refused = client.get("/tiles/station/13/0/0.pbf", params={"revision": 1})
        assert refused.status_code == 400
        assert "keeps no revision history" in refused.json()["detail"]
        both = client.get(url, params={"revision": 1, "asof": "2025-01-01"})
        assert both.status_code == 400
    finally:
        db.execute(
            "UPDATE redline SET geom = ST_Translate(geom, -0.3, 0), valid_from = %s WHERE id = %s",
            [valid_from, feature_id],
        )


def test_edited_features_are_regeneralized_in_the_background(
    edits_cached_client: TestClient, edits_db: psycopg.Connection
) -> None:
    """An edit marks the feature dirty (simplified on the fly); the service recomputes the
    layer's generalization shortly after, in a child process, and clears the mark."""
    cached_client, db = edits_cached_client, edits_db
    feature_id = db.execute("SELECT max(id) FROM redline").fetchone()[0]
    generalized = "SELECT count(*) FROM redline_gen WHERE id = %s"
    dirty = "SELECT count(*) FROM gen_dirty WHERE layer = 'redline' AND id = %s"
    assert db.execute(generalized, [feature_id]).fetchone()[0] > 0
    t = feature_tile(db, "redline", feature_id, 10)
    url = f"/tiles/redline/10/{t.x}/{t.y}.pbf"
    try:
        with db.transaction():  # seen before the commit, so before any regeneralization can run
            db.execute("UPDATE redline SET geom = ST_Translate(geom, 0.001, 0) WHERE id = %s", [feature_id])
            assert db.execute(dirty, [feature_id]).fetchone()[0] == 1
            assert db.execute(generalized, [feature_id]).fetchone()[0] == 0  # stale rows went at once
        on_the_fly = decode(cached_client.get(url).content)
        assert feature_id in {f["id"] for f in on_the_fly["redline"]["features"]}
        wait_for(
            lambda: db.execute(dirty, [feature_id]).fetchone()[0] == 0,
            what="the service never regeneralized the edited red line (still in gen_dirty)",
        )
        assert db.execute(generalized, [feature_id]).fetchone()[0] > 0
    finally:
        db.execute("UPDATE redline SET geom = ST_Translate(geom, -0.001, 0) WHERE id = %s", [feature_id])


def test_closing_the_scheduler_ends_a_running_regeneralization(database_url: str, tmp_path: Path) -> None:
    """A stopping service does not wait minutes for a large layer's regeneralization: the
    child is ended (its transaction rolls back and the features stay dirty, still correct
    in tiles, for the next run)."""
    started = tmp_path / "started"
    child = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(600)"

    async def scenario() -> list[int | None]:
        scheduler = GeneralizationScheduler(
            database_url, CATALOG, delay_s=0.0, command=lambda layer_id: [sys.executable, "-c", child]
        )
        scheduler.schedule("redline")
        deadline = time.monotonic() + 60
        while not (started.exists() and scheduler._children):
            assert time.monotonic() < deadline, "the regeneralization child never started"
            await asyncio.sleep(0.05)
        children = list(scheduler._children)
        try:
            # the child sleeps 10 minutes: a close() that waited for it would fail here
            await asyncio.wait_for(scheduler.close(), 60)
        except TimeoutError:
            raise AssertionError("close() waited for the running child instead of ending it") from None
        finally:
            for process in children:
                if process.returncode is None:
                    process.kill()
        return [process.returncode for process in children]

    returncodes = run_async(scenario())
    assert returncodes == [-signal.SIGTERM], f"the child was not terminated by close(): {returncodes}"


def test_attribute_edits_keep_the_generalization(edits_db: psycopg.Connection) -> None:
    """Only a changed geometry makes a feature's generalized geometry stale."""
    db = edits_db
    feature_id, name = db.execute("SELECT id, name FROM river ORDER BY id LIMIT 1").fetchone()
    rows = "SELECT count(*) FROM river_gen WHERE id = %s"
    dirty = "SELECT count(*) FROM gen_dirty WHERE layer = 'river' AND id = %s"
    before = db.execute(rows, [feature_id]).fetchone()[0]
    assert before > 0
    try:
        db.execute("UPDATE river SET name = name || '（改）' WHERE id = %s", [feature_id])
        assert db.execute(rows, [feature_id]).fetchone()[0] == before
        assert db.execute(dirty, [feature_id]).fetchone()[0] == 0
        db.execute("UPDATE river SET geom = ST_Translate(geom, 0.0001, 0) WHERE id = %s", [feature_id])
        assert db.execute(rows, [feature_id]).fetchone()[0] == 0
        assert db.execute(dirty, [feature_id]).fetchone()[0] == 1
    finally:
        db.execute(
            "UPDATE river SET name = %s, geom = ST_Translate(geom, -0.0001, 0) WHERE id = %s", [name, feature_id]
        )


@pytest.mark.parametrize("z", [9, 10, 12, 15])
def test_generalized_tiles_carry_the_zooms_properties(client: TestClient, db: psycopg.Connection, z: int) -> None:
    """Low-zoom tiles take their properties from the generalized rows: exactly the
    properties whose tile_minzoom is reached, with the layer table's values."""
    layer = CATALOG.get("redline")
    names = tile_properties(layer, z)
    columns = ", ".join(f"{name}::text" if layer.get_property(name).type == "date" else name for name in names)
    rows = {row[0]: row[1:] for row in db.execute(f"SELECT id, {columns} FROM redline").fetchall()}
    feature_id = min(rows)
    t = feature_tile(db, "redline", feature_id, z)
    features = decode(client.get(f"/tiles/redline/{z}/{t.x}/{t.y}.pbf").content)["redline"]["features"]
    assert feature_id in {f["id"] for f in features}
    for feature in features:
        expected = {n: v for n, v in zip(names, rows[feature["id"]], strict=True) if v is not None}
        actual = feature["properties"]
        assert set(actual) == set(expected), (z, feature["id"])
        for name, value in expected.items():
            expected_value = pytest.approx(float(value)) if isinstance(value, Decimal) else value
            assert actual[name] == expected_value, (z, feature["id"], name)


def test_attribute_edit_shows_in_low_zoom_tiles_at_once(
    edits_cached_client: TestClient, edits_db: psycopg.Connection, edits_url: str
) -> None:
    """An attribute edit clears the stored low-zoom properties of the feature: its tiles
    show the new value at once (read from the layer table), and again after the layer is
    generalized anew (stored again)."""
    cached_client, db, database_url = edits_cached_client, edits_db, edits_url
    feature_id, old = db.execute("SELECT id, function_type FROM redline ORDER BY id LIMIT 1").fetchone()
    new = next(v for v in CATALOG.get("redline").get_property("function_type").values if v != old)
    t = feature_tile(db, "redline", feature_id, 9)
    url = f"/tiles/redline/9/{t.x}/{t.y}.pbf"

    def shown() -> str:
        features = decode(cached_client.get(url).content)["redline"]["features"]
        return next(f["properties"]["function_type"] for f in features if f["id"] == feature_id)

    assert shown() == old
    stored = "SELECT count(*) FROM redline_gen WHERE id = %s AND props IS NOT NULL"
    try:
        with db.transaction():  # seen before the commit, so before any regeneralization can run
            db.execute("UPDATE redline SET function_type = %s WHERE id = %s", [new, feature_id])
            assert db.execute(stored, [feature_id]).fetchone()[0] == 0
        wait_for(lambda: shown() == new, what="the edited function_type never showed in the z9 tile")
        with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
            generalize_layer(conn, CATALOG.get("redline"))
        assert db.execute(stored, [feature_id]).fetchone()[0] > 0
        stored_value = "SELECT props->>'function_type' FROM redline_gen WHERE id = %s AND z = 9"
        assert db.execute(stored_value, [feature_id]).fetchone() == (new,), "the z9 row stores the new value"
        wait_for(lambda: shown() == new, what="the z9 tile lost the edit once the layer was generalized anew")
    finally:
        db.execute("UPDATE redline SET function_type = %s WHERE id = %s", [old, feature_id])


def test_composite_tiles_as_of_resolve_each_layers_revision(
    edits_client: TestClient, edits_db: psycopg.Connection
) -> None:
    """Revisions are numbered per layer: ``asof`` on a composite tile selects, in each layer,
    the revision current then (not the first layer's number applied to all), and a revision
    number beyond a layer's latest is a 404 naming the valid range."""
    client, db = edits_client, edits_db
    feature_id = db.execute("SELECT min(id) FROM redline").fetchone()[0]
    tile = feature_tile(db, "redline", feature_id, 12)
    url = f"/tiles/protected_area,redline/12/{tile.x}/{tile.y}.pbf"
    envelope = "ST_TileEnvelope(12, %s, %s, margin => 64.0 / 4096)"

    def ids(response, layer: str) -> set[int]:
        assert response.status_code in (200, 204), response.text
        layers = decode(response.content) if response.content else {}
        return {f["id"] for f in layers.get(layer, {"features": []})["features"]}

    try:
        db.execute("UPDATE redline SET geom = ST_Translate(geom, 0.3, 0) WHERE id = %s", [feature_id])
        moved_at = db.execute("SELECT max(created_at) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
        numbers = dict(db.execute("SELECT layer, max(number) FROM layer_revision GROUP BY layer").fetchall())
        assert numbers["protected_area"] < numbers["redline"], "the layers' revision numbers differ"
        expected = {
            layer: {
                r[0]
                for r in db.execute(
                    f"SELECT id FROM {layer} WHERE ST_Intersects(geom_3857, {envelope})", [tile.x, tile.y]
                ).fetchall()
            }
            for layer in ("protected_area", "redline")
        }
        assert feature_id not in expected["redline"]
        as_of_now = client.get(url, params={"asof": moved_at.isoformat()})
        assert ids(as_of_now, "redline") == expected["redline"]
        assert ids(as_of_now, "protected_area") == expected["protected_area"]
        missing = client.get(url, params={"revision": numbers["redline"]})  # protected_area has no such revision
        assert missing.status_code == 404, missing.text
        assert "protected_area" in missing.json()["detail"] and "does not exist" in missing.json()["detail"]
    finally:
        db.execute("UPDATE redline SET geom = ST_Translate(geom, -0.3, 0) WHERE id = %s", [feature_id])
