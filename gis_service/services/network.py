"""Tracing the river network up- and downstream, and the catchment of a station.

Segments link to the next one downstream (``river.downstream_id``); watersheds do too
(``watershed.downstream_id``) and nest by ``parent_id``. Segment lines run from source
to mouth, so a station's position along its segment is ``ST_LineLocatePoint``.

Distances along the network are in km: for upstream tracing, from the upstream end of
the start segment (or from the station) to the downstream end of each segment found;
for downstream tracing, from the downstream end of the start segment to the upstream
end of each segment found. ``length_km`` is the segment's own length.

A caller with a per-feature scope (``gis_service.access.policy``) traces the network as it
reads it: every query reads the scope's view of the river, watershed and station tables, so
segments, watersheds and stations outside a partner's area are not there (the walk stops at
the area's edge, and a start outside it is not found).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection, sql

from gis_service.access.scopes import FeatureScope, Sources
from gis_service.errors import NotFound
from layers import geojson
from layers.catalog import Catalog

Direction = Literal["upstream", "downstream"]
MAX_DEPTH = 500
STATION_REACH_M = 200.0
"""Stations (not linked by river_id) this close to a segment are taken as on it."""
SNAP_DISTANCE_M = 500.0
"""A station without river_id is traced from the nearest segment within this distance."""
WATER_KINDS = ["water_auto", "section", "outfall", "drinking_intake"]
NETWORK_LAYERS = ("river", "watershed", "station")
"""The layers the network queries read (``{river}`` etc. in their SQL: the caller's view of each)."""

_LENGTH = "coalesce(r.length_km, ST_Length(r.geom::geography) / 1000.0)"

_TRACE = {
    # Recursive walks; each row: segment id, hops, distance (km) to its near end.
    "upstream": f"""
        WITH RECURSIVE walk(id, hops, distance_km, path) AS (
            SELECT r.id, 1, %(offset_km)s::float8, ARRAY[%(start)s::int, r.id]
            FROM {{river}} AS r WHERE r.downstream_id = %(start)s AND r.id <> %(start)s
            UNION ALL
            SELECT r.id, w.hops + 1, w.distance_km + {_LENGTH.replace("r.", "p.")}, w.path || r.id
            FROM walk AS w JOIN {{river}} AS p ON p.id = w.id JOIN {{river}} AS r ON r.downstream_id = w.id
            WHERE NOT r.id = ANY(w.path) AND w.hops < {MAX_DEPTH}
        )
    """,
    "downstream": f"""
        WITH RECURSIVE walk(id, hops, distance_km, path) AS (
            SELECT r.id, 1, %(offset_km)s::float8, ARRAY[%(start)s::int, r.id]
            FROM {{river}} AS s JOIN {{river}} AS r ON r.id = s.downstream_id
            WHERE s.id = %(start)s AND r.id <> %(start)s
            UNION ALL
            SELECT r.id, w.hops + 1, w.distance_km + {_LENGTH.replace("r.", "p.")}, w.path || r.id
            FROM walk AS w JOIN {{river}} AS p ON p.id = w.id JOIN {{river}} AS r ON r.id = p.downstream_id
            WHERE NOT r.id = ANY(w.path) AND w.hops < {MAX_DEPTH}
        )
    """,
}

_WATERSHED_WALK = {
    "upstream": "JOIN {watershed} AS n ON n.downstream_id = w.id",
    "downstream": "JOIN {watershed} AS c ON c.id = w.id JOIN {watershed} AS n ON n.id = c.downstream_id",
}


def _rows(description: Any, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    columns = [c.name for c in description or []]
    return [dict(zip(columns, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class Network:
    """A connection and what its queries read in place of the network's tables (a caller's scope)."""

    conn: AsyncConnection
    sources: Sources

    @classmethod
    def of(cls, conn: AsyncConnection, catalog: Catalog, scope: FeatureScope | None = None) -> Network:
        return cls(conn, Sources.of(catalog, scope, *NETWORK_LAYERS))

    async def rows(self, text: str | sql.Composable, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a statement (``{river}``, ``{watershed}``, ``{station}`` in its text) and return its rows."""
        statement = self.sources.statement(text) if isinstance(text, str) else text
        cursor = await self.conn.execute(statement, self.sources.bind(params))
        return _rows(cursor.description, await cursor.fetchall())


async def get_segment(net: Network, river_id: int) -> dict[str, Any]:
    """A river segment's record with its length; NotFound if missing (or outside the caller's scope)."""
    rows = await net.rows(
        f"""SELECT r.id, r.name, r.name_en, r.segment, r.target_class, r.downstream_id, r.watershed_id,
                   round(({_LENGTH})::numeric, 3)::float8 AS length_km
            FROM {{river}} AS r WHERE r.id = %(id)s""",
        {"id": river_id},
    )
    if not rows:
        raise NotFound(f"river segment {river_id} does not exist; GET /ogc/collections/river/items lists them")
    return rows[0]


async def _segments(net: Network, start: int, direction: Direction, offset_km: float) -> list[dict[str, Any]]:
    segments = await net.rows(
        _TRACE[direction]
        + f"""
        SELECT DISTINCT ON (r.id) r.id, r.name, r.name_en, r.segment, r.downstream_id, r.watershed_id, w.hops,
               round(w.distance_km::numeric, 3)::float8 AS distance_km,
               round(({_LENGTH})::numeric, 3)::float8 AS length_km,
               ARRAY[ST_XMin(r.geom), ST_YMin(r.geom), ST_XMax(r.geom), ST_YMax(r.geom)] AS bbox
        FROM walk AS w JOIN {{river}} AS r ON r.id = w.id
        ORDER BY r.id, w.distance_km
        """,
        {"start": start, "offset_km": offset_km},
    )
    segments.sort(key=lambda s: (s["distance_km"], s["hops"], s["id"]))
    return segments


async def _watersheds(
    net: Network, start_watershed: int | None, segment_watersheds: list[int], direction: Direction
) -> list[dict[str, Any]]:
    """Watersheds linked to the start's watershed in a direction, plus those of the segments found."""
    walk = _WATERSHED_WALK[direction]
    return await net.rows(
        f"""
        WITH RECURSIVE w(id, path) AS (
            SELECT %(start)s::int, ARRAY[%(start)s::int] WHERE %(start)s::int IS NOT NULL
            UNION ALL
            SELECT n.id, w.path || n.id FROM w {walk}
            WHERE NOT n.id = ANY(w.path) AND cardinality(w.path) < {MAX_DEPTH}
        ),
        chosen AS (
            SELECT id FROM w UNION SELECT unnest(%(segments)s::int[])
        )
        SELECT ws.id, ws.name, ws.name_en, ws.level, ws.parent_id, ws.downstream_id,
               round(coalesce(ws.area_km2, ST_Area(ws.geom::geography) / 1e6)::numeric, 3)::float8 AS area_km2,
               ws.id = %(start)s AS partial,
               ARRAY[ST_XMin(ws.geom), ST_YMin(ws.geom), ST_XMax(ws.geom), ST_YMax(ws.geom)] AS bbox
        FROM {{watershed}} AS ws JOIN chosen USING (id)
        ORDER BY array_position(ARRAY['basin', 'sub_basin', 'small'], ws.level), ws.id
        """,
        {"start": start_watershed, "segments": segment_watersheds},
    )


async def _stations_on(
    net: Network,
    segments: dict[int, dict[str, Any]],
    direction: Direction,
    watershed_ids: list[int],
) -> list[dict[str, Any]]:
    """Water stations on the traced segments (with distance along the network) or inside the watersheds.

    ``segments`` maps segment id to its ``distance_km`` and ``length_km``.
    """
    if not segments and not watershed_ids:
        return []
    stations = await net.rows(
        """
        WITH seg AS (
            SELECT r.id, ST_LineMerge(r.geom) AS line, r.geom FROM {river} AS r WHERE r.id = ANY(%(segments)s)
        )
        SELECT DISTINCT ON (t.id) t.id, t.code, t.name, t.kind, t.status, t.river_id, seg.id AS segment_id,
               CASE WHEN GeometryType(seg.line) = 'LINESTRING' THEN ST_LineLocatePoint(seg.line, t.geom) END
                   AS fraction,
               ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat
        FROM {station} AS t
        LEFT JOIN seg ON t.river_id = seg.id
             OR (t.geom && ST_Expand(seg.geom, 0.01) AND ST_DWithin(t.geom::geography, seg.geom::geography, %(reach)s))
        WHERE t.kind = ANY(%(kinds)s)
          AND (seg.id IS NOT NULL OR EXISTS (
              SELECT 1 FROM {watershed} AS ws WHERE ws.id = ANY(%(watersheds)s) AND ST_Intersects(ws.geom, t.geom)))
        ORDER BY t.id, (t.river_id = seg.id) DESC NULLS LAST
        """,
        {
            "segments": list(segments),
            "watersheds": watershed_ids,
            "reach": STATION_REACH_M,
            "kinds": WATER_KINDS,
        },
    )
    for station in stations:
        fraction = station.pop("fraction")
        segment = segments.get(station["segment_id"])
        distance = None
        if segment is not None:
            position = 0.5 if fraction is None else fraction
            along = (1 - position) if direction == "upstream" else position
            distance = round(segment["distance_km"] + along * segment["length_km"], 3)
        station["distance_km"] = distance
    stations.sort(key=lambda s: (s["distance_km"] is None, s["distance_km"] or 0, s["id"]))
    return stations


async def trace(
    conn: AsyncConnection, catalog: Catalog, river_id: int, direction: Direction, scope: FeatureScope | None = None
) -> dict[str, Any]:
    """Segments, watersheds, stations and outfalls up- or downstream of a river segment (of the
    network the caller's ``scope`` lets it read)."""
    net = Network.of(conn, catalog, scope)
    start = await get_segment(net, river_id)
    segments = await _segments(net, river_id, direction, 0.0)
    watersheds = await _watersheds(
        net, start["watershed_id"], [s["watershed_id"] for s in segments if s["watershed_id"]], direction
    )
    lengths = {s["id"]: s for s in segments}
    stations = await _stations_on(net, lengths, direction, [w["id"] for w in watersheds if not w["partial"]])
    return {
        "segment": start,
        "direction": direction,
        "segments": segments,
        "watersheds": watersheds,
        "stations": [s for s in stations if s["kind"] != "outfall"],
        "outfalls": [s for s in stations if s["kind"] == "outfall"],
        "total_length_km": round(sum(s["length_km"] for s in segments), 3),
    }


async def _station_segment(net: Network, station_id: int) -> dict[str, Any]:
    rows = await net.rows(
        """
        SELECT t.id, t.code, t.name, t.kind, t.river_id, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat,
               near.id AS segment_id, near.fraction, near.length_km
        FROM {station} AS t
        LEFT JOIN LATERAL (
            SELECT r.id,
                   CASE WHEN GeometryType(ST_LineMerge(r.geom)) = 'LINESTRING'
                        THEN ST_LineLocatePoint(ST_LineMerge(r.geom), t.geom) ELSE 0.5 END AS fraction,
                   coalesce(r.length_km, ST_Length(r.geom::geography) / 1000.0) AS length_km
            FROM {river} AS r
            WHERE r.id = t.river_id
               OR (t.river_id IS NULL AND ST_DWithin(r.geom::geography, t.geom::geography, %(snap)s))
            ORDER BY r.id = t.river_id DESC NULLS LAST, r.geom <-> t.geom
            LIMIT 1
        ) AS near ON true
        WHERE t.id = %(id)s
        """,
        {"id": station_id, "snap": SNAP_DISTANCE_M},
    )
    if not rows:
        raise NotFound(f"station {station_id} does not exist; GET /ogc/collections/station/items lists them")
    return rows[0]


async def _upstream_segments(
    net: Network, segment_id: int, fraction: float, offset_km: float
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The segments above a point at ``fraction`` of a segment (its own part above the point
    first, ``hops`` 0), and what ``_stations_on`` needs to place stations on them: the own
    segment whole, shifted so that a station on it gets its distance above the point (negative
    below it)."""
    own = await get_segment(net, segment_id)
    full = own["length_km"]
    above = round(fraction * full, 3)
    reach = {segment_id: {"distance_km": offset_km - (1 - fraction) * full, "length_km": full}}
    own.update(hops=0, distance_km=offset_km, length_km=above, partial=True)
    segments = [own, *await _segments(net, segment_id, "upstream", offset_km + above)]
    reach.update({s["id"]: s for s in segments if s["hops"] > 0})
    return segments, reach


def _above(stations: list[dict[str, Any]], offset_km: float, exclude: int | None) -> list[dict[str, Any]]:
    """Stations upstream of the point: those on its own segment below it (a shorter distance) left out."""
    return [s for s in stations if s["id"] != exclude and (s["distance_km"] is None or s["distance_km"] >= offset_km)]


async def upstream_from(
    conn: AsyncConnection,
    catalog: Catalog,
    segment_id: int,
    fraction: float = 1.0,
    offset_km: float = 0.0,
    scope: FeatureScope | None = None,
) -> dict[str, Any]:
    """What lies upstream of a point of a segment (``fraction`` of its length from its source
    end; 1: its mouth): the segment above the point, the segments upstream, and the water
    stations and outfalls on them, nearest first; distances along the network in km, from the
    point plus ``offset_km`` (the way to the point from elsewhere, e.g. a bay station)."""
    net = Network.of(conn, catalog, scope)
    segments, reach = await _upstream_segments(net, segment_id, fraction, offset_km)
    stations = _above(await _stations_on(net, reach, "upstream", []), offset_km, None)
    return {
        "segments": segments,
        "stations": [s for s in stations if s["kind"] != "outfall"],
        "outfalls": [s for s in stations if s["kind"] == "outfall"],
    }


async def catchment(
    conn: AsyncConnection, catalog: Catalog, station_id: int, scope: FeatureScope | None = None
) -> dict[str, Any]:
    """What drains to a station: its segment above it, the segments and watersheds upstream,
    and the stations and outfalls on them (those on its own segment above it included), of the
    network the caller's ``scope`` lets it read.

    Stations off the network are traced from the finest watershed containing them.
    """
    net = Network.of(conn, catalog, scope)
    station = await _station_segment(net, station_id)
    segment_id = station.pop("segment_id")
    fraction, _ = station.pop("fraction"), station.pop("length_km")
    segments: list[dict[str, Any]] = []
    reach: dict[int, dict[str, Any]] = {}
    start_watershed = None
    if segment_id is not None:
        segments, reach = await _upstream_segments(net, segment_id, fraction, 0.0)
        start_watershed = segments[0]["watershed_id"]
    else:
        rows = await net.rows(
            """SELECT ws.id FROM {watershed} AS ws JOIN {station} AS t ON ST_Intersects(ws.geom, t.geom)
               WHERE t.id = %(id)s
               ORDER BY array_position(ARRAY['small', 'sub_basin', 'basin'], ws.level), ST_Area(ws.geom) LIMIT 1""",
            {"id": station_id},
        )
        start_watershed = rows[0]["id"] if rows else None
    watersheds = await _watersheds(
        net, start_watershed, [s["watershed_id"] for s in segments if s.get("watershed_id")], "upstream"
    )
    stations = await _stations_on(net, reach, "upstream", [w["id"] for w in watersheds if not w["partial"]])
    stations = _above(stations, 0.0, station_id)
    features, area_km2 = await _catchment_geojson(net, [w["id"] for w in watersheds], [s["id"] for s in segments])
    return {
        "station": station,
        "segment_id": segment_id,
        "segments": segments,
        "watersheds": watersheds,
        "stations": [s for s in stations if s["kind"] != "outfall"],
        "outfalls": [s for s in stations if s["kind"] == "outfall"],
        "area_km2": area_km2,
        "geojson": {"type": "FeatureCollection", "features": features},
    }


async def _catchment_geojson(
    net: Network, watershed_ids: list[int], segment_ids: list[int]
) -> tuple[list[dict[str, Any]], float | None]:
    """GeoJSON features of the catchment's watersheds and segments, and the area of their union."""

    def part(layer: str, extra: str) -> sql.Composed:
        return sql.SQL("SELECT {} AS feature FROM {} AS t WHERE t.id = ANY({})").format(
            geojson.feature(
                sql.SQL("{} || t.id").format(sql.Literal(f"{layer}.")),
                sql.SQL("t.geom"),
                geojson.properties_object(
                    [
                        ("layer", sql.Literal(layer)),
                        ("id", sql.SQL("t.id")),
                        ("name", sql.SQL("t.name")),
                        (extra, geojson.column("t", extra)),
                    ]
                ),
            ),
            net.sources.tables[layer],
            sql.Placeholder(f"{layer}s"),
        )

    rows = await net.rows(
        sql.SQL(" UNION ALL ").join([part("watershed", "level"), part("river", "segment")]),
        {"watersheds": watershed_ids, "rivers": segment_ids},
    )
    features = [row["feature"] for row in rows]
    area = await net.rows(
        "SELECT round((ST_Area(ST_Union(ws.geom)::geography) / 1e6)::numeric, 3)::float8 AS km2"
        " FROM {watershed} AS ws WHERE ws.id = ANY(%(watersheds)s)",
        {"watersheds": watershed_ids},
    )
    return features, area[0]["km2"] if area else None
