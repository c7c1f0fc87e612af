"""Precomputed generalization of tile geometry for low zooms.

For every zoom below ``DETAIL_ZOOM`` the geometry of polygon and line layers is
simplified to the zoom's pixel size and stored in ``<table>_gen``; below
``DROP_BELOW_ZOOM`` features smaller than a pixel are dropped. Layers marked ``coverage`` in the catalog (red lines,
protected-area zones, watersheds, districts) are simplified as a *coverage* with
shapely's ``coverage_simplify``: shared edges are simplified once, identically for
both neighbours, so no gap or sliver opens between them. Each zoom is simplified from
the previous, finer one, which keeps the coverage valid and the work small.

The stored geometry of zoom z is snapped to the zoom's tile grid (the layer's MVT extent
per tile: the grid every tile of that zoom shares), made valid there and oriented as MVT
wants it (exterior rings clockwise on screen), so a tile can take a feature lying wholly
inside it by scaling alone (``tiles.sql``); ``grid_extent`` records the extent used.

Run after a load (``ecomap tiles generalize``). Edited, inserted and deleted features are
marked in ``gen_dirty`` by a trigger (and simplified on the fly in tiles); the service and
the import then re-generalize only the features around them (``tiles.incremental``, built
on the pieces below: ``read_features``, ``generalized_rows``, ``copy_rows``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import psycopg
import shapely
from psycopg import sql
from shapely import STRtree

from layers.catalog import Catalog, Layer
from tiles.properties import properties_object, tile_properties
from tiles.zooms import DETAIL_ZOOM, DROP_BELOW_ZOOM, generalized_zooms, grid_cell, pixel_size

logger = logging.getLogger(__name__)


def has_overlaps(geoms: np.ndarray, tolerance_m2: float) -> bool:
    """Whether two polygons overlap by more than a sliver (then they are no coverage)."""
    left, right = STRtree(geoms).query(geoms, predicate="overlaps")
    pairs = left < right
    if not pairs.any():
        return False
    areas = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    return bool((areas > tolerance_m2).any())


def node_coverage(geoms: np.ndarray) -> np.ndarray:
    """Make non-overlapping polygons edge-matched (a valid coverage).

    Polygons drawn independently rarely share vertices along common edges. The
    boundaries are noded together and polygonized; each face goes back to one polygon
    containing it (the first, for the slivers where near-coincident edges overlap), so
    neighbours end up with identical shared edges.
    """
    if len(geoms) == 0 or shapely.coverage_is_valid(geoms):
        return geoms
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(shapely.boundary(geoms)))))
    points = shapely.point_on_surface(faces)
    face_index, owner = STRtree(geoms).query(points, predicate="within")
    order = np.lexsort((owner, face_index))
    face_index, owner = face_index[order], owner[order]
    first = np.unique(face_index, return_index=True)[1]
    face_index, owner = face_index[first], owner[first]
    result = geoms.copy()
    for i in range(len(geoms)):
        mine = faces[face_index[owner == i]]
        if len(mine):
            result[i] = shapely.union_all(mine)
    return result


def coverage_groups(layer: Layer, groups: np.ndarray, geoms: np.ndarray) -> list[np.ndarray]:
    """Index sets simplified as one coverage each (e.g. per watershed level); overlapping
    data cannot be, and is simplified feature by feature instead."""
    if not layer.coverage:
        return []
    result = []
    for value in dict.fromkeys(groups.tolist()):
        members = np.flatnonzero(groups == value)
        if has_overlaps(geoms[members], pixel_size(DETAIL_ZOOM - 1) ** 2):
            logger.warning("%s: features overlap (group %r), simplified one by one; gaps may show", layer.id, value)
            continue
        result.append(members)
    return result


def snap_to_tile_grid(geoms: np.ndarray, z: int, extent: int, polygons: bool) -> np.ndarray:
    """Snap geometry to zoom z's tile grid as ST_AsMVTGeom would, keeping it valid.

    The grid starts at the world's edge, a whole number of cells from the origin, so
    snapping to multiples of the cell size lands on every tile's grid. Vertices are
    snapped one by one (neighbours' shared vertices stay shared: no gap or overlap opens)
    and only polygons made invalid by it are repaired. Polygons get clockwise exterior
    rings (counter-clockwise once y points down, as in tiles)."""
    snapped = shapely.set_precision(geoms, grid_cell(z, extent), mode="pointwise")
    if not polygons:
        return snapped
    invalid = ~shapely.is_valid(snapped)
    snapped[invalid] = shapely.make_valid(snapped[invalid], method="structure", keep_collapsed=False)
    return shapely.orient_polygons(snapped, exterior_cw=True)


def simplify_levels(
    layer: Layer, geoms: np.ndarray, groups: np.ndarray | None = None
) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(z, keep_mask, simplified)`` for each generalized zoom, finest first."""
    geoms = shapely.make_valid(geoms, method="structure", keep_collapsed=False) if layer.is_polygon else geoms
    coverages = coverage_groups(layer, groups if groups is not None else np.zeros(len(geoms)), geoms)
    current = geoms.copy()
    for members in coverages:
        current[members] = node_coverage(geoms[members])
    in_coverage = np.zeros(len(geoms), dtype=bool)
    for members in coverages:
        in_coverage[members] = True
    for z in generalized_zooms(layer):
        tolerance = pixel_size(z)
        simplified = shapely.simplify(geoms, tolerance, preserve_topology=True)
        for members in coverages:
            current[members] = shapely.coverage_simplify(current[members], tolerance)
        simplified[in_coverage] = current[in_coverage]
        keep = ~shapely.is_empty(simplified)
        if z < DROP_BELOW_ZOOM:
            size = shapely.area(simplified) if layer.is_polygon else shapely.length(simplified)
            keep &= size >= (tolerance * tolerance if layer.is_polygon else tolerance)
        yield z, keep, simplified


@dataclass(frozen=True)
class Features:
    """Features of a layer as the generalizer reads them (ordered by id)."""

    ids: np.ndarray
    geoms: np.ndarray
    groups: np.ndarray
    """The ``coverage_by`` value of each feature as text ('' without one)."""
    props: dict[tuple[str, ...], np.ndarray]
    """The stored tile properties (jsonb text) of each distinct per-zoom property set."""


def lock_for_generalization(conn: psycopg.Connection, layer: Layer) -> None:
    """Make writers to the layer wait (SHARE lock) until the caller's transaction ends, so the
    generalized rows written in it match the data they were computed from."""
    # Through the owner's function (migration 0013): the web role may not LOCK layer tables itself.
    if conn.execute("SELECT to_regprocedure('ecomap_lock_for_generalization(text)')").fetchone()[0]:
        conn.execute("SELECT ecomap_lock_for_generalization(%s)", [layer.table])
    else:  # a database migrated only up to 0010
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(layer.table)))


