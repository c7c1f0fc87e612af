"""The one place where tile SQL is written.

For each catalog layer the query text is composed once, from validated catalog
identifiers quoted by psycopg's ``sql.Identifier``; per request only values are
bound (z, x, y, the simplification tolerance, and filter values). Two forms exist:

- *detail* (zoom >= DETAIL_ZOOM, and point layers): the stored Web Mercator geometry;
- *generalized* (lower zooms): the precomputed ``<table>_gen`` geometry of that zoom,
  plus features edited since (listed in ``gen_dirty``) simplified on the fly.

Detail queries also come in a *batch* form: the same query for many tiles in one
statement (``z``, ``x``, ``y`` bound as arrays, one row per tile), which the renderer uses
for concurrent requests so PostgreSQL plans and answers once for all of them.

The search area is the tile *plus its buffer* (``ST_TileEnvelope(..., margin)``), so
features that only reach into the buffer are kept, and each MVT feature id is the
feature's stable id. Rows whose clipped geometry is NULL are skipped by ST_AsMVT
itself (filtering them in SQL would make PostgreSQL compute ST_AsMVTGeom twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from layers.catalog import Layer
from tiles.grid import MAX_ZOOM
from tiles.properties import properties_object, property_columns, tile_properties
from tiles.status import status_columns, status_join
from tiles.zooms import DETAIL_ZOOM, WORLD_WIDTH_M, generalized_zooms, pixel_size

TILE_PARAMS = (sql.Placeholder("z"), sql.Placeholder("x"), sql.Placeholder("y"))
"""The tile address of a single-tile query: bound parameters."""
BATCH_COLUMNS = (sql.SQL("b.z"), sql.SQL("b.x"), sql.SQL("b.y"))
"""The tile address inside a batch query: the columns of the unnested arrays."""
_BATCH = sql.SQL(
    "SELECT b.i, ({}) FROM unnest(%(z)s::int[], %(x)s::int[], %(y)s::int[]) WITH ORDINALITY AS b(z, x, y, i)"
)


@dataclass(frozen=True)
class ZoomQuery:
    """The tile query of one zoom: its text, the parameters it binds besides z/x/y (the
    simplification tolerance of generalized queries), and its batch form (detail queries
    only: arrays ``z``, ``x``, ``y``; rows ``(i, mvt)`` in array order from 1)."""

    text: bytes
    params: dict[str, float]
    batch: bytes | None


@dataclass(frozen=True)
class TileQuery:
    """A layer's tile SQL, resolved per zoom (detail or generalized form, with its properties)."""

    layer: Layer
    by_zoom: dict[int, ZoomQuery]

    def for_zoom(self, z: int) -> ZoomQuery:
        return self.by_zoom[min(z, MAX_ZOOM)]


def build_tile_query(
    layer: Layer,
    properties: list[str] | None = None,
    where: sql.Composable | None = None,
    source: sql.Composable | None = None,
) -> TileQuery:
    """Compose the ST_AsMVT queries of one layer for every zoom (shared between zooms that
    carry the same properties).

    Args:
        layer: the validated catalog layer.
        properties: subset of exposed properties to include (default: all).
        where: an extra boolean condition on alias ``t`` (a compiled CQL2 filter whose
            values are bound as named parameters).
        source: a subquery standing in for the table (e.g. the features as of a revision,
            ``layers.history``); such tiles use full-detail geometry and carry no label points.
    """
    texts: dict[tuple, tuple[bytes, bytes | None, bytes]] = {}
    by_zoom = {}
    generalized_at = set(generalized_zooms(layer))
    for z in range(MAX_ZOOM + 1):
        key = (tile_properties(layer, z, properties), source is None and has_label_points(layer, z))
        if key not in texts:
            # Rendered to bytes once: composing SQL objects on every execution costs ~0.3 ms.
            options = {"labels": key[1], "source": source}
            detail, generalized = _compose(
                layer, list(key[0]), where, stored=properties is None and where is None, **options
            )
            batch = _BATCH.format(_compose(layer, list(key[0]), where, address=BATCH_COLUMNS, **options)[0])
            texts[key] = (
                detail.as_bytes(None),
                generalized.as_bytes(None) if generalized is not None else None,
                batch.as_bytes(None),
            )
        detail_text, generalized_text, batch_text = texts[key]
        if generalized_text is not None and z < DETAIL_ZOOM and z in generalized_at:
            by_zoom[z] = ZoomQuery(generalized_text, {"tolerance": pixel_size(z)}, None)
        else:
            by_zoom[z] = ZoomQuery(detail_text, {}, batch_text)
    return TileQuery(layer, by_zoom)


