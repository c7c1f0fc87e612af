"""Features of a catalog layer as GeoJSON, for OGC API – Features (Parts 1, 2 and 3).

GeoJSON is built by PostGIS (``json_build_object`` + ``ST_AsGeoJSON``) and joined as
text, so a page of features is never parsed in Python. Every identifier comes from the
validated catalog through ``sql.Identifier``; every value (bbox, equality filters, CQL2
literals, limit, offset) is a bound parameter.

``numberMatched`` is on every page: known for free on the last page (offset + features
returned); otherwise an exact ``COUNT(*)`` of the filtered query when any selection is given
(filter, bbox, datetime, property equality, revision), and for an unfiltered collection an
exact count of small tables or the planner's estimate (``pg_class.reltuples``) beyond
:data:`EXACT_COUNT_ROWS` rows, so a page of a large table never scans it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.errors import InvalidRequest, NotFound
from layers import geojson
from layers.catalog import Layer, LayerProperty
from layers.filters import CompiledFilter, FilterError, parse_filter
from layers.history import features_as_of_sql
from layers.temporal import (
    TemporalError,
    TimeInterval,
    as_timestamp,
    datetime_condition,
    extent_sql,
    parse_datetime,
    require_temporal,
)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
SUPPORTED_CRS: dict[str, int] = {CRS84: 4326, CGCS2000: 4490}
"""Output CRSs by URI, with their SRID. EPSG:4490 is latitude-first (its official axis order)."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
EXACT_COUNT_ROWS = 100_000
"""Unfiltered collections up to this many rows (planner estimate) are counted exactly."""
ESTIMATED_EXTENT_ROWS = 50_000
"""Above this many rows the spatial and temporal extents come from the planner's statistics."""
FILTER_LANGUAGES = {"cql2-text": "cql2-text", "cql2-json": "cql2-json", "cql-text": "cql2-text"}
"""``filter-lang`` values; ``cql-text`` is the pre-CQL2 name some clients (GDAL 3.6) still send."""
TRS_GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
MAX_SORT_KEYS = 5
_BIND_CASTS = {
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "string": "text",
}


