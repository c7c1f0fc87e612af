"""The one SQL builder of GeoJSON features: every route that answers features builds them here.

PostGIS writes the JSON (``json_build_object`` + ``ST_AsGeoJSON``), so pages of features are
joined as text and never parsed in Python. Identifiers come from the validated catalog
(``sql.Identifier``); values are bound by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

COORDINATE_DECIMALS = 7
"""Decimals of longitude/latitude in GeoJSON: 1e-7° ≈ 1 cm, finer than any source survey."""


def column(alias: str, name: str) -> sql.Composed:
    """``alias.name`` with both quoted."""
    return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name))


def properties_object(pairs: Iterable[tuple[str, sql.Composable]]) -> sql.Composable:
    """``json_build_object('name', expr, …)`` of (name, SQL expression) pairs; ``{}`` when empty."""
    parts = [sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr in pairs]
    if not parts:
        return sql.SQL("'{}'::json")
    return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(parts))


def columns_object(alias: str, names: Iterable[str]) -> sql.Composable:
    """The properties object of columns of ``alias``, each under its own name."""
    return properties_object((name, column(alias, name)) for name in names)


def feature(
    feature_id: sql.Composable,
    geometry: sql.Composable,
    properties: sql.Composable,
    *,
    decimals: int = COORDINATE_DECIMALS,
) -> sql.Composed:
    """A GeoJSON Feature as ``json`` from SQL expressions of its id, geometry (EPSG:4326 or
    axis-ordered as the caller wants) and properties object."""
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', {id}, 'geometry', ST_AsGeoJSON({geom}, {decimals}, 0)::json,"
        " 'properties', {props})"
    ).format(id=feature_id, geom=geometry, decimals=sql.Literal(decimals), props=properties)


def feature_without_geometry(
    feature_id: sql.Composable,
    geometry: sql.Composable,
    properties: sql.Composable,
    *,
    decimals: int = COORDINATE_DECIMALS,
) -> sql.Composed:
    """A GeoJSON Feature as ``json`` with a null geometry and, in its place, the geometry's
    ``bbox`` [min x, min y, max x, max y] (in the axis order of ``geometry``, rounded to
    ``decimals`` as the coordinates are: the box of the coordinates a full Feature would
    give); no ``bbox`` member for a null or empty geometry. For lists that need every
    feature's attributes but not its shape (the attribute table)."""
    decimal = sql.Literal(decimals)
    box = sql.SQL(", ").join(
        sql.SQL("round({}(b)::numeric, {})").format(sql.SQL(name), decimal)
        for name in ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax")
    )
    return sql.SQL(
        "(SELECT CASE WHEN b IS NULL"
        " THEN json_build_object('type', 'Feature', 'id', {id}, 'geometry', NULL, 'properties', {props})"
        " ELSE json_build_object('type', 'Feature', 'id', {id}, 'bbox', json_build_array({box}),"
        " 'geometry', NULL, 'properties', {props}) END"
        " FROM (SELECT ({geom})::box3d AS b) AS box)"
    ).format(id=feature_id, geom=geometry, box=box, props=properties)
