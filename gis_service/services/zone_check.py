"""Zone check (选址合规初判): what a proposed site touches, who is responsible, and a verdict.

The site (read and checked by :mod:`gis_service.services.site`, in WGS84) is compared
in PostGIS with every layer the rules list. Areas and distances are computed on the
WGS84 ellipsoid, never in degrees. The verdict comes from the rules in ``gis_service/rules/zone_check.yaml``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any

import shapely
from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.rules import RuleSet, evaluate
from gis_service.services.raster_stats import ZonalRasters, site_statistics
from gis_service.services.site import Site
from layers.catalog import Catalog, Layer
from layers.crs import LocalEqualArea, transform_geometry

MAX_STATIONS = 100
STATION_CANDIDATES = 4 * MAX_STATIONS
"""Stations measured: the nearest by planar degrees, enough to hold the nearest MAX_STATIONS in metres."""

_LEVEL_ORDER = {"city": 0, "district": 1, "town": 2, "village": 3}


# --- database -----------------------------------------------------------------------


def _search_degrees(site: Site, metres: float) -> float:
    """A box margin in degrees that surely covers ``metres`` around the site."""
    latitude = min(89.0, max(abs(site.geometry.bounds[1]), abs(site.geometry.bounds[3])) + 0.5)
    return (metres + 100.0) / (111_000.0 * math.cos(math.radians(latitude)))


def _candidates(
    layer: Layer,
    fields: dict[str, str | None],
    rule_properties: list[str],
    box: str | None,
    scope: FeatureScope | None = None,
) -> sql.Composed:
    """A layer's features in a search box of the site (all of them when ``box`` is None), in
    the shape shared by all layers; those the caller's ``scope`` lets it read."""

    def text_of(name: str | None) -> sql.Composable:
        return sql.SQL("t.{}::text").format(sql.Identifier(name)) if name else sql.SQL("NULL::text")

    attributes = (
        sql.SQL("json_build_object({})").format(
            sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(p), sql.Identifier(p)) for p in rule_properties)
        )
        if rule_properties
        else sql.SQL("NULL::json")
    )
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    return sql.SQL(
        "SELECT {layer_id} AS layer, t.{id} AS id, {name} AS name, {category} AS category, {zone} AS zone, "
        "{attributes} AS attributes, {polygonal} AS polygonal, {geom} AS geom, {box} AS box "
        "FROM {table} AS t, site AS s {where}"
    ).format(
        layer_id=sql.Literal(layer.id),
        id=sql.Identifier(layer.id_column),
        name=text_of(layer.name_property),
        category=text_of(fields.get("category")),
        zone=text_of(fields.get("zone")),
        attributes=attributes,
        polygonal=sql.Literal(layer.is_polygon),
        geom=geom,
        box=sql.SQL("s.{}").format(sql.Identifier(box)) if box else sql.SQL("NULL::box2d"),
        table=scoped_table(layer, scope),
        where=sql.SQL("WHERE {} && s.{}").format(geom, sql.Identifier(box)) if box else sql.SQL(""),
    )


_MEASURES = {
    # What a touching polygon that does not cover the whole site covers of it. Polygon and
    # line sites: the overlapping part, measured in Python; a feature lying inside the site
    # is its own overlap (no overlay needed, and ST_Contains uses the prepared site).
    # Point sites: how many of the points.
    2: "CASE WHEN c.geom @ s.g AND ST_Contains(s.g, c.geom) THEN ST_AsBinary(c.geom) "
    "ELSE ST_AsBinary(ST_CollectionExtract(ST_Intersection(c.geom, s.g), 3)) END",
    1: "ST_AsBinary(ST_CollectionExtract(ST_Intersection(c.geom, s.g), 2))",
    0: "CASE WHEN ST_NumGeometries(s.g) = 1 THEN 1.0 "
    "ELSE (SELECT count(*) FROM ST_Dump(s.g) AS p WHERE ST_Intersects(c.geom, p.geom))::float8 END",
}