@dataclass(frozen=True)
class ItemsQuery:
    """A validated items request."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    """In CRS84 (lon/lat order), whatever bbox-crs the request used."""
    equals: dict[str, Any] = field(default_factory=dict)
    filter: CompiledFilter | None = None
    properties: list[str] | None = None
    skip_geometry: bool = False
    """Features without their geometry, each with its bbox instead (``skipGeometry=true``)."""
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    """(property, descending) pairs."""
    crs: str = CRS84
    revision: int | None = None
    """The layer as of this revision (layers with history; ``asof`` is resolved to one)."""
    datetime: TimeInterval | None = None
    """Features whose time (the catalog's ``temporal`` properties) intersects this interval."""
    scope: FeatureScope | None = None
    """The caller's per-feature scope (``gis_service.access.policy``): read in place of the table."""

    @property
    def selective(self) -> bool:
        """True when anything narrows the collection (then numberMatched is counted exactly)."""
        return bool(self.bbox or self.equals or self.filter or self.datetime is not None or self.revision is not None)


@dataclass(frozen=True)
class ItemsPage:
    """One page of features as GeoJSON text, whether more follow, and how many match in all."""

    features: list[str]
    has_more: bool
    number_matched: int | None = None
    matched_is_estimate: bool = False


def parse_crs(value: str | None, parameter: str = "crs") -> str:
    """Check a CRS URI against the supported ones (default CRS84)."""
    if value is None or value == "":
        return CRS84
    uri = value.strip().strip("<>")
    if uri not in SUPPORTED_CRS:
        raise InvalidRequest(f"unsupported {parameter} {value!r}; use one of: {', '.join(SUPPORTED_CRS)}")
    return uri


def parse_bbox(text: str, bbox_crs: str = CRS84) -> tuple[float, float, float, float]:
    """Parse ``minx,miny,maxx,maxy`` (or 6 numbers with heights) into a CRS84 box."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidRequest(f"bbox {text!r} is not a list of numbers; use bbox=minlon,minlat,maxlon,maxlat") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InvalidRequest("bbox needs 4 finite numbers (or 6 with heights): minlon,minlat,maxlon,maxlat")
    if bbox_crs == CGCS2000:  # EPSG:4490 axis order is latitude first
        numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
    minx, miny, maxx, maxy = numbers
    if minx > maxx or miny > maxy:
        raise InvalidRequest(
            "bbox minimum is greater than its maximum; boxes across the antimeridian are not supported"
        )
    if miny < -90 or maxy > 90:
        raise InvalidRequest("bbox latitudes must lie within -90..90")
    return minx, miny, maxx, maxy


def coerce_value(prop: LayerProperty, raw: str) -> Any:
    """Convert a query-string value to the type of a catalog property (400 if it does not fit)."""
    if "\x00" in raw:
        raise InvalidRequest(f"{prop.name}: the value contains a NUL character (%00); remove it")
    try:
        if prop.type == "integer":
            number = int(raw)
            if not -(2**63) <= number < 2**63:
                raise InvalidRequest(f"{prop.name}={raw!r} is out of range for an integer (64 bits)")
            return number
        if prop.type == "number":
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
        if prop.type == "boolean":
            lowered = raw.lower()
            if lowered not in ("true", "false"):
                raise ValueError(raw)
            return lowered == "true"
        if prop.type == "date":
            return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{prop.name}={raw!r} is not a valid {prop.type}") from None
    return raw


def parse_sortby(text: str, layer: Layer) -> list[tuple[str, bool]]:
    """Parse ``sortby=name,-area_km2`` (``+`` may arrive decoded as a space)."""
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        token = part.strip()
        if not token:
            continue
        descending = token.startswith("-")
        name = token.lstrip("+-").strip()
        if name != layer.id_column and layer.get_property(name) is None:
            raise InvalidRequest(
                f"cannot sort by {name!r}; sortable properties of {layer.id}: "
                + ", ".join([layer.id_column, *layer.property_names])
            )
        keys.append((name, descending))
    if len(keys) > MAX_SORT_KEYS:
        raise InvalidRequest(f"sortby takes at most {MAX_SORT_KEYS} properties")
    return keys


def parse_properties(text: str, layer: Layer) -> list[str]:
    """Parse ``properties=name,zone`` against the layer's properties."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if layer.get_property(n) is None]
    if unknown:
        raise InvalidRequest(
            f"unknown properties {unknown} for {layer.id}; available: {', '.join(layer.property_names)}"
        )
    return names


def feature_select(layer: Layer, properties: list[str] | None, crs: str, skip_geometry: bool = False) -> sql.Composable:
    """The SELECT expression giving one GeoJSON Feature (as text) per row of alias ``t``;
    with ``skip_geometry`` its geometry is null and its ``bbox`` is given instead."""
    geom: sql.Composable = geojson.column("t", layer.geometry_column)
    if SUPPORTED_CRS[crs] != 4326:
        geom = sql.SQL("ST_FlipCoordinates(ST_Transform({}, {}))").format(geom, sql.Literal(SUPPORTED_CRS[crs]))
    names = [p.name for p in layer.properties if properties is None or p.name in properties]
    build = geojson.feature_without_geometry if skip_geometry else geojson.feature
    return sql.SQL("{}::text").format(
        build(geojson.column("t", layer.id_column), geom, geojson.columns_object("t", names))
    )


def _selection(layer: Layer, query: ItemsQuery) -> tuple[sql.Composable, sql.Composable, dict[str, Any]]:
    """The source (table or as-of subquery) and WHERE clause of a query, and their parameters."""
    params: dict[str, Any] = dict(scope_params(query.scope))
    inner = None
    if query.revision is not None:
        inner, source_params = features_as_of_sql(layer, query.revision)
        params.update(source_params)
    table = scoped_table(layer, query.scope, inner)
    conditions: list[sql.Composable] = []
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    if query.bbox is not None:
        params.update(zip(("bx0", "by0", "bx1", "by1"), query.bbox, strict=True))
        envelope = sql.SQL("ST_MakeEnvelope(%(bx0)s, %(by0)s, %(bx1)s, %(by1)s, 4326)")
        conditions.append(sql.SQL("{geom} && {env} AND ST_Intersects({geom}, {env})").format(geom=geom, env=envelope))
    for index, (name, value) in enumerate(sorted(query.equals.items())):
        prop = layer.get_property(name)
        assert prop is not None  # noqa: S101 - checked when the query was parsed
        key = f"eq{index}"
        params[key] = value
        conditions.append(
            sql.SQL("t.{} = {}::{}").format(sql.Identifier(name), sql.Placeholder(key), sql.SQL(_BIND_CASTS[prop.type]))
        )
    if query.filter is not None:
        conditions.append(sql.SQL("({})").format(query.filter.where))
        params.update(query.filter.params)
    if query.datetime is not None:
        condition, temporal_params = datetime_condition(layer, query.datetime)
        conditions.append(condition)
        params.update(temporal_params)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    return table, where, params


def build_items_query(layer: Layer, query: ItemsQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """Compose the page query of a layer; fetches ``limit + 1`` rows to know whether more follow."""
    table, where, params = _selection(layer, query)
    params.update(limit=query.limit + 1, offset=query.offset)
    order = [
        sql.SQL("t.{} {}").format(sql.Identifier(name), sql.SQL("DESC NULLS LAST" if desc else "ASC NULLS LAST"))
        for name, desc in query.sortby
    ]
    order.append(sql.SQL("t.{}").format(sql.Identifier(layer.id_column)))
    # The page is chosen first and only its rows are turned into GeoJSON: PostgreSQL would
    # otherwise build the JSON of every row skipped by OFFSET too (deep pages got slow).
    statement = sql.SQL(
        "SELECT {select} FROM (SELECT t.* FROM {table} AS t{where} ORDER BY {order}"
        " LIMIT %(limit)s OFFSET %(offset)s) AS t ORDER BY {order}"
    )
    return (
        statement.format(
            select=feature_select(layer, query.properties, query.crs, query.skip_geometry),
            table=table,
            where=where,
            order=sql.SQL(", ").join(order),
        ),
        params,
    )


async def _estimated_rows(conn: AsyncConnection, layer: Layer) -> float:
    """The planner's row estimate of the layer's table (-1 when never analysed)."""
    cursor = await conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(table)s)", {"table": layer.table}
    )
    row = await cursor.fetchone()
    return float(row[0]) if row is not None and row[0] is not None else -1.0


