"""River and bay chiefs (河长/湾长): who they are and what lies in their jurisdiction.

A chief's jurisdiction is the river segments, bays and watersheds assigned to them in
``chief_assignment``. Stations and outfalls belong to it when they are linked to one of
its segments (``station.river_id``) or lie within ``RIVER_REACH_M`` of it, or lie inside
one of its bays or watersheds.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, Sources, scope_params, scoped_table
from gis_service.errors import NotFound
from layers import geojson
from layers.catalog import Catalog, Layer

RIVER_REACH_M = 500.0
"""Stations this close to a river segment count as on it."""
JURISDICTION_LAYERS = ("river", "bay", "watershed")
STATION_KINDS = ["water_auto", "section", "outfall", "drinking_intake", "seawater"]
"""Stations that belong to a water jurisdiction (air stations do not)."""
LEVELS = ("city", "district", "town", "village")
ROLES = ("river", "bay")


def _rows(cursor_description: Any, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    columns = [c.name for c in cursor_description or []]
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _label(layer: Layer) -> sql.Composable:
    """A feature's display name: its name, and for river segments the segment too."""
    name = sql.SQL("t.{}::text").format(sql.Identifier(layer.name_property))
    if layer.get_property("segment") is not None:
        return sql.SQL("concat_ws(' ', {}, t.{})").format(name, sql.Identifier("segment"))
    return name


def _english_label(layer: Layer) -> sql.Composable:
    """A feature's English name (with its segment, which has no English form), NULL without one."""
    if layer.get_property("name_en") is None:
        return sql.SQL("NULL::text")
    if layer.get_property("segment") is not None:
        return sql.SQL("CASE WHEN t.name_en IS NOT NULL THEN concat_ws(' ', t.name_en, t.{}) END").format(
            sql.Identifier("segment")
        )
    return sql.SQL("t.name_en::text")


def _bbox_columns(geom: sql.Composable) -> sql.Composable:
    return sql.SQL("ARRAY[ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), ST_YMax({g})] AS bbox").format(g=geom)


async def list_chiefs(
    conn: AsyncConnection,
    catalog: Catalog,
    role: str | None = None,
    level: str | None = None,
    adcode: str | None = None,
    scope: FeatureScope | None = None,
) -> list[dict[str, Any]]:
    """Chiefs matching the filters (city level first), with the count of units per layer (those
    the caller's ``scope`` lets it read)."""
    counts = []
    for layer_id in JURISDICTION_LAYERS:
        layer = catalog.get(layer_id)
        readable = sql.SQL("")
        if scope is not None and scope.filters(layer):
            readable = sql.SQL(" AND a.feature_id IN (SELECT t.{} FROM {} AS t)").format(
                sql.Identifier(layer.id_column), scoped_table(layer, scope)
            )
        counts.append(
            sql.SQL("count(a.id) FILTER (WHERE a.layer = {layer}{readable})::int AS {name}").format(
                layer=sql.Literal(layer_id), readable=readable, name=sql.Identifier(f"{layer_id}s")
            )
        )
    statement = sql.SQL(
        """
        SELECT c.id, c.name, c.role, c.level, c.adcode, c.title, c.contact, c.is_sample, {counts}
        FROM chief AS c LEFT JOIN chief_assignment AS a ON a.chief_id = c.id
        WHERE (%(role)s::text IS NULL OR c.role = %(role)s)
          AND (%(level)s::text IS NULL OR c.level = %(level)s)
          AND (%(adcode)s::text IS NULL OR c.adcode = %(adcode)s)
        GROUP BY c.id
        ORDER BY array_position(ARRAY['city', 'district', 'town', 'village'], c.level), c.adcode, c.id
        """
    ).format(counts=sql.SQL(", ").join(counts))
    cursor = await conn.execute(statement, {"role": role, "level": level, "adcode": adcode, **scope_params(scope)})
    return _rows(cursor.description, await cursor.fetchall())


async def get_chief(conn: AsyncConnection, chief_id: int) -> dict[str, Any]:
    """One chief's record; NotFound when there is none."""
    cursor = await conn.execute(
        "SELECT id, name, role, level, adcode, title, contact, is_sample FROM chief WHERE id = %(id)s",
        {"id": chief_id},
    )
    rows = _rows(cursor.description, await cursor.fetchall())
    if not rows:
        raise NotFound(f"chief {chief_id} does not exist; GET /api/chiefs lists them")
    return rows[0]