_LINE_PART = (
    # A line feature (a river segment) crossing an area site: its part inside the site, whose
    # length (not an area: lines have none) the answer gives as overlap_length_m.
    "CASE WHEN i.touches AND NOT c.polygonal AND ST_Dimension(c.geom) = 1 "
    "THEN ST_AsBinary(ST_CollectionExtract(ST_Intersection(c.geom, s.g), 2)) END"
)


def _statement(candidates: list[sql.Composable], dimension: int) -> sql.Composed:
    """One statement finding every candidate touching the site or near it.

    The site is parsed once and each PostGIS function appears once with the site as the
    same argument, so its prepared geometry is built once per request. The database keeps
    to what its indexes and prepared geometries do well (finding, testing, overlaying);
    measuring and distances on the ellipsoid are vectorised in Python (``_measure_rows``).
    A feature is near when it meets ``reach``, the site buffered by the search distance;
    only its part inside its search box is returned, which holds every point that can be
    nearest to the site.
    """
    return sql.SQL(
        """
        WITH site AS MATERIALIZED (
            SELECT g, ST_Expand(g, %(degrees)s)::box2d AS search_box,
                   ST_Expand(g, %(station_degrees)s)::box2d AS station_box,
                   -- A little wider than the search distance: buffer arcs are drawn by chords.
                   ST_Transform(ST_Buffer(ST_Transform(g, %(local_crs)s), %(search_m)s * 1.01 + 1),
                                %(local_crs)s, 4326) AS reach
            FROM (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g) AS raw
        ),
        candidates AS ({candidates})
        SELECT c.layer, c.id, c.name, c.category, c.zone, c.attributes, i.touches, k.covers_site,
               CASE WHEN i.touches AND c.polygonal AND NOT k.covers_site THEN {measure} END AS measure,
               {line_part} AS line_part,
               CASE WHEN NOT i.touches AND (c.box IS NULL OR ST_Intersects(c.geom, s.reach))
                    THEN ST_AsBinary(CASE WHEN c.box IS NULL THEN c.geom ELSE ST_ClipByBox2D(c.geom, c.box) END)
               END AS near,
               ST_XMin(c.geom) AS x0, ST_YMin(c.geom) AS y0, ST_XMax(c.geom) AS x1, ST_YMax(c.geom) AS y1
        FROM candidates AS c
        CROSS JOIN site AS s
        CROSS JOIN LATERAL (SELECT ST_Intersects(c.geom, s.g) AS touches) AS i
        CROSS JOIN LATERAL (
            SELECT i.touches AND c.polygonal AND c.geom ~ s.g AND ST_CoveredBy(s.g, c.geom) AS covers_site
        ) AS k
        WHERE i.touches OR c.box IS NULL OR ST_Intersects(c.geom, s.reach)
        """
    ).format(
        candidates=sql.SQL(" UNION ALL ").join(candidates),
        measure=sql.SQL(_MEASURES[dimension]),
        line_part=sql.SQL(_LINE_PART if dimension == 2 else "NULL::bytea"),
    )


_STATEMENTS: dict[tuple, tuple[Catalog, RuleSet, str]] = {}


def _cached_statement(
    conn: AsyncConnection, catalog: Catalog, rules: RuleSet, dimension: int, scope: FeatureScope | None = None
) -> str:
    """The zone-check statement for a site dimension, composed once per catalog and rule set.

    Composing it takes a few milliseconds of Python: it only depends on the catalog, the
    rules and the site's dimension, so it is kept (as text; values stay bound parameters).
    """
    key = (id(catalog), id(rules), dimension, scope.rule if scope is not None else None)
    cached = _STATEMENTS.get(key)
    if cached is not None and cached[0] is catalog and cached[1] is rules:
        return cached[2]
    candidates = [
        _candidates(catalog.get(layer_id), fields.model_dump(), rules.properties_of(layer_id), "search_box", scope)
        for layer_id, fields in rules.layers.items()
    ]
    # Only the nearest stations are reported: take them in index order (KNN on the bound
    # site), with a margin since degrees are not metres, instead of every station around.
    stations = _candidates(catalog.get("station"), {"category": "kind", "zone": "code"}, [], None, scope)
    candidates.append(
        sql.SQL("({} ORDER BY t.geom <-> ST_GeomFromWKB(%(wkb)s, 4326) LIMIT {})").format(
            stations, sql.Literal(STATION_CANDIDATES)
        )
    )
    text = _statement(candidates, dimension).as_string(conn)
    if len(_STATEMENTS) > 64:
        _STATEMENTS.clear()
    _STATEMENTS[key] = (catalog, rules, text)  # holding them keeps their ids from being reused
    return text