async def count_matched(conn: AsyncConnection, layer: Layer, query: ItemsQuery) -> tuple[int, bool]:
    """How many features match the query, and whether that is the planner's estimate.

    Exact (``COUNT(*)`` of the filtered query) when anything narrows the collection; an
    unfiltered collection is counted exactly up to :data:`EXACT_COUNT_ROWS` rows, beyond
    that ``pg_class.reltuples`` (kept by ANALYZE / autovacuum) is used.
    """
    if not query.selective:
        estimate = await _estimated_rows(conn, layer)
        if estimate > EXACT_COUNT_ROWS:
            return int(estimate), True
    table, where, params = _selection(layer, query)
    cursor = await conn.execute(sql.SQL("SELECT count(*) FROM {} AS t{}").format(table, where), params)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0, False


async def fetch_items(conn: AsyncConnection, layer: Layer, query: ItemsQuery) -> ItemsPage:
    """One page of a layer's features matching the query, with the number matched in all."""
    statement, params = build_items_query(layer, query)
    cursor = await conn.execute(statement, params)
    rows = [row[0] for row in await cursor.fetchall()]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not has_more and (rows or query.offset == 0):  # the last page tells the total for free
        return ItemsPage(rows, has_more, query.offset + len(rows))
    matched, estimate = await count_matched(conn, layer, query)
    return ItemsPage(rows, has_more, matched, estimate)


