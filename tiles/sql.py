"""The one place where tile SQL is written.

For each catalog layer the query text is composed once, from validated catalog
identifiers quoted by psycopg's ``sql.Identifier``; per request only values are
bound (z, x, y and filter values). The search area is the tile *plus its buffer*
(``ST_TileEnvelope(..., margin)``), so features that only reach into the buffer are
kept, and each MVT feature id is the feature's stable id.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from layers.catalog import Layer

# MVT property encodings: ST_AsMVT takes text, numbers and booleans; dates go as ISO text.
_CASTS = {"date": "text"}


def property_columns(layer: Layer, names: list[str] | None = None) -> list[sql.Composable]:
    """The SELECT list of a layer's exposed properties (optionally a subset)."""
    chosen = [p for p in layer.properties if names is None or p.name in names]
    parts = []
    for prop in chosen:
        column = sql.SQL("t.{}").format(sql.Identifier(prop.name))
        if prop.type in _CASTS:
            column = sql.SQL("{}::{} AS {}").format(column, sql.SQL(_CASTS[prop.type]), sql.Identifier(prop.name))
        parts.append(column)
    return parts


@dataclass(frozen=True)
class TileQuery:
    """A layer's tile SQL with its bound-parameter names: z, x, y (and filter values)."""

    layer_id: str
    text: sql.Composed


def build_tile_query(
    layer: Layer, properties: list[str] | None = None, where: sql.Composable | None = None
) -> TileQuery:
    """Compose the ST_AsMVT query of one layer.

    Args:
        layer: the validated catalog layer.
        properties: subset of exposed properties to include (default: all).
        where: an extra boolean condition on alias ``t`` (a compiled CQL2 filter,
            values already bound as parameters).
    """
    extent = layer.tiles.extent
    buffer = layer.tiles.buffer
    select_list = sql.SQL(", ").join(
        [sql.SQL("t.{} AS __id").format(sql.Identifier(layer.id_column)), *property_columns(layer, properties)]
    )
    condition = sql.SQL("t.{geom} && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {margin}), 4326)").format(
        geom=sql.Identifier(layer.geometry_column), margin=sql.Literal(buffer / extent)
    )
    if where is not None:
        condition = sql.SQL("{} AND ({})").format(condition, where)
    text = sql.SQL(
        """
        SELECT ST_AsMVT(q, {name}, {extent}, '__geom', '__id')
        FROM (
            SELECT {select_list},
                   ST_AsMVTGeom(ST_Transform(t.{geom}, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                                {extent}, {buffer}, true) AS __geom
            FROM {table} AS t
            WHERE {condition}
        ) AS q
        WHERE q.__geom IS NOT NULL
        """
    ).format(
        name=sql.Literal(layer.id),
        extent=sql.Literal(extent),
        buffer=sql.Literal(buffer),
        select_list=select_list,
        geom=sql.Identifier(layer.geometry_column),
        table=sql.Identifier(layer.table),
        condition=condition,
    )
    return TileQuery(layer.id, text)