def has_label_points(layer: Layer, z: int) -> bool:
    """Whether tiles at zoom z carry a ``<layer>_label`` MVT layer of label points: for
    labelled polygons, whose clipped parts would otherwise repeat the label in every tile."""
    return layer.is_polygon and layer.style.label is not None and z >= layer.style.label.minzoom


def label_properties(layer: Layer) -> list[str]:
    """Properties carried by label points: the label, and its English form (``name_en``, else the
    label's ``property_en``) when there is one."""
    assert layer.style.label is not None  # noqa: S101 - only called for labelled layers
    names = [layer.style.label.property]
    if "name_en" in layer.property_names and "name_en" not in names:
        names.append("name_en")
    fallback = layer.style.label.property_en
    if fallback and fallback not in names:
        names.append(fallback)
    return names


def _compose(
    layer: Layer,
    properties: list[str],
    where: sql.Composable | None,
    labels: bool = False,
    source: sql.Composable | None = None,
    stored: bool = False,
    address: tuple[sql.Composable, sql.Composable, sql.Composable] = TILE_PARAMS,
) -> tuple[sql.Composed, sql.Composed | None]:
    """The detail and generalized ST_AsMVT queries of a layer with given properties
    (followed, with ``labels``, by the MVT layer of its label points), for the tile at
    ``address`` (bound parameters, or the columns of a batch).

    With ``stored`` (the zoom's default properties, no filter), generalized tiles take the
    properties stored with the generalized geometry (``<table>_gen.props``) instead of
    joining the layer table; features edited since the generalization (dirty geometry, or
    props cleared by an attribute edit) read theirs from the layer table.
    """
    margin = sql.Literal(layer.tiles.buffer / layer.tiles.extent)
    search_area = sql.SQL("ST_TileEnvelope({}, {}, {}, margin => {})").format(*address, margin)
    select_list = sql.SQL(", ").join(
        [sql.SQL("t.{} AS __id").format(sql.Identifier(layer.id_column)), *property_columns(layer, properties)]
    )
    condition = sql.SQL(" AND ({})").format(where) if where is not None else sql.SQL("")
    live = source is None  # current features carry their live status (tiles.status); history does not
    detail_list = sql.SQL(", ").join([select_list, *status_columns(layer)]) if live else select_list
    names = {
        "name": sql.Literal(layer.id),
        "layer": sql.Literal(layer.id),
        "extent": sql.Literal(layer.tiles.extent),
        "buffer": sql.Literal(layer.tiles.buffer),
        "select_list": select_list,
        "id": sql.Identifier(layer.id_column),
        "table": sql.Identifier(layer.table) if source is None else sql.SQL("({})").format(source),
        "gen_table": sql.Identifier(f"{layer.table}_gen"),
        "search_area": search_area,
        "z": address[0],
        "envelope": sql.SQL("ST_TileEnvelope({}, {}, {})").format(*address),
        "condition": condition,
        "detail_list": detail_list,
        "status_join": status_join(layer) if live else sql.SQL(""),
        "status_list": sql.SQL("").join(sql.SQL(", {}").format(c) for c in status_columns(layer)),
        "candidate_status": status_join(layer, sql.SQL("c.id")),
    }
    detail = sql.SQL(
        """
        SELECT ST_AsMVT(q, {name}, {extent}, '__geom', '__id')
        FROM (
            SELECT {detail_list},
                   ST_AsMVTGeom(t.geom_3857, {envelope}, {extent}, {buffer}, true) AS __geom
            FROM {table} AS t{status_join}
            WHERE t.geom_3857 && {search_area}{condition}
        ) AS q
        """
    ).format(**names)
    if source is not None:  # historic features: full detail (no precomputed generalization)
        return detail, None
    names["generalized_geom"] = _generalized_geometry(layer, address, names["envelope"])
    if not generalized_zooms(layer):
        generalized = None
    else:
        # Generalized rows of the zoom, and features edited since simplified on the fly.
        candidates = sql.SQL(
            """
            WITH candidates AS (
                SELECT g.id, g.geom, g.props, g.grid_extent = {extent} AS snapped FROM {gen_table} AS g
                WHERE g.z = {z} AND g.geom && {search_area}
                UNION ALL
                SELECT d.id, ST_SimplifyPreserveTopology(t.geom_3857, %(tolerance)s), NULL, false
                FROM gen_dirty AS d JOIN {table} AS t ON t.{id} = d.id
                WHERE d.layer = {layer} AND t.geom_3857 && {search_area}
            )
            """
        ).format(**names)
        if stored:  # properties stored with the rows; read from the layer table when cleared
            rows = sql.SQL(
                """
                SELECT c.id AS __id,
                       COALESCE(c.props, (SELECT {props} FROM {table} AS t WHERE t.{id} = c.id)) AS __props,
                       {generalized_geom} AS __geom{status_list}
                FROM candidates AS c{candidate_status}
                """
            ).format(props=properties_object(layer, properties), **names)
        else:  # a filter or a chosen set of properties: join the layer table
            rows = sql.SQL(
                """
                SELECT {select_list},
                       {generalized_geom} AS __geom{status_list}
                FROM candidates AS c JOIN {table} AS t ON t.{id} = c.id{status_join}
                WHERE true{condition}
                """
            ).format(**names)
        generalized = sql.SQL("{} SELECT ST_AsMVT(q, {}, {}, '__geom', '__id') FROM ({}) AS q").format(
            candidates, names["name"], names["extent"], rows
        )
    if labels:
        label_query = sql.SQL(
            """
            SELECT ST_AsMVT(l, {label_name}, {extent}, '__geom', '__id')
            FROM (
                SELECT t.{id} AS __id, {label_columns},
                       ST_AsMVTGeom(t.label_3857, {envelope}, {extent}, {buffer}, true) AS __geom
                FROM {table} AS t
                WHERE t.label_3857 && {search_area}{condition}
            ) AS l
            """
        ).format(
            label_name=sql.Literal(f"{layer.id}_label"),
            label_columns=sql.SQL(", ").join(property_columns(layer, label_properties(layer))),
            **names,
        )
        detail = _concat(detail, label_query)
        generalized = _concat(generalized, label_query) if generalized is not None else None
    return detail, generalized


