"""The precomputed generalization checked against the original shapes, not against itself.

For every generalized layer and zoom, the stored ``<table>_gen`` geometry is compared with
the layer's own geometry (``geom_3857``) by an independent computation in Python (shapely
on EPSG:3857 coordinates; no PostGIS simplification), with bounds derived from the
documented algorithm of ``tiles/generalize.py``, never from its output:

- *Snapping*: the stored rows lie on the zoom's MVT grid (``grid_cell``), each vertex
  moved by at most half a cell's diagonal, ``SNAP = cell·√2/2``.
- *Feature by feature* (``shapely.simplify``, Douglas-Peucker preserving topology, from the
  original at every zoom): every original vertex lies within the tolerance ``t`` (the
  zoom's ``pixel_size``) of the simplified line, and the simplified line within ``t`` of the
  original. For lines that is the bound: ``t + SNAP``. Rings get ``2t + SNAP``: GEOS (≥ 3.12,
  as JTS) also removes a ring's start vertex when it lies within ``t`` of the segment joining
  its kept neighbours, so vertices next to it may end up ``t`` further off.
- *Coverages* (``shapely.coverage_simplify``, from the previous, finer zoom): GEOS simplifies
  a coverage with Visvalingam-Whyatt, whose tolerance "equates roughly to the maximum
  distance" a line moves (it bounds the area of each removed corner by ``t²``, not the
  distance). Each zoom's step is allowed what a feature-by-feature ring is (``2t``), and
  the steps add up: ``Σ_{k=z..15} 2·t_k + SNAP`` (less than ``4t + SNAP``).

Distances between polygons are Hausdorff distances of the *areas* (``A ⊆ B ⊕ r`` and
``B ⊆ A ⊕ r``), leaving out pieces smaller than one grid cell, which no tile can show; the
originals are taken as the area they denote (``make_valid``: a few demo polygons
self-intersect, and a zero-width spike has no area to keep). Lines use the Hausdorff
distance of the lines. Features edited since the generalization (``gen_dirty``) have no
rows and are skipped; the whole comparison reads one snapshot (``REPEATABLE READ``), so a
background regeneralization cannot change the data under it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from shapely import STRtree

from layers.catalog import Layer, load_catalog
from tiles.zooms import DETAIL_ZOOM, DROP_BELOW_ZOOM, generalized_zooms, grid_cell, pixel_size

CATALOG = load_catalog()
LAYERS = [layer for layer in CATALOG if generalized_zooms(layer)]
CASES = [(layer.id, z) for layer in LAYERS for z in generalized_zooms(layer)]
BUFFER_SEGMENTS = 16
"""Segments per quarter circle of the buffers; the radius is enlarged so the polygonal
buffer contains the true one (it is inscribed in its circle)."""


def snap_error(layer: Layer, z: int) -> float:
    return grid_cell(z, layer.tiles.extent) * math.sqrt(2) / 2


def allowed_deviation(layer: Layer, z: int) -> float:
    """How far (m) a generalized feature of zoom z may lie from its original (module docstring)."""
    if layer.coverage:
        simplification = sum(2 * pixel_size(k) for k in range(z, DETAIL_ZOOM))
    elif layer.is_polygon:
        simplification = 2 * pixel_size(z)
    else:
        simplification = pixel_size(z)
    return simplification + snap_error(layer, z)


@dataclass(frozen=True)
class LayerSnapshot:
    originals: dict[int, shapely.Geometry]
    groups: dict[int, str]
    dirty: set[int]
    generalized: dict[int, dict[int, shapely.Geometry]]
    """zoom -> feature id -> stored geometry"""


@pytest.fixture(scope="module")
def snapshot(database_url: str) -> dict[str, LayerSnapshot]:
    """Every generalized layer's originals and ``_gen`` rows, read in one snapshot."""
    result = {}
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            for layer in LAYERS:
                group = sql.Identifier(layer.coverage_by) if layer.coverage_by else sql.SQL("NULL")
                rows = conn.execute(
                    sql.SQL("SELECT id, ST_AsBinary(geom_3857), {}::text FROM {}").format(
                        group, sql.Identifier(layer.table)
                    )
                ).fetchall()
                originals = {r[0]: shapely.from_wkb(bytes(r[1])) for r in rows}
                if layer.is_polygon:
                    originals = {
                        i: shapely.make_valid(g, method="structure", keep_collapsed=False) for i, g in originals.items()
                    }
                dirty = {r[0] for r in conn.execute("SELECT id FROM gen_dirty WHERE layer = %s", [layer.id])}
                generalized: dict[int, dict[int, shapely.Geometry]] = {z: {} for z in generalized_zooms(layer)}
                for feature_id, z, wkb in conn.execute(
                    sql.SQL("SELECT id, z, ST_AsBinary(geom) FROM {}").format(sql.Identifier(f"{layer.table}_gen"))
                ):
                    generalized[z][feature_id] = shapely.from_wkb(bytes(wkb))
                result[layer.id] = LayerSnapshot(originals, {r[0]: r[2] or "" for r in rows}, dirty, generalized)
    return result