async def fetch_item(
    conn: AsyncConnection, layer: Layer, feature_id: str, crs: str = CRS84, scope: FeatureScope | None = None
) -> str:
    """One feature as GeoJSON text; NotFound when the id does not exist (or lies outside the
    caller's scope: the same answer, so the scope's edge cannot be probed)."""
    missing = NotFound(f"feature {feature_id!r} does not exist in collection {layer.id}")
    try:
        number = int(feature_id)
    except ValueError:
        raise missing from None
    if not -(2**31) <= number < 2**31:
        raise missing
    statement = sql.SQL("SELECT {select} FROM {table} AS t WHERE t.{id} = %(id)s").format(
        select=feature_select(layer, None, crs), table=scoped_table(layer, scope), id=sql.Identifier(layer.id_column)
    )
    cursor = await conn.execute(statement, {"id": number, **scope_params(scope)})
    row = await cursor.fetchone()
    if row is None:
        raise missing
    return row[0]


def _filtered(layer: Layer, scope: FeatureScope | None) -> bool:
    return scope is not None and scope.filters(layer)


async def layer_extent(conn: AsyncConnection, layer: Layer, scope: FeatureScope | None = None) -> list[float] | None:
    """The layer's bounding box from its data [minlon, minlat, maxlon, maxlat], None when empty;
    of the features inside the caller's ``scope`` when it leaves some out (read exactly).

    Large tables use the planner's estimated extent (from ANALYZE statistics, no scan).
    """
    geom = sql.Identifier(layer.geometry_column)
    box_sql: sql.Composable
    if not _filtered(layer, scope) and await _estimated_rows(conn, layer) > ESTIMATED_EXTENT_ROWS:
        box_sql = sql.SQL("SELECT ST_EstimatedExtent({}, {})::box2d").format(
            sql.Literal(layer.table), sql.Literal(layer.geometry_column)
        )
    else:
        box_sql = sql.SQL("SELECT ST_Extent(t.{}) FROM {} AS t").format(geom, scoped_table(layer, scope))
    statement = sql.SQL("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({}) AS e(b)").format(box_sql)
    cursor = await conn.execute(statement, scope_params(scope))
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return [round(float(v), 7) for v in row]


async def temporal_extent(
    conn: AsyncConnection, layer: Layer, scope: FeatureScope | None = None
) -> list[str | None] | None:
    """The layer's time span [first, last] as RFC 3339 (None = open end), None without a
    temporal property or data; of the features inside the caller's ``scope`` when it leaves
    some out (read exactly).

    Small tables are read (``min``/``max``); above :data:`ESTIMATED_EXTENT_ROWS` rows the
    bounds of the planner's histogram are used (an estimate, no scan).
    """
    if layer.temporal is None:
        return None
    start, last = layer.temporal.start, layer.temporal.end or layer.temporal.start
    if not _filtered(layer, scope) and await _estimated_rows(conn, layer) > ESTIMATED_EXTENT_ROWS:
        kind = sql.SQL("int[]" if layer.get_property(start).type == "integer" else "date[]")  # type: ignore[union-attr]
        statement = sql.SQL(
            "SELECT min(v), max(v), false FROM pg_stats,"
            " unnest(coalesce(histogram_bounds::text::{kind}, '{{}}')"
            " || coalesce(most_common_vals::text::{kind}, '{{}}')) AS v"
            " WHERE schemaname = current_schema() AND tablename = %(table)s AND attname = ANY(%(columns)s)"
        ).format(kind=kind)
        cursor = await conn.execute(statement, {"table": layer.table, "columns": [start, last]})
    else:
        cursor = await conn.execute(extent_sql(layer, scoped_table(layer, scope)), scope_params(scope))
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    first, final, open_ended = row
    return [as_timestamp(layer, start, first), None if open_ended else as_timestamp(layer, last, final, end=True)]