def _generalized_geometry(
    layer: Layer, address: tuple[sql.Composable, sql.Composable, sql.Composable], envelope: sql.Composable
) -> sql.Composable:
    """The tile geometry of a generalized candidate ``c``.

    Rows stored on the zoom's tile grid (``tiles.generalize``: valid, oriented) that lie
    wholly inside the tile only need scaling to tile coordinates — the result equals
    ST_AsMVTGeom's, whose validity work costs ~10 µs a feature (most of a low-zoom tile).
    Others (crossing the tile edge, edited since, other extent) go through ST_AsMVTGeom.
    """
    z, x, y = address
    half, world = sql.Literal(WORLD_WIDTH_M / 2), sql.Literal(WORLD_WIDTH_M)
    span = sql.SQL("({} / power(2::float8, {}))").format(world, z)  # a tile's width in metres
    extent = sql.Literal(layer.tiles.extent)
    return sql.SQL(
        """CASE WHEN c.snapped AND c.geom @ {envelope}
               THEN ST_SnapToGrid(ST_TransScale(c.geom, {half} - {x}::float8 * {span}, {y}::float8 * {span} - {half},
                                                {extent} / {span}, -{extent} / {span}), 1)
               ELSE ST_AsMVTGeom(c.geom, {envelope}, {extent}, {buffer}, true) END"""
    ).format(envelope=envelope, x=x, y=y, span=span, half=half, extent=extent, buffer=sql.Literal(layer.tiles.buffer))


def _concat(*queries: sql.Composed) -> sql.Composed:
    """One statement returning the concatenated MVT layers of several queries."""
    return sql.SQL("SELECT {}").format(
        sql.SQL(" || ").join(sql.SQL("COALESCE(({}), ''::bytea)").format(q) for q in queries)
    )