def _jurisdiction_query(catalog: Catalog, scope: FeatureScope | None = None, every_chief: bool = False) -> sql.Composed:
    """The chief's units (``%(chief)s``; with ``every_chief``, every chief's) with chief_id, name, bbox
    and geometry (alias-free UNION over the three layers); those the caller's ``scope`` lets it read."""
    chief = sql.SQL("true" if every_chief else "a.chief_id = %(chief)s")
    parts = []
    for layer_id in JURISDICTION_LAYERS:
        layer = catalog.get(layer_id)
        geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
        parts.append(
            sql.SQL(
                "SELECT a.chief_id, {layer_id} AS layer, t.{id} AS id, {label} AS name, {label_en} AS name_en, {bbox}, "
                "{geom} AS geom "
                "FROM chief_assignment AS a JOIN {table} AS t ON t.{id} = a.feature_id "
                "WHERE {chief} AND a.layer = {layer_id}"
            ).format(
                layer_id=sql.Literal(layer.id),
                id=sql.Identifier(layer.id_column),
                label=_label(layer),
                label_en=_english_label(layer),
                bbox=_bbox_columns(geom),
                geom=geom,
                table=scoped_table(layer, scope),
                chief=chief,
            )
        )
    return sql.SQL(" UNION ALL ").join(parts)


def jurisdiction_area_sql(catalog: Catalog) -> sql.Composed:
    """The chief's jurisdiction as one area (EWKB, EPSG:4326; NULL when they have none): their
    river segments widened by ``RIVER_REACH_M``, their bays and watersheds (read whole: this is
    the area itself). The access policy scopes a chief's view with it
    (``gis_service.access.policy.feature_scope``)."""
    return sql.SQL(
        "SELECT ST_AsEWKB(ST_Union(CASE WHEN j.layer = 'river'"
        " THEN ST_Buffer(j.geom::geography, {reach})::geometry ELSE ST_Force2D(j.geom) END)) FROM ({}) AS j"
    ).format(_jurisdiction_query(catalog), reach=sql.Literal(RIVER_REACH_M))


async def jurisdiction_geojson(
    conn: AsyncConnection, catalog: Catalog, chief_id: int, scope: FeatureScope | None = None
) -> list[dict[str, Any]]:
    """The chief's units as GeoJSON features (for maps)."""
    statement = sql.SQL(
        "SELECT j.layer, j.id, j.name, ST_AsGeoJSON(j.geom, {})::json AS geometry FROM ({}) AS j ORDER BY j.layer, j.id"
    ).format(sql.Literal(geojson.COORDINATE_DECIMALS), _jurisdiction_query(catalog, scope))
    cursor = await conn.execute(statement, {"chief": chief_id, **scope_params(scope)})
    return _rows(cursor.description, await cursor.fetchall())


async def chief_detail(
    conn: AsyncConnection, catalog: Catalog, chief_id: int, scope: FeatureScope | None = None
) -> dict[str, Any]:
    """A chief, their rivers/bays/watersheds with extents, and what lies in or touches them (of
    what the caller's ``scope`` lets it read)."""
    chief = await get_chief(conn, chief_id)
    jurisdiction_sql = _jurisdiction_query(catalog, scope)
    params = {"chief": chief_id, **scope_params(scope)}
    cursor = await conn.execute(
        sql.SQL("SELECT layer, id, name, name_en, bbox FROM ({}) AS j ORDER BY layer, id").format(jurisdiction_sql),
        params,
    )
    jurisdiction = _rows(cursor.description, await cursor.fetchall())
    tables = Sources.of(catalog, scope, "station", "redline", "protected_area").tables
    stations = await _stations(conn, catalog, jurisdiction_sql, tables["station"], params)
    touching = {
        layer_id: await _touching(conn, catalog.get(layer_id), jurisdiction_sql, tables[layer_id], params, fields)
        for layer_id, fields in (("redline", ("function_type", "domain")), ("protected_area", ("category", "zone")))
    }
    bbox = None
    if jurisdiction:
        boxes = [j["bbox"] for j in jurisdiction]
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return {
        "chief": chief,
        "jurisdiction": jurisdiction,
        "bbox": bbox,
        "stations": [s for s in stations if s["kind"] != "outfall"],
        "outfalls": [s for s in stations if s["kind"] == "outfall"],
        "redlines": touching["redline"],
        "protected_areas": touching["protected_area"],
    }


