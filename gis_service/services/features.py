"""Features of a catalog layer as GeoJSON, for OGC API – Features (Parts 1, 2 and 3).

GeoJSON is built by PostGIS (``json_build_object`` + ``ST_AsGeoJSON``) and joined as
text, so a page of features is never parsed in Python. Every identifier comes from the
validated catalog through ``sql.Identifier``; every value (bbox, equality filters, CQL2
literals, limit, offset) is a bound parameter.

``numberMatched`` is only reported when it is known for free: when the last page is
reached (offset + features returned). A full ``COUNT(*)`` is never run per page.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from gis_service.errors import InvalidRequest, NotFound
from layers.catalog import Layer, LayerProperty
from layers.filters import CompiledFilter
from layers.history import features_as_of_sql

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
SUPPORTED_CRS: dict[str, int] = {CRS84: 4326, CGCS2000: 4490}
"""Output CRSs by URI, with their SRID. EPSG:4490 is latitude-first (its official axis order)."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_SORT_KEYS = 5
COORDINATE_DECIMALS = 7  # ~1 cm

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
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    """(property, descending) pairs."""
    crs: str = CRS84
    revision: int | None = None
    """The layer as of this revision (layers with history)."""
    asof: str | None = None
    """The layer as of this date or time (layers with history)."""


@dataclass(frozen=True)
class ItemsPage:
    """One page of features as GeoJSON text, and whether more follow."""

    features: list[str]
    has_more: bool

    def number_matched(self, offset: int) -> int | None:
        """The exact number of matching features when this page reveals it, else None."""
        if self.has_more or (offset > 0 and not self.features):
            return None
        return offset + len(self.features)


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
    try:
        if prop.type == "integer":
            return int(raw)
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


def _geometry_json(layer: Layer, crs: str) -> sql.Composable:
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    if SUPPORTED_CRS[crs] != 4326:
        geom = sql.SQL("ST_FlipCoordinates(ST_Transform({}, {}))").format(geom, sql.Literal(SUPPORTED_CRS[crs]))
    return sql.SQL("ST_AsGeoJSON({}, {}, 0)::json").format(geom, sql.Literal(COORDINATE_DECIMALS))


def _properties_json(layer: Layer, names: list[str] | None) -> sql.Composable:
    chosen = [p for p in layer.properties if names is None or p.name in names]
    if not chosen:
        return sql.SQL("'{}'::json")
    pairs = sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(p.name), sql.Identifier(p.name)) for p in chosen)
    return sql.SQL("json_build_object({})").format(pairs)


def feature_select(layer: Layer, properties: list[str] | None, crs: str) -> sql.Composable:
    """The SELECT expression giving one GeoJSON Feature (as text) per row of alias ``t``."""
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', {geometry}, 'properties', {props})::text"
    ).format(
        id=sql.Identifier(layer.id_column),
        geometry=_geometry_json(layer, crs),
        props=_properties_json(layer, properties),
    )


def build_items_query(layer: Layer, query: ItemsQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """Compose the page query of a layer; fetches ``limit + 1`` rows to know whether more follow."""
    params: dict[str, Any] = {"limit": query.limit + 1, "offset": query.offset}
    table: sql.Composable = sql.Identifier(layer.table)
    if query.revision is not None or query.asof is not None:
        source, source_params = features_as_of_sql(layer, query.revision, query.asof)
        table = sql.SQL("({})").format(source)
        params.update(source_params)
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
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
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
            select=feature_select(layer, query.properties, query.crs),
            table=table,
            where=where,
            order=sql.SQL(", ").join(order),
        ),
        params,
    )


async def fetch_items(conn: AsyncConnection, layer: Layer, query: ItemsQuery) -> ItemsPage:
    """One page of a layer's features matching the query."""
    statement, params = build_items_query(layer, query)
    cursor = await conn.execute(statement, params)
    rows = [row[0] for row in await cursor.fetchall()]
    return ItemsPage(rows[: query.limit], has_more=len(rows) > query.limit)


async def fetch_item(conn: AsyncConnection, layer: Layer, feature_id: str, crs: str = CRS84) -> str:
    """One feature as GeoJSON text; NotFound when the id does not exist."""
    missing = NotFound(f"feature {feature_id!r} does not exist in collection {layer.id}")
    try:
        number = int(feature_id)
    except ValueError:
        raise missing from None
    if not -(2**31) <= number < 2**31:
        raise missing
    statement = sql.SQL("SELECT {select} FROM {table} AS t WHERE t.{id} = %(id)s").format(
        select=feature_select(layer, None, crs), table=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column)
    )
    cursor = await conn.execute(statement, {"id": number})
    row = await cursor.fetchone()
    if row is None:
        raise missing
    return row[0]


async def layer_extent(conn: AsyncConnection, layer: Layer) -> list[float] | None:
    """The layer's bounding box from its data [minlon, minlat, maxlon, maxlat], None when empty.

    Large tables use the planner's estimated extent (from ANALYZE statistics, no scan).
    """
    table = sql.Identifier(layer.table)
    geom = sql.Identifier(layer.geometry_column)
    cursor = await conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(table)s)", {"table": layer.table}
    )
    row = await cursor.fetchone()
    box_sql: sql.Composable
    if row is not None and row[0] > 50_000:
        box_sql = sql.SQL("SELECT ST_EstimatedExtent({}, {})::box2d").format(
            sql.Literal(layer.table), sql.Literal(layer.geometry_column)
        )
    else:
        box_sql = sql.SQL("SELECT ST_Extent({}) FROM {}").format(geom, table)
    statement = sql.SQL("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({}) AS e(b)").format(box_sql)
    cursor = await conn.execute(statement)
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return [round(float(v), 7) for v in row]


def queryables_schema(layer: Layer, schema_id: str) -> dict[str, Any]:
    """The JSON Schema of a layer's queryable properties (OGC API – Features Part 3)."""
    properties: dict[str, Any] = {
        "geometry": {"x-ogc-role": "primary-geometry", "format": f"geometry-{layer.geometry_type.lower()}"},
        layer.id_column: {"x-ogc-role": "id", "type": "integer", "title": "Feature id"},
    }
    for prop in layer.properties:
        entry: dict[str, Any] = {"title": prop.title.en, "description": prop.description or prop.title.zh}
        if prop.type == "date":
            entry.update(type="string", format="date")
        else:
            entry["type"] = prop.type
        if prop.values:
            entry["enum"] = list(prop.values)
        properties[prop.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "type": "object",
        "title": f"{layer.title.en} ({layer.title.zh})",
        "properties": properties,
        "additionalProperties": False,
    }