def _measure_rows(site: Site, records: list[dict[str, Any]]) -> None:
    """Fill in ``measure`` (what a touching feature covers of the site: m², m or points) and
    ``distance_m`` (of a feature near the site) on the ellipsoid, vectorised, in the site's
    local equal-area projection. The site is prepared once, so each distance uses GEOS's
    indexed facet distance."""
    projection = LocalEqualArea.around(site.geometry).transformer
    for record in records:
        record["distance_m"] = None
        if record.pop("covers_site"):
            record["measure"] = site.measure
    # Polygon and line sites: the overlapping parts came back as WKB (point sites: counts).
    parts = [r for r in records if site.dimension > 0 and isinstance(r["measure"], bytes)]
    if parts:
        projected = transform_geometry(shapely.from_wkb([r["measure"] for r in parts]), projection)
        values = shapely.area(projected) if site.dimension == 2 else shapely.length(projected)
        for record, value in zip(parts, values, strict=True):
            record["measure"] = float(value)
    lines = [r for r in records if r.get("line_part") is not None]
    if lines:
        projected = transform_geometry(shapely.from_wkb([r["line_part"] for r in lines]), projection)
        for record, value in zip(lines, shapely.length(projected), strict=True):
            record["line_part"] = float(value)
    near = [r for r in records if r["near"] is not None]
    if near:
        local_site = transform_geometry(site.geometry, projection)
        shapely.prepare(local_site)
        distances = shapely.distance(
            local_site, transform_geometry(shapely.from_wkb([r["near"] for r in near]), projection)
        )
        for record, value in zip(near, distances, strict=True):
            record["distance_m"] = float(value)