def filter_language(value: str | None) -> str:
    """The CQL2 encoding a ``filter-lang`` names (default CQL2 text); 400 for any other."""
    chosen = FILTER_LANGUAGES.get(value or "cql2-text")
    if chosen is None:
        raise InvalidRequest(f"filter-lang {value!r} is not supported; use cql2-text or cql2-json")
    return chosen


def parse_items_filter(text: str, layer: Layer, language: str, filter_crs: str) -> CompiledFilter:
    """Compile the ``filter`` of an items request (CQL2 text or JSON, coordinates in ``filter-crs``)."""
    try:
        return parse_filter(text, layer, language=language, swap_axes=filter_crs == CGCS2000)
    except FilterError as exc:
        raise InvalidRequest(f"filter: {exc}") from None


def parse_items_datetime(text: str, layer: Layer, layers: list[Layer]) -> TimeInterval:
    """Read the ``datetime`` of an items request for a layer with a temporal property."""
    try:
        require_temporal(layer, layers)
        return parse_datetime(text)
    except TemporalError as exc:
        raise InvalidRequest(str(exc)) from None


def property_schema(prop: LayerProperty) -> dict[str, Any]:
    """The JSON Schema of a catalog property (dates as ISO 8601 strings), for queryables, sortables and tilesets."""
    entry: dict[str, Any] = {"title": prop.title.en, "description": prop.description or prop.title.zh}
    if prop.type == "date":
        entry.update(type="string", format="date")
    else:
        entry["type"] = prop.type
    if prop.values:
        entry["enum"] = list(prop.values)
    return entry


def _schema(layer: Layer, schema_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "type": "object",
        "title": f"{layer.title.en} ({layer.title.zh})",
        "properties": properties,
        "additionalProperties": False,
    }


def queryables_schema(layer: Layer, schema_id: str) -> dict[str, Any]:
    """The JSON Schema of a layer's queryable properties (OGC API – Features Part 3)."""
    properties: dict[str, Any] = {
        "geometry": {
            "title": "Geometry",
            "x-ogc-role": "primary-geometry",
            "format": f"geometry-{layer.geometry_type.lower()}",
        },
        layer.id_column: {"x-ogc-role": "id", "type": "integer", "title": "Feature id"},
    }
    properties.update((prop.name, property_schema(prop)) for prop in layer.properties)
    if layer.temporal is not None and layer.temporal.end is None:
        properties[layer.temporal.start]["x-ogc-role"] = "primary-instant"
    elif layer.temporal is not None:
        properties[layer.temporal.start]["x-ogc-role"] = "primary-interval-start"
        properties[layer.temporal.end]["x-ogc-role"] = "primary-interval-end"
    return _schema(layer, schema_id, properties)


def sortables_schema(layer: Layer, schema_id: str) -> dict[str, Any]:
    """The JSON Schema of the properties usable in ``sortby`` (OGC API – Features Part 8)."""
    properties: dict[str, Any] = {layer.id_column: {"type": "integer", "title": "Feature id"}}
    properties.update((prop.name, property_schema(prop)) for prop in layer.properties)
    return _schema(layer, schema_id, properties)


async def items_etag(conn: AsyncConnection, layer: Layer, head: dict[str, Any], page: list[str]) -> str:
    """A weak ETag of an items page: its features and links (not the time stamp) and the layer's
    revision, so that any change to the collection, on this page or another, changes it."""
    cursor = await conn.execute("SELECT revision FROM layer_state WHERE layer = %s", [layer.id])
    row = await cursor.fetchone()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{row[0] if row else 0}|".encode())
    digest.update(json.dumps({k: v for k, v in head.items() if k != "timeStamp"}, sort_keys=True).encode())
    for feature in page:
        digest.update(feature.encode())
    return f'W/"{digest.hexdigest()}"'
