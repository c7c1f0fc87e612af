"""Incremental generalization (``tiles/incremental.py``) against a full recomputation.

A scratch database holds a red-line *coverage* of 144 cells whose shared edges are long
wiggly lines of many vertices (so ``coverage_simplify`` has real work on every shared
edge), plus rivers. After each change — one red line shrunk (its neighbours' shared edges
now face a gap: their nodes change), one river moved, a red line deleted, a red line and a
river inserted — the service's regeneralization (``regenerate_if_dirty``, what the
scheduler's child process runs) rewrites only the features around it. Its stored rows are
then compared with a full recomputation of the same data made independently in memory
(``generalized_rows`` over every feature): the same features at every zoom, each within a
pixel (Hausdorff distance) of the full result; and the coverage checks of
``tests/test_generalization.py`` (no gap, no overlap beyond the snapping strips) hold for
the stored rows. The change notification names an extent around the change, not the layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql

from layers import db as layer_db
from layers.catalog import Layer, load_catalog
from tests.conftest import recreate_database, scratch_database_name, web_url
from tests.test_generalization import coverage_defects
from tiles.generalize import generalize_layer, generalized_rows, read_features
from tiles.incremental import generalize_changes
from tiles.maintenance import regenerate_if_dirty
from tiles.zooms import generalized_zooms, pixel_size

CATALOG = load_catalog()
REDLINE, RIVER = CATALOG.get("redline"), CATALOG.get("river")
WEST, SOUTH, SIZE, CELLS = 118.05, 24.50, 0.24, 12
"""The coverage: CELLS × CELLS cells over a SIZE° square."""


def wiggly_grid(rng: np.random.Generator) -> list[shapely.Polygon]:
    """Cells of a grid whose lines wander (sines plus noise, 400 vertices a line), noded and
    polygonized: neighbours share their edges vertex for vertex."""
    step = SIZE / CELLS
    t = np.linspace(0, SIZE, 400)
    lines = []
    for k in range(1, CELLS):
        for horizontal in (True, False):
            offset = k * step + 0.12 * step * np.sin(t / step * rng.uniform(1.5, 3) + rng.uniform(0, 6))
            offset = offset + rng.normal(0, 0.004 * step, t.size)
            x, y = (t, offset) if horizontal else (offset, t)
            lines.append(shapely.LineString(np.column_stack([WEST + x, SOUTH + y])))
    frame = shapely.box(WEST, SOUTH, WEST + SIZE, SOUTH + SIZE).exterior
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all([*lines, frame]))))
    return sorted(faces, key=lambda f: (round(f.centroid.y / step), f.centroid.x))


def river_lines(rng: np.random.Generator, count: int = 40) -> list[shapely.LineString]:
    lines = []
    for _ in range(count):
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.3, 120))
        start = rng.uniform([WEST, SOUTH], [WEST + SIZE, SOUTH + SIZE])
        xy = start + np.cumsum(np.column_stack([np.cos(heading), np.sin(heading)]) * 0.0003, axis=0)
        lines.append(shapely.LineString(xy))
    return lines


def _ewkt(geom: shapely.Geometry) -> str:
    multi = shapely.MultiPolygon([geom]) if geom.geom_type == "Polygon" else shapely.MultiLineString([geom])
    return f"SRID=4326;{multi.wkt}"


@pytest.fixture(scope="module")
def scratch_url() -> str:
    """A migrated scratch database with the coverage and the rivers, generalized in full."""
    url = recreate_database(scratch_database_name("incremental"))
    layer_db.upgrade(url)
    rng = np.random.default_rng(18)
    with psycopg.connect(url, autocommit=True) as conn:
        for i, cell in enumerate(wiggly_grid(rng)):
            conn.execute(
                "INSERT INTO redline (code, name, function_type, domain, is_sample, geom)"
                " VALUES (%s, %s, '水源涵养', '陆域', true, %s)",
                [f"T-{i:03d}", f"测试红线 {i}", _ewkt(cell)],
            )
        for i, line in enumerate(river_lines(rng)):
            conn.execute(
                "INSERT INTO river (name, segment, is_sample, geom) VALUES (%s, %s, true, %s)",
                [f"测试河流 {i}", f"段 {i}", _ewkt(line)],
            )
        for layer in (REDLINE, RIVER):
            with conn.transaction():
                generalize_layer(conn, layer)
    return url


@pytest.fixture
def conn(scratch_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(scratch_url, autocommit=True) as connection:
        yield connection


def stored_rows(conn: psycopg.Connection, layer: Layer) -> dict[int, dict[int, shapely.Geometry]]:
    rows = conn.execute(sql.SQL("SELECT id, z, ST_AsBinary(geom) FROM {}").format(sql.Identifier(f"{layer.table}_gen")))
    result: dict[int, dict[int, shapely.Geometry]] = {z: {} for z in generalized_zooms(layer)}
    for feature_id, z, wkb in rows:
        result[z][feature_id] = shapely.from_wkb(bytes(wkb))
    return result


def full_recomputation(conn: psycopg.Connection, layer: Layer) -> dict[int, dict[int, shapely.Geometry]]:
    """What a full generalization of the current data stores, computed in memory."""
    features = read_features(conn, layer)
    return {
        z: {int(features.ids[i]): g for i, g in zip(index, geometry, strict=True)}
        for z, index, geometry, _ in generalized_rows(layer, features)
    }


def assert_equals_full_recomputation(conn: psycopg.Connection, layer: Layer) -> None:
    stored, full = stored_rows(conn, layer), full_recomputation(conn, layer)
    originals = {
        int(i): shapely.make_valid(g, method="structure", keep_collapsed=False) if layer.is_polygon else g
        for i, g in zip(*_originals(conn, layer), strict=True)
    }
    for z in generalized_zooms(layer):
        assert set(stored[z]) == set(full[z]), (layer.id, z, set(stored[z]) ^ set(full[z]))
        far = {
            i: round(d / pixel_size(z), 2)
            for i in full[z]
            if (d := shapely.hausdorff_distance(stored[z][i], full[z][i], densify=0.25)) > pixel_size(z)
        }
        assert far == {}, f"{layer.id} z{z}: farther than a pixel from the full recomputation (px): {far}"
        if layer.coverage:
            overlap, thick, gaps = coverage_defects(layer, z, stored[z], originals)
            assert overlap <= 0 and thick == [] and gaps == [], (layer.id, z, overlap, thick, gaps)


def _originals(conn: psycopg.Connection, layer: Layer) -> tuple[list[int], list[shapely.Geometry]]:
    rows = conn.execute(
        sql.SQL("SELECT id, ST_AsBinary(geom_3857) FROM {}").format(sql.Identifier(layer.table))
    ).fetchall()
    return [r[0] for r in rows], [shapely.from_wkb(bytes(r[1])) for r in rows]


def regeneralize(conn: psycopg.Connection, url: str, layer: Layer, near: int) -> list[float]:
    """Run the service's regeneralization of ``layer`` (as the web role, like the scheduler's
    child; it must find work) and return the extent its change notification names; check the
    extent holds feature ``near`` (lon/lat)."""
    conn.execute("LISTEN ecomap_layer_changed")
    assert regenerate_if_dirty(web_url(url), layer)
    payloads = [json.loads(n.payload) for n in conn.notifies(timeout=2, stop_after=1)]
    assert conn.execute("SELECT count(*) FROM gen_dirty WHERE layer = %s", [layer.id]).fetchone()[0] == 0
    conn.execute("UNLISTEN ecomap_layer_changed")
    generalized = [p for p in payloads if p["layer"] == layer.id and p.get("gen_revision")]
    assert generalized and generalized[0]["maxzoom"] == 15, payloads
    bbox = generalized[0]["bbox"]
    feature = conn.execute(
        sql.SQL("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM {} WHERE id = %s").format(
            sql.Identifier(layer.table)
        ),
        [near],
    ).fetchone()
    if feature is not None:
        assert bbox[0] <= feature[0] and bbox[1] <= feature[1] and bbox[2] >= feature[2] and bbox[3] >= feature[3]
    return bbox


def _cell_id(conn: psycopg.Connection, code: str) -> int:
    return conn.execute("SELECT id FROM redline WHERE code = %s", [code]).fetchone()[0]


def test_the_full_generalization_is_a_coverage_to_start_with(conn: psycopg.Connection) -> None:
    """The comparisons below start from a clean state: every cell generalized, no gap."""
    assert conn.execute("SELECT count(*) FROM redline").fetchone()[0] == CELLS * CELLS
    assert_equals_full_recomputation(conn, REDLINE)


def test_an_edited_red_line_regeneralizes_its_neighbourhood_only(conn: psycopg.Connection, scratch_url: str) -> None:
    edited = _cell_id(conn, "T-065")  # an inner cell: eight neighbours share its edges or nodes
    conn.execute("UPDATE redline SET geom = ST_Multi(ST_Buffer(geom, -0.0006)) WHERE id = %s", [edited])
    with conn.transaction():
        changes = generalize_changes(conn, REDLINE)
        raise psycopg.Rollback()  # look at what it would do, then let the service do it
    assert not changes.full and changes.dirty == 1
    assert 1 < changes.rewritten < CELLS * CELLS / 4, changes  # the neighbours facing the new gap, not the layer
    bbox = regeneralize(conn, scratch_url, REDLINE, edited)
    assert bbox[2] - bbox[0] < SIZE / 2 and bbox[3] - bbox[1] < SIZE / 2, bbox  # tiles around the edit only
    assert_equals_full_recomputation(conn, REDLINE)


def test_an_edited_river_regeneralizes_that_river(conn: psycopg.Connection, scratch_url: str) -> None:
    river = conn.execute("SELECT min(id) FROM river").fetchone()[0]
    conn.execute("UPDATE river SET geom = ST_Translate(geom, 0.002, -0.001) WHERE id = %s", [river])
    with conn.transaction():
        changes = generalize_changes(conn, RIVER)
        raise psycopg.Rollback()
    assert (changes.rewritten, changes.full) == (1, False)
    regeneralize(conn, scratch_url, RIVER, river)
    assert_equals_full_recomputation(conn, RIVER)


def test_a_deleted_red_line_regeneralizes_its_former_neighbours(conn: psycopg.Connection, scratch_url: str) -> None:
    deleted = _cell_id(conn, "T-100")
    conn.execute("DELETE FROM redline WHERE id = %s", [deleted])
    listed = conn.execute("SELECT old_extent IS NOT NULL FROM gen_dirty WHERE layer = 'redline' AND id = %s", [deleted])
    assert listed.fetchone() == (True,)  # the trigger keeps where it was (migration 0022)
    with conn.transaction():
        changes = generalize_changes(conn, REDLINE)
        raise psycopg.Rollback()
    assert not changes.full and 0 < changes.rewritten < CELLS * CELLS / 4, changes
    regeneralize(conn, scratch_url, REDLINE, deleted)
    assert_equals_full_recomputation(conn, REDLINE)


def test_inserted_features_are_generalized_with_their_neighbours(conn: psycopg.Connection, scratch_url: str) -> None:
    corner = f"POINT({WEST + SIZE} {SOUTH})"  # outside the coverage, along two of its cells' edges
    conn.execute(
        "INSERT INTO redline (code, name, function_type, domain, is_sample, geom)"
        " VALUES ('T-NEW', '新增红线', '水源涵养', '陆域', true, ST_Multi(ST_Difference("
        " ST_Buffer(ST_GeomFromText(%s, 4326), 0.03), (SELECT ST_Union(geom) FROM redline))))",
        [corner],
    )
    inserted = _cell_id(conn, "T-NEW")
    regeneralize(conn, scratch_url, REDLINE, inserted)
    assert_equals_full_recomputation(conn, REDLINE)
    conn.execute(
        "INSERT INTO river (name, segment, is_sample, geom) VALUES ('新河', '段 N', true,"
        " ST_Multi(ST_GeomFromText('LINESTRING(118.1 24.6, 118.12 24.61, 118.13 24.63)', 4326)))"
    )
    regeneralize(conn, scratch_url, RIVER, conn.execute("SELECT max(id) FROM river").fetchone()[0])
    assert_equals_full_recomputation(conn, RIVER)
