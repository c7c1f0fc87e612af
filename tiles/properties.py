"""Which properties a tile carries at each zoom, and the SQL that selects them.

Shared by the tile SQL (``tiles.sql``) and the generalizer (``tiles.generalize``, which
stores each zoom's properties with its geometry), so both select them identically.
"""

from __future__ import annotations

from psycopg import sql

from layers.catalog import Layer

# MVT property encodings: ST_AsMVT takes text, numbers and booleans; dates go as ISO text.
_CASTS = {"date": "text"}


def property_columns(layer: Layer, names: list[str] | None = None) -> list[sql.Composable]:
    """The SELECT list of a layer's exposed properties (optionally a subset), on alias ``t``."""
    parts: list[sql.Composable] = []
    for prop in layer.properties:
        if names is not None and prop.name not in names:
            continue
        column: sql.Composable = sql.SQL("t.{}").format(sql.Identifier(prop.name))
        if prop.type in _CASTS:
            column = sql.SQL("{}::{} AS {}").format(column, sql.SQL(_CASTS[prop.type]), sql.Identifier(prop.name))
        parts.append(column)
    return parts


def properties_object(layer: Layer, names: tuple[str, ...] | list[str]) -> sql.Composable:
    """A jsonb object of properties on alias ``t`` (NULLs left out, as ST_AsMVT leaves out
    NULL columns), which ST_AsMVT expands into feature properties."""
    pairs = [
        sql.SQL("{}, t.{}{}").format(
            sql.Literal(prop.name),
            sql.Identifier(prop.name),
            sql.SQL("::" + _CASTS[prop.type]) if prop.type in _CASTS else sql.SQL(""),
        )
        for prop in layer.properties
        if prop.name in names
    ]
    return sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(sql.SQL(", ").join(pairs))


def tile_properties(layer: Layer, z: int, names: list[str] | None = None) -> tuple[str, ...]:
    """The properties a tile at zoom z carries: those whose ``tile_minzoom`` is reached
    (low zooms carry only what styling needs; clients fetch the rest by feature id)."""
    return tuple(
        p.name
        for p in layer.properties
        if (names is None or p.name in names) and (p.tile_minzoom is None or z >= p.tile_minzoom)
    )