async def find_features(
    conn: AsyncConnection,
    catalog: Catalog,
    rules: RuleSet,
    site: Site,
    buffer_m: float,
    station_radius_m: float,
    scope: FeatureScope | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Features of the checked layers touching the site or within the search distance of it,
    and the stations within the radius (nearest first)."""
    search_m = max(buffer_m, rules.search_distance_m)
    station = catalog.get("station")
    params = {
        "wkb": shapely.to_wkb(site.geometry, include_srid=False),
        "local_crs": LocalEqualArea.around(site.geometry).proj4,
        "degrees": _search_degrees(site, search_m),
        "station_degrees": _search_degrees(site, max(search_m, station_radius_m)),
        "search_m": search_m,
        **scope_params(scope),
    }
    cursor = await conn.execute(_cached_statement(conn, catalog, rules, site.dimension, scope), params)
    columns = [c.name for c in cursor.description or []]
    records = [dict(zip(columns, row, strict=True)) for row in await cursor.fetchall()]
    await asyncio.to_thread(_measure_rows, site, records)  # GEOS and PROJ release the GIL
    found, stations = [], []
    for record in records:
        measure, touches, distance = record.pop("measure"), record.pop("touches"), record.pop("distance_m")
        line_length = record.pop("line_part", None)
        del record["near"]
        x0, y0, x1, y1 = (record.pop(k) for k in ("x0", "y0", "x1", "y1"))
        if record["layer"] == station.id:
            distance = 0.0 if touches else distance
            if distance is not None and distance <= station_radius_m:
                stations.append(
                    {
                        "id": record["id"],
                        "code": record["zone"],
                        "name": record["name"],
                        "kind": record["category"],
                        "distance_m": round(distance, 1),
                        "lon": x0,
                        "lat": y0,
                    }
                )
            continue
        if not touches and (distance is None or not distance <= search_m):
            continue
        record["overlap_m2"] = (
            (round(measure, 2) if site.dimension == 2 and measure is not None else 0.0) if touches else None
        )
        if line_length is not None:
            record["overlap_length_m"] = round(line_length, 2)
        elif site.dimension == 1 and touches and measure is not None:
            # A line site (a pipeline, a road) in a zone: the length of the site inside it.
            record["overlap_length_m"] = round(measure, 2)
        record["share"] = (
            round(min(1.0, measure / site.measure), 6) if touches and measure is not None and site.measure else None
        )
        record["distance_m"] = None if touches else round(distance, 1)
        record["attributes"] = record["attributes"] or {}
        record["bbox"] = [round(v, 7) for v in (x0, y0, x1, y1)]
        found.append(record)
    order = {layer_id: index for index, layer_id in enumerate(rules.layers)}
    found.sort(key=lambda r: (r["distance_m"] is not None, r["distance_m"] or 0, order[r["layer"]], r["id"]))
    stations.sort(key=lambda s: (s["distance_m"], s["id"]))
    return found, stations[:MAX_STATIONS]


async def responsible_chiefs(conn: AsyncConnection, targets: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Chiefs assigned to any of the (layer, feature id) pairs, city level first."""
    if not targets:
        return []
    cursor = await conn.execute(
        """
        SELECT c.id, c.name, c.role, c.level, c.title, c.contact, a.layer, a.feature_id
        FROM chief_assignment AS a
        JOIN chief AS c ON c.id = a.chief_id
        JOIN unnest(%(layers)s::text[], %(ids)s::int[]) AS t(layer, id) ON t.layer = a.layer AND t.id = a.feature_id
        ORDER BY a.layer, a.feature_id, c.id
        """,
        {"layers": [layer for layer, _ in targets], "ids": [fid for _, fid in targets]},
    )
    columns = [c.name for c in cursor.description or []]
    chiefs = [dict(zip(columns, row, strict=True)) for row in await cursor.fetchall()]
    chiefs.sort(key=lambda c: (_LEVEL_ORDER.get(c["level"], 9), c["layer"], c["feature_id"], c["id"]))
    return chiefs


async def layer_revisions(conn: AsyncConnection, layer_ids: list[str]) -> dict[str, int]:
    """The change-tracking revision of each layer (what the result was computed on)."""
    cursor = await conn.execute(
        "SELECT layer, revision FROM layer_state WHERE layer = ANY(%(layers)s) ORDER BY layer", {"layers": layer_ids}
    )
    return {layer: int(revision) for layer, revision in await cursor.fetchall()}


async def zone_check(
    conn: AsyncConnection,
    catalog: Catalog,
    rules: RuleSet,
    site: Site,
    *,
    buffer_m: float = 0.0,
    station_radius_m: float = 3000.0,
    rasters: ZonalRasters | None = None,
    scope: FeatureScope | None = None,
) -> dict[str, Any]:
    """The full zone-check answer for a checked site (see the API docs for the contract), from
    the features the caller's ``scope`` lets it read.

    With ``rasters``, the land cover and terrain of the site (see ``site_statistics``) are
    computed in a worker thread while PostGIS answers the queries.
    """
    statistics = (
        asyncio.ensure_future(site_statistics(site.geometry, site.dimension, buffer_m, rasters)) if rasters else None
    )
    try:
        found, stations = await find_features(conn, catalog, rules, site, buffer_m, station_radius_m, scope)
        verdict, reasons = evaluate(rules, found)
        overlaps = [r for r in found if r["distance_m"] is None or r["distance_m"] <= buffer_m]
        involved = [(r["layer"], r["id"]) for r in overlaps if r["layer"] in ("river", "bay", "watershed")]
        chiefs = await responsible_chiefs(conn, involved)
        revisions = await layer_revisions(conn, [*rules.layers, "station"])
    except BaseException:
        if statistics is not None:
            statistics.cancel()
        raise
    for record in overlaps:
        record.pop("attributes", None)
    return {
        "verdict": verdict,
        "reasons": reasons,
        "input": {
            "area_m2": round(site.area_m2, 2),
            "length_m": round(site.length_m, 2),
            "bbox": site.bbox,
            "vertices": site.vertices,
            "geometry_type": site.geometry.geom_type,
            "buffer_m": buffer_m,
            "station_radius_m": station_radius_m,
        },
        "overlaps": overlaps,
        "chiefs": chiefs,
        "stations": stations,
        "rasters": await statistics if statistics is not None else None,
        "revisions": revisions,
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