def zoom_property_sets(layer: Layer) -> dict[int, tuple[str, ...]]:
    """The properties tiles carry at each generalized zoom (stored with the geometry)."""
    return {z: tuple(tile_properties(layer, z)) for z in generalized_zooms(layer)}


def read_features(
    conn: psycopg.Connection, layer: Layer, condition: sql.Composable = sql.SQL("true"), params: object = ()
) -> Features:
    """The layer's features (alias ``t``) meeting ``condition`` (its values bound from ``params``)."""
    group = sql.SQL("t.{}::text").format(sql.Identifier(layer.coverage_by)) if layer.coverage_by else sql.SQL("NULL")
    distinct = list(dict.fromkeys(zoom_property_sets(layer).values()))
    props_columns = sql.SQL(", ").join(
        sql.SQL("{}::text").format(properties_object(layer, list(names))) for names in distinct
    )
    rows = conn.execute(
        sql.SQL("SELECT t.id, ST_AsBinary(t.geom_3857), {}, {} FROM {} AS t WHERE {} ORDER BY t.id").format(
            group, props_columns, sql.Identifier(layer.table), condition
        ),
        params,
    ).fetchall()
    return Features(
        np.array([r[0] for r in rows], dtype=np.int64),
        shapely.from_wkb([bytes(r[1]) for r in rows]) if rows else np.array([], dtype=object),
        np.array([r[2] or "" for r in rows], dtype=object),
        {names: np.array([r[3 + i] for r in rows], dtype=object) for i, names in enumerate(distinct)},
    )