def _pieces(geom: shapely.Geometry) -> Iterator[shapely.Geometry]:
    yield from shapely.get_parts(geom)


def area_outside(a: shapely.Geometry, b: shapely.Geometry, distance: float, smallest: float) -> float:
    """Area of ``a`` farther than ``distance`` from ``b``, summed over pieces of at least ``smallest``."""
    radius = distance / math.cos(math.pi / (4 * BUFFER_SEGMENTS))
    rest = shapely.difference(a, shapely.buffer(b, radius, quad_segs=BUFFER_SEGMENTS))
    return sum(piece.area for piece in _pieces(rest) if piece.area >= smallest)


def line_deviation(a: shapely.Geometry, b: shapely.Geometry, step: float) -> float:
    """Directed Hausdorff distance from line ``a`` to line ``b``: the farthest of ``a``'s
    points (every ``step`` metres) from ``b``'s segments (an R-tree finds the nearest)."""
    coords = [shapely.get_coordinates(part) for part in _pieces(b)]
    segments = shapely.linestrings(np.concatenate([np.stack([c[:-1], c[1:]], axis=1) for c in coords]))
    points = shapely.points(shapely.get_coordinates(shapely.segmentize(a, step)))
    _, distances = STRtree(segments).query_nearest(points, return_distance=True, all_matches=False)
    return float(distances.max())


def test_every_layer_has_generalized_rows(snapshot: dict[str, LayerSnapshot]) -> None:
    """The comparisons below are not vacuous: each layer has rows at its finest and coarsest
    kept zooms, and from DROP_BELOW_ZOOM on one per feature."""
    for layer in LAYERS:
        data = snapshot[layer.id]
        assert len(data.originals) > 3, layer.id
        for z in range(DROP_BELOW_ZOOM, DETAIL_ZOOM):
            assert len(data.generalized[z]) == len(set(data.originals) - data.dirty), (layer.id, z)
        assert data.generalized[max(layer.minzoom, 6)], (layer.id, "nothing kept at the lowest zooms")


def test_the_distance_helpers_agree_with_shapely() -> None:
    """The two measures above give shapely's Hausdorff distance on shapes where it is exact."""
    square = shapely.box(0, 0, 100, 100)
    moved = shapely.box(0, 0, 107, 100)  # one edge 7 m further
    assert shapely.hausdorff_distance(square.boundary, moved.boundary) == pytest.approx(7)
    assert area_outside(moved, square, 6.9, 1e-6) > 0
    assert area_outside(moved, square, 7.01, 1e-6) == 0
    assert area_outside(square, moved, 0.01, 1e-6) == 0
    line = shapely.LineString([(0, 0), (50, 3), (100, 0)])
    straight = shapely.LineString([(0, 0), (100, 0)])
    expected = shapely.hausdorff_distance(line, straight, densify=0.01)
    assert line_deviation(line, straight, 0.5) == pytest.approx(expected)
    assert line_deviation(straight, line, 0.5) == pytest.approx(
        shapely.hausdorff_distance(straight, line, densify=0.01), abs=0.01
    )


@pytest.mark.parametrize(("layer_id", "z"), CASES)
def test_generalized_features_stay_within_tolerance_of_the_originals(
    snapshot: dict[str, LayerSnapshot], layer_id: str, z: int
) -> None:
    layer = CATALOG.get(layer_id)
    data = snapshot[layer_id]
    allowed = allowed_deviation(layer, z)
    cell = grid_cell(z, layer.tiles.extent)
    assert set(data.generalized[z]) <= set(data.originals), "generalized rows of features that no longer exist"
    too_far = []
    for feature_id, generalized in data.generalized[z].items():
        original = data.originals[feature_id]
        if layer.is_polygon:
            # Both directions: nothing of the original lost, nothing added, beyond `allowed`.
            lost = area_outside(original, generalized, allowed, cell * cell)
            added = area_outside(generalized, original, allowed, cell * cell)
            if lost or added:
                too_far.append((feature_id, f"{lost:.1f} m² lost, {added:.1f} m² added"))
        else:
            step = pixel_size(z) / 8
            deviation = max(line_deviation(original, generalized, step), line_deviation(generalized, original, step))
            if deviation > allowed:
                too_far.append((feature_id, f"{deviation / pixel_size(z):.2f} px"))
    assert too_far == [], f"{layer_id} z{z}: farther than {allowed / pixel_size(z):.2f} px from the original: {too_far}"