def sections_of_chiefs_sql(catalog: Catalog) -> sql.Composed:
    """Every chief's water sections with a target (``chief_id``, ``id``, ``standard``, ``water_target``):
    the non-outfall water stations of their jurisdiction, found as ``chief_detail`` finds stations."""
    layer = catalog.get("station")
    return sql.SQL(
        """
        WITH j AS MATERIALIZED ({jurisdiction})
        SELECT DISTINCT j.chief_id, t.{id} AS id, t.standard, t.water_target
        FROM {table} AS t JOIN j ON t.kind = ANY(%(kinds)s) AND t.kind <> 'outfall' AND t.water_target IS NOT NULL
             AND CASE WHEN j.layer = 'river'
                  THEN t.river_id = j.id OR ST_DWithin(t.{geom}::geography, j.geom::geography, {reach})
                  ELSE ST_Intersects(t.{geom}, j.geom) END
        ORDER BY j.chief_id, t.{id}
        """
    ).format(
        jurisdiction=_jurisdiction_query(catalog, every_chief=True),
        id=sql.Identifier(layer.id_column),
        geom=sql.Identifier(layer.geometry_column),
        table=sql.Identifier(layer.table),
        reach=sql.Literal(RIVER_REACH_M),
    )


async def _stations(
    conn: AsyncConnection,
    catalog: Catalog,
    jurisdiction_sql: sql.Composable,
    table: sql.Composable,
    params: dict[str, Any],
) -> list[dict[str, Any]]:
    layer = catalog.get("station")
    statement = sql.SQL(
        """
        WITH j AS MATERIALIZED ({jurisdiction})
        SELECT DISTINCT ON (t.{id}) t.{id} AS id, t.code, t.name, t.kind, t.status, t.river_id,
               j.layer AS via_layer, j.id AS via_id,
               CASE WHEN j.layer = 'river'
                    THEN round(ST_Distance(t.{geom}::geography, j.geom::geography)::numeric, 1)::float8 END
                    AS distance_m,
               ST_X(t.{geom}) AS lon, ST_Y(t.{geom}) AS lat
        FROM {table} AS t JOIN j ON t.kind = ANY(%(kinds)s) AND
             CASE WHEN j.layer = 'river'
                  THEN t.river_id = j.id OR ST_DWithin(t.{geom}::geography, j.geom::geography, %(reach)s)
                  ELSE ST_Intersects(t.{geom}, j.geom) END
        ORDER BY t.{id}, (t.river_id = j.id AND j.layer = 'river') DESC, j.layer = 'river' DESC, j.id
        """
    ).format(
        jurisdiction=jurisdiction_sql,
        id=sql.Identifier(layer.id_column),
        geom=sql.Identifier(layer.geometry_column),
        table=table,
    )
    cursor = await conn.execute(statement, {**params, "reach": RIVER_REACH_M, "kinds": STATION_KINDS})
    return _rows(cursor.description, await cursor.fetchall())


async def _touching(
    conn: AsyncConnection,
    layer: Layer,
    jurisdiction_sql: sql.Composable,
    table: sql.Composable,
    params: dict[str, Any],
    fields: tuple[str, str],
) -> list[dict[str, Any]]:
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    statement = sql.SQL(
        """
        WITH j AS MATERIALIZED ({jurisdiction}),
        hits AS (
            SELECT t.{id} AS id, array_agg(DISTINCT j.layer || ':' || j.id) AS touches
            FROM {table} AS t JOIN j ON ST_Intersects({geom}, j.geom) GROUP BY t.{id}
        )
        SELECT t.{id} AS id, {label} AS name, {label_en} AS name_en, t.{f0}::text AS {f0}, t.{f1}::text AS {f1},
               {bbox}, hits.touches
        FROM {table} AS t JOIN hits ON hits.id = t.{id}
        ORDER BY t.{id}
        """
    ).format(
        jurisdiction=jurisdiction_sql,
        id=sql.Identifier(layer.id_column),
        label=_label(layer),
        label_en=_english_label(layer),
        f0=sql.Identifier(fields[0]),
        f1=sql.Identifier(fields[1]),
        bbox=_bbox_columns(geom),
        geom=geom,
        table=table,
    )
    cursor = await conn.execute(statement, params)
    return _rows(cursor.description, await cursor.fetchall())