def stored_form(layer: Layer, z: int, simplified: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simplified geometry as ``<table>_gen`` stores it at zoom z, and whether it lies on the
    zoom's tile grid: snapped (``snap_to_tile_grid``) unless smaller than a grid cell, which is
    kept as simplified (ST_AsMVTGeom decides in tiles, as before)."""
    snapped = snap_to_tile_grid(simplified, z, layer.tiles.extent, layer.is_polygon)
    collapsed = shapely.is_empty(snapped)
    return np.where(collapsed, simplified, snapped), ~collapsed


def generalized_rows(layer: Layer, features: Features) -> Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(z, index, geometry, on_grid)`` for each generalized zoom, finest first: the
    features kept at z (indices into ``features``) and their geometry as stored."""
    for z, keep, simplified in simplify_levels(layer, features.geoms, features.groups):
        geometry, on_grid = stored_form(layer, z, simplified[keep])
        yield z, np.flatnonzero(keep), geometry, on_grid


def copy_rows(
    conn: psycopg.Connection,
    layer: Layer,
    features: Features,
    rows: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
    chosen: np.ndarray | None = None,
) -> int:
    """COPY generalized rows (``generalized_rows``) into ``<table>_gen``, only those of the
    ``chosen`` features (a boolean mask over ``features``) if given; returns rows written."""
    sets = zoom_property_sets(layer)
    copy_sql = sql.SQL("COPY {} (id, z, geom, props, grid_extent) FROM STDIN").format(
        sql.Identifier(f"{layer.table}_gen")
    )
    extent = layer.tiles.extent
    written = 0
    with conn.cursor().copy(copy_sql) as copy:
        for z, index, geometry, on_grid in rows:
            selected = np.ones(len(index), dtype=bool) if chosen is None else chosen[index]
            ewkb = shapely.to_wkb(shapely.set_srid(geometry[selected], 3857), hex=True, include_srid=True)
            kept = index[selected]
            for feature_id, value, feature_props, grid in zip(
                features.ids[kept], ewkb, features.props[sets[z]][kept], on_grid[selected], strict=True
            ):
                copy.write_row((int(feature_id), z, value, feature_props, extent if grid else None))
            written += len(kept)
    return written


def generalize_layer(conn: psycopg.Connection, layer: Layer) -> int:
    """Recompute ``<table>_gen`` of one layer in the caller's transaction; returns rows written.

    Writers to the layer wait (SHARE lock) until the transaction ends, so the result
    always matches the data it was computed from. Sends a change notification for
    the generalized zooms so tile caches drop tiles built from the old geometry.
    """
    if not generalized_zooms(layer):
        return 0
    lock_for_generalization(conn, layer)
    features = read_features(conn, layer)
    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(f"{layer.table}_gen")))
    written = copy_rows(conn, layer, features, generalized_rows(layer, features)) if len(features.ids) else 0
    conn.execute("DELETE FROM gen_dirty WHERE layer = %s", [layer.id])
    notify_generalized(conn, layer)
    logger.info("generalized %s: %d rows for zooms %s", layer.id, written, generalized_zooms(layer))
    return written


def notify_generalized(conn: psycopg.Connection, layer: Layer, bbox: list[float] | None = None) -> None:
    """Bump the layer's generalization revision and tell tile caches its low zooms changed
    (within ``bbox``, lon/lat west, south, east, north; None: everywhere)."""
    row = conn.execute(
        "INSERT INTO layer_state AS s (layer, gen_revision) VALUES (%s, 1)"
        " ON CONFLICT (layer) DO UPDATE SET gen_revision = s.gen_revision + 1 RETURNING s.gen_revision",
        [layer.id],
    ).fetchone()
    payload = {"layer": layer.id, "gen_revision": row[0] if row else None, "bbox": bbox, "maxzoom": DETAIL_ZOOM - 1}
    conn.execute("SELECT pg_notify('ecomap_layer_changed', %s)", [json.dumps(payload)])


def generalize_catalog(conn: psycopg.Connection, catalog: Catalog, only: list[str] | None = None) -> dict[str, int]:
    """Generalize every (or the listed) layer; one transaction per layer."""
    written = {}
    for layer in catalog:
        if only and layer.id not in only:
            continue
        with conn.transaction():
            written[layer.id] = generalize_layer(conn, layer)
    return written


def dirty_layers(conn: psycopg.Connection) -> list[str]:
    """Layers with features edited since their generalization."""
    return [r[0] for r in conn.execute("SELECT DISTINCT layer FROM gen_dirty").fetchall()]


def outdated_layers(conn: psycopg.Connection, catalog: Catalog, only: Iterable[str] | None = None) -> list[str]:
    """Layers with generalized rows from before the current form: without their stored tile
    properties (written before migration 0007, or cleared by attribute edits since) or not
    snapped to the layer's tile grid (generalized before 0008, or for another extent; rows
    smaller than a grid cell are never snapped). Tiles of such rows are correct but slower
    until the layer is generalized anew."""
    outdated = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {gen} WHERE props IS NULL)"
        " OR (EXISTS (SELECT 1 FROM {gen}) AND NOT EXISTS (SELECT 1 FROM {gen} WHERE grid_extent = %s))"
    )
    return [
        layer.id
        for layer in catalog
        if generalized_zooms(layer)
        and (only is None or layer.id in only)
        and conn.execute(outdated.format(gen=sql.Identifier(f"{layer.table}_gen")), [layer.tiles.extent]).fetchone()[0]
    ]