@pytest.mark.parametrize(("layer_id", "z"), CASES)
def test_only_sub_pixel_features_are_dropped(snapshot: dict[str, LayerSnapshot], layer_id: str, z: int) -> None:
    """From DROP_BELOW_ZOOM on every feature is kept; below it, a feature is dropped only when
    its simplified form is smaller than a pixel (area t² for polygons, length t for lines).

    The simplified form keeps a subset of the original's vertices (so its perimeter is no
    longer) and lies within ``r`` (``allowed_deviation``) of the original, so a dropped
    original has at most ``t² + perimeter·r + parts·π·r²`` of area (a polygon), or spans at
    most ``t + 2r`` (a line: it lies within ``r`` of a line shorter than ``t``).
    """
    layer = CATALOG.get(layer_id)
    data = snapshot[layer_id]
    dropped = set(data.originals) - data.dirty - set(data.generalized[z])
    if z >= DROP_BELOW_ZOOM:
        assert dropped == set(), f"{layer_id} z{z}: features dropped at a zoom that keeps all: {sorted(dropped)}"
        return
    t, r = pixel_size(z), allowed_deviation(layer, z)
    too_big = []
    for feature_id in sorted(dropped):
        original = data.originals[feature_id]
        if layer.is_polygon:
            parts = shapely.get_num_geometries(original)
            limit = t * t + original.length * r + parts * math.pi * r * r
            if original.area > limit:
                too_big.append((feature_id, f"{original.area / t**2:.1f} px² > {limit / t**2:.1f} px²"))
        else:
            x0, y0, x1, y1 = original.bounds
            span = math.hypot(x1 - x0, y1 - y0)
            if span > t + 2 * r:
                too_big.append((feature_id, f"spans {span / t:.1f} px"))
    assert too_big == [], f"{layer_id} z{z}: dropped features that are not sub-pixel: {too_big}"


COVERAGE_CASES = [(layer_id, z) for layer_id, z in CASES if CATALOG.get(layer_id).coverage]


@pytest.mark.parametrize(("layer_id", "z"), COVERAGE_CASES)
def test_coverages_stay_free_of_gaps_and_overlaps(snapshot: dict[str, LayerSnapshot], layer_id: str, z: int) -> None:
    """Within each coverage (``coverage_by`` group) generalized neighbours neither overlap nor
    leave gaps between them.

    ``coverage_simplify`` simplifies a shared edge once for both neighbours, and snapping
    moves a vertex the two share to the same grid point; what snapping can still do is move
    an edge that is not shared vertex for vertex by up to ``SNAP``. So: their areas add up to
    the area of their union but for strips of that width along their boundaries; no piece of
    an overlap, and no gap between two neighbours (a place within ``2·SNAP`` of both that the
    originals covered and neither covers now), is thicker than ``2·SNAP``.
    """
    layer = CATALOG.get(layer_id)
    data = snapshot[layer_id]
    for group in sorted(set(data.groups.values())):
        members = [i for i, g in data.groups.items() if g == group and i in data.generalized[z]]
        overlap, thick, gaps = coverage_defects(layer, z, {i: data.generalized[z][i] for i in members}, data.originals)
        assert overlap <= 0, (layer_id, z, group, overlap)
        assert thick == [], f"{layer_id} z{z} {group!r}: neighbours overlap by more than a snapping strip: {thick}"
        assert gaps == [], f"{layer_id} z{z} {group!r}: gaps between neighbours (px²): {gaps}"


def coverage_defects(
    layer: Layer, z: int, kept: dict[int, shapely.Geometry], originals: dict[int, shapely.Geometry]
) -> tuple[float, list, list]:
    """What ``test_coverages_stay_free_of_gaps_and_overlaps`` finds in one coverage's generalized
    rows ``kept`` (feature id -> geometry at zoom z): the overlap area beyond the snapping strips
    along the boundaries (> 0: too much), the pairs overlapping by more than a strip, and the gaps
    between neighbours (pairs with the gap's area in px²)."""
    t, snap, cell = pixel_size(z), snap_error(layer, z), grid_cell(z, layer.tiles.extent)
    members = sorted(kept)
    union = shapely.union_all(list(kept.values()))
    overlap = sum(g.area for g in kept.values()) - union.area
    boundary_length = sum(g.length for g in kept.values())
    pairs = [(i, j) for n, i in enumerate(members) for j in members[n + 1 :] if kept[i].intersects(kept[j])]
    thick, gaps = [], []
    for i, j in pairs:
        both = shapely.intersection(kept[i], kept[j])
        core = shapely.buffer(both, -1.01 * snap)
        if core.area >= cell * cell:
            thick.append((i, j, round(both.area / t**2, 2)))
    for i, j in [(i, j) for n, i in enumerate(members) for j in members[n + 1 :]]:
        if shapely.distance(kept[i], kept[j]) > 2 * snap:
            continue
        near_both = shapely.intersection(shapely.buffer(kept[i], 2 * snap), shapely.buffer(kept[j], 2 * snap))
        covered = shapely.union(originals[i], originals[j])  # not a gap where the data has one
        gap = shapely.difference(shapely.intersection(near_both, covered), shapely.union(kept[i], kept[j]))
        if shapely.buffer(gap, -1.01 * snap).area >= cell * cell:
            gaps.append((i, j, round(gap.area / t**2, 2)))
    return overlap - boundary_length * snap, thick, gaps
