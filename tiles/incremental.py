"""Incremental generalization: re-generalize only the features around what changed.

Edited, inserted and deleted features are listed in ``gen_dirty`` (with the extent an
edited or deleted feature had before, migration 0022). ``generalize_changes`` rewrites the
generalized rows of just enough features that the result is what a full recomputation
(``tiles.generalize.generalize_layer``) gives, within the pixel tolerance, and leaves no
gap or sliver against the features it does not rewrite:

- *Feature by feature* (lines, polygons that are no coverage): each zoom is simplified
  from the original alone, so only the dirty features are recomputed; the result is
  exactly the full one.
- *Coverages* are simplified together (``coverage_simplify`` shares each edge between
  neighbours and keeps the coverage valid). The rewritten set W starts with the dirty
  features and those touching their new geometry or old extent (their shared edges and
  nodes change). W and its context (every feature within ``context_m`` of W) are
  generalized as one local coverage, exactly as the full computation does it (noded,
  zoom by zoom from the finer one). Then, at every zoom, the rows *stored* for the
  features outside W are compared with the local result: where a stored row differs
  from the local one within a pixel of W's new geometry (a shared edge simplified
  against the old geometry, a constraint that moved), that feature joins W; where a
  stored row of a feature outside the context comes within a pixel of W, it joins the
  context. This repeats until nothing changes, so the edges W shares with the features
  left untouched are, vertex for vertex, those already stored (verified, not assumed).
  When W grows beyond ``FULL_ABOVE`` of the layer, the layer is recomputed whole.

The change notification carries the lon/lat extent of the rewritten rows (old and new),
for the generalized zooms only: the tile caches (and the HTTP cache purger) drop just the
tiles that show them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import psycopg
import shapely
from psycopg import sql
from shapely import STRtree

from layers.catalog import Layer
from tiles.generalize import (
    Features,
    copy_rows,
    generalize_layer,
    generalized_rows,
    lock_for_generalization,
    notify_generalized,
    read_features,
)
from tiles.zooms import DETAIL_ZOOM, generalized_zooms, pixel_size

logger = logging.getLogger(__name__)

FULL_ABOVE = 0.25
"""Recompute the whole layer when more than this share of its features would be rewritten."""
MAX_ROUNDS = 12
"""Rounds of growing W or its context before giving up and recomputing the layer."""
TOUCH_M = pixel_size(DETAIL_ZOOM - 1)
"""Features this close to a changed one (new geometry or old extent) are rewritten from the start."""


def default_context_m(layer: Layer) -> float:
    """How far around the rewritten features the local coverage reaches: a pixel at zoom 10
    (or the layer's lowest generalized zoom, if higher); stored rows that come closer at a
    coarser zoom pull their feature into the context anyway."""
    return pixel_size(max(min(generalized_zooms(layer)), 10))


@dataclass(frozen=True)
class GeneralizedChanges:
    """What ``generalize_changes`` did."""

    dirty: int
    """Features listed in ``gen_dirty`` (edited, inserted or deleted)."""
    rewritten: int
    """Features whose generalized rows were recomputed and rewritten."""
    context: int
    """Features generalized with them but left as stored (verified equal near the rewritten ones)."""
    rows: int
    rounds: int
    full: bool
    """The layer was recomputed whole (too much changed, or no convergence)."""


def generalize_changes(
    conn: psycopg.Connection, layer: Layer, context_m: float | None = None, full_above: float = FULL_ABOVE
) -> GeneralizedChanges:
    """Re-generalize the layer's dirty features and their neighbours in the caller's transaction."""
    nothing = GeneralizedChanges(0, 0, 0, 0, 0, False)
    if not generalized_zooms(layer):
        return nothing
    lock_for_generalization(conn, layer)
    dirty = conn.execute(
        sql.SQL(
            "SELECT d.id, ST_AsBinary(d.old_extent), t.id IS NOT NULL FROM gen_dirty AS d"
            " LEFT JOIN {} AS t ON t.id = d.id WHERE d.layer = %s ORDER BY d.id"
        ).format(sql.Identifier(layer.table)),
        [layer.id],
    ).fetchall()
    if not dirty:
        return nothing
    total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    dirty_ids = [r[0] for r in dirty]
    existing = np.array([r[0] for r in dirty if r[2]], dtype=np.int64)
    old_extents = [shapely.from_wkb(bytes(r[1])) for r in dirty if r[1] is not None]
    if len(existing) > full_above * max(total, 1):
        return _full(conn, layer, len(dirty_ids))
    if not layer.coverage:
        features = read_features(conn, layer, sql.SQL("t.id = ANY(%s)"), [existing.tolist()])
        rows = list(generalized_rows(layer, features)) if len(features.ids) else []
        chosen = np.ones(len(features.ids), dtype=bool)
        return _write(conn, layer, dirty_ids, features, rows, chosen, old_extents, context=0, rounds=1)
    return _coverage_changes(
        conn, layer, dirty_ids, existing, old_extents, context_m or default_context_m(layer), full_above * total
    )


def regeneralize_changes(conn: psycopg.Connection, layer: Layer) -> int:
    """``generalize_changes`` for callers that want the rows written (the importer's generalizer)."""
    return generalize_changes(conn, layer).rows


def _full(conn: psycopg.Connection, layer: Layer, dirty: int) -> GeneralizedChanges:
    rows = generalize_layer(conn, layer)
    total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    return GeneralizedChanges(dirty, total, 0, rows, 0, True)


def _boxes(geoms: Iterable[shapely.Geometry], margin: float) -> list[bytes]:
    """Envelopes grown by ``margin`` as EWKB (bound as ``bytea[]``)."""
    boxes = [shapely.box(*shapely.bounds(g)).buffer(margin, join_style="mitre") for g in geoms]
    return list(shapely.to_wkb(shapely.set_srid(np.array(boxes, dtype=object), 3857), include_srid=True))


def _grown_bounds(geoms: np.ndarray, margin: float) -> list[float]:
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    return [float(x0 - margin), float(y0 - margin), float(x1 + margin), float(y1 + margin)]


def _read_near(conn: psycopg.Connection, layer: Layer, boxes: list[bytes], ids: list[int]) -> Features:
    """Features meeting any of the boxes (through the spatial index), or listed in ``ids``."""
    near = sql.SQL(
        "t.id IN (SELECT n.id FROM {} AS n JOIN unnest(%s::bytea[]) AS b(box) ON n.geom_3857 && ST_GeomFromEWKB(b.box))"
        " OR t.id = ANY(%s)"
    ).format(sql.Identifier(layer.table))
    return read_features(conn, layer, near, [boxes, ids])


def _coverage_changes(
    conn: psycopg.Connection,
    layer: Layer,
    dirty_ids: list[int],
    existing: np.ndarray,
    old_extents: list[shapely.Geometry],
    context_m: float,
    limit: float,
) -> GeneralizedChanges:
    seeds = list(old_extents)
    if len(existing):
        seeds += list(read_features(conn, layer, sql.SQL("t.id = ANY(%s)"), [existing.tolist()]).geoms)
    rewrite = set(existing.tolist())
    if seeds:  # the features touching what changed: their edges and nodes change with it
        touching = _read_near(conn, layer, _boxes(seeds, TOUCH_M), [])
        hits = STRtree(touching.geoms).query(np.array(seeds, dtype=object), predicate="dwithin", distance=TOUCH_M)[1]
        rewrite |= set(touching.ids[np.unique(hits)].tolist())
    extra_context: set[int] = set()
    for rounds in range(1, MAX_ROUNDS + 1):
        if len(rewrite) > limit:
            break
        w_geoms = read_features(conn, layer, sql.SQL("t.id = ANY(%s)"), [sorted(rewrite)]).geoms
        local = _read_near(conn, layer, _boxes([*w_geoms, *old_extents], context_m), sorted(extra_context))
        if not len(local.ids):  # everything around was deleted
            return _write(conn, layer, dirty_ids, local, [], np.zeros(0, dtype=bool), old_extents, 0, rounds)
        rows = list(generalized_rows(layer, local))
        chosen = np.isin(local.ids, list(rewrite))
        joins, context = _verify(conn, layer, local, rows, chosen)
        if not joins and not context:
            return _write(conn, layer, dirty_ids, local, rows, chosen, old_extents, int((~chosen).sum()), rounds)
        rewrite |= joins
        extra_context |= context
        logger.debug("%s round %d: %d join the rewrite, %d the context", layer.id, rounds, len(joins), len(context))
    logger.info("%s: the changes reach too far (%d features); recomputing the layer", layer.id, len(rewrite))
    return _full(conn, layer, len(dirty_ids))


def _verify(
    conn: psycopg.Connection, layer: Layer, local: Features, rows: list, chosen: np.ndarray
) -> tuple[set[int], set[int]]:
    """Compare the stored rows near the rewritten features with the local result, zoom by
    zoom; returns the features that must be rewritten too, and those missing from the context."""
    position = {int(i): n for n, i in enumerate(local.ids)}
    joins: set[int] = set()
    missing: set[int] = set()
    gen = sql.Identifier(f"{layer.table}_gen")
    group = sql.SQL("t.{}::text").format(sql.Identifier(layer.coverage_by)) if layer.coverage_by else sql.SQL("''")
    rewritten_ids = local.ids[chosen].tolist()
    for z, index, geometry, _ in rows:
        reach = pixel_size(z)
        mine = chosen[index]
        if not mine.any():
            continue
        w_index, w_geoms = index[mine], geometry[mine]
        by_group = {
            g: shapely.union_all(w_geoms[local.groups[w_index] == g]) for g in set(local.groups[w_index].tolist())
        }
        local_rows = {int(local.ids[i]): geometry[n] for n, i in enumerate(index) if not chosen[i]}
        stored = conn.execute(
            sql.SQL(
                "SELECT g.id, ST_AsBinary(g.geom), coalesce({}, '') FROM {} AS g JOIN {} AS t ON t.id = g.id"
                " WHERE g.z = %s AND g.id <> ALL(%s) AND g.geom && ST_MakeEnvelope(%s, %s, %s, %s, 3857)"
            ).format(group, gen, sql.Identifier(layer.table)),
            [z, rewritten_ids, *_grown_bounds(w_geoms, reach)],
        ).fetchall()
        seen = set()
        for feature_id, wkb, feature_group in stored:
            near = by_group.get(feature_group)
            geom = shapely.from_wkb(bytes(wkb))
            if near is None or shapely.distance(geom, near) > reach:
                continue
            seen.add(feature_id)
            if feature_id not in position:
                missing.add(feature_id)
            elif not _same_near(local_rows.get(feature_id), geom, near, reach):
                joins.add(feature_id)
        # Kept here near W but not stored there (dropped, or stored far away): rewrite it too.
        for feature_id, geom in local_rows.items():
            near = by_group.get(local.groups[position[feature_id]])
            if feature_id not in seen and near is not None and shapely.distance(geom, near) <= reach:
                joins.add(feature_id)
    return joins, missing


def _same_near(local: shapely.Geometry | None, stored: shapely.Geometry, near: shapely.Geometry, reach: float) -> bool:
    """Whether a stored row equals the local result wherever they come within ``reach`` of ``near``."""
    if local is None:
        return False
    if shapely.equals_exact(local, stored, 0.0):
        return True
    difference = shapely.symmetric_difference(local, stored)
    return bool(shapely.is_empty(difference) or shapely.distance(difference, near) > reach)


def _write(
    conn: psycopg.Connection,
    layer: Layer,
    dirty_ids: list[int],
    features: Features,
    rows: list,
    chosen: np.ndarray,
    old_extents: list[shapely.Geometry],
    context: int,
    rounds: int,
) -> GeneralizedChanges:
    """Replace the chosen features' rows, clear the dirty list, and tell the caches where."""
    gen = sql.Identifier(f"{layer.table}_gen")
    ids = features.ids[chosen].tolist()
    old = conn.execute(
        sql.SQL("SELECT ST_AsBinary(ST_Extent(geom)::geometry) FROM {} WHERE id = ANY(%s)").format(gen), [ids]
    ).fetchone()[0]
    extents = [*old_extents, *([shapely.from_wkb(bytes(old))] if old is not None else [])]
    for _, index, geometry, _ in rows:
        extents.extend(geometry[chosen[index]])
    conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(gen), [ids])
    written = copy_rows(conn, layer, features, rows, chosen) if rows else 0
    conn.execute("DELETE FROM gen_dirty WHERE layer = %s AND id = ANY(%s)", [layer.id, dirty_ids])
    notify_generalized(conn, layer, _lonlat_bbox(conn, extents))
    logger.info(
        "generalized %s incrementally: %d dirty, %d rewritten (%d rows), %d context, %d rounds",
        layer.id, len(dirty_ids), len(ids), written, context, rounds,
    )  # fmt: skip
    return GeneralizedChanges(len(dirty_ids), len(ids), context, written, rounds, False)


def _lonlat_bbox(conn: psycopg.Connection, extents: list[shapely.Geometry]) -> list[float] | None:
    """The lon/lat (west, south, east, north) extent of Web Mercator geometries."""
    if not extents:
        return None
    x0, y0, x1, y1 = shapely.total_bounds(np.array(extents, dtype=object))
    row = conn.execute(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
        " FROM ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326) AS b",
        [float(x0), float(y0), float(x1), float(y1)],
    ).fetchone()
    return [float(v) for v in row]
