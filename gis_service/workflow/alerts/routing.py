"""Where an alert goes and where its cause may lie: the station's place and responsible chiefs
(found as the workflow finds an issue's), and upstream along the river network the segments
with their chiefs and the candidate sources — outfalls and stations with their latest values —
nearest first (distance along the network, km).

A station on (or within the workflow's reach of) a river is traced from its point on the
segment (``network.catchment``). A station in a bay is traced from the mouths of the rivers
entering the bay, each at its straight-line distance from the station, and the outfalls in the
bay are candidates at theirs. A station off both has no upstream; an air station is routed to
no chief (air quality is not a river or bay chief's charge).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from shapely.geometry import Point

from gis_service.services import network
from gis_service.services.chiefs import STATION_KINDS
from gis_service.workflow.service import CHIEFS_OF_PLACE, locate, place_parameters
from layers.catalog import Catalog

MAX_CANDIDATES = 50
"""Candidate sources kept with an alert (nearest first); ``candidates_total`` counts them all."""
MOUTH_REACH_M = 1000.0
"""A river whose last segment ends this close to a bay enters it."""

_STATION = (
    "SELECT id, code, name, kind, status, river_id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM station WHERE id = %s"
)
_CHIEFS = f"""
SELECT c.id, c.name, c.role, c.level, c.adcode, c.title, c.contact,
       array_agg(DISTINCT a.layer || ':' || a.feature_id ORDER BY a.layer || ':' || a.feature_id) AS via
FROM chief_assignment AS a JOIN chief AS c ON c.id = a.chief_id
WHERE {CHIEFS_OF_PLACE}
GROUP BY c.id
ORDER BY array_position(ARRAY['city', 'district', 'town', 'village'], c.level), c.id
"""
_SEGMENT_CHIEFS = """
SELECT a.feature_id AS segment_id, c.id, c.name, c.role, c.level, c.title
FROM chief_assignment AS a JOIN chief AS c ON c.id = a.chief_id
WHERE a.layer = 'river' AND a.feature_id = ANY(%s)
ORDER BY a.feature_id, c.id
"""
_MOUTHS = """
SELECT r.id,
       round((ST_Distance(ST_EndPoint(ST_LineMerge(r.geom))::geography, t.geom::geography) / 1000)::numeric, 3)::float8
       AS distance_km
FROM river AS r, bay AS b, station AS t
WHERE b.id = %(bay)s AND t.id = %(station)s AND r.downstream_id IS NULL
  AND GeometryType(ST_LineMerge(r.geom)) = 'LINESTRING'
  AND ST_DWithin(ST_EndPoint(ST_LineMerge(r.geom))::geography, b.geom::geography, %(reach)s)
ORDER BY distance_km, r.id
"""
_BAY_OUTFALLS = """
SELECT o.id, o.code, o.name, o.kind, o.status, o.river_id, NULL::integer AS segment_id, ST_X(o.geom) AS lon,
       ST_Y(o.geom) AS lat, round((ST_Distance(o.geom::geography, t.geom::geography) / 1000)::numeric, 3)::float8
       AS distance_km
FROM station AS o, bay AS b, station AS t
WHERE b.id = %(bay)s AND t.id = %(station)s AND o.kind = 'outfall' AND o.id <> t.id AND ST_Intersects(b.geom, o.geom)
"""
_LATEST = """
SELECT DISTINCT ON (d.station_id, d.factor_code) d.station_id, d.factor_code AS code, d.property, d.unit,
       l.phenomenon_time AS time, l.value, l.flag, l.quality
FROM datastream AS d JOIN datastream_latest AS l ON l.datastream_id = d.id
WHERE d.station_id = ANY(%s)
ORDER BY d.station_id, d.factor_code, l.phenomenon_time DESC, d.aggregation = 'hour' DESC
"""
_STATUS = "SELECT station_id, water_class, meets_target, aqi, colour FROM station_status WHERE station_id = ANY(%s)"


async def _rows(conn: AsyncConnection, query: str, params: Any) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def station_place(conn: AsyncConnection, catalog: Catalog, station: dict[str, Any]) -> dict[str, Any]:
    """The station's place as the workflow locates an issue, its own river segment first."""
    place = await locate(conn, catalog, Point(station["lon"], station["lat"]))
    if station["river_id"] is not None:
        place["river_id"] = station["river_id"]
    return place


async def _upstream(
    conn: AsyncConnection, catalog: Catalog, station: dict[str, Any], place: dict[str, Any]
) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """How the station was traced (river, bay, watershed or none), the segments upstream and the
    candidate stations and outfalls, each nearest first."""
    if place["bay_id"] is not None and station["river_id"] is None:
        segments: dict[int, dict[str, Any]] = {}
        candidates: dict[int, dict[str, Any]] = {}
        mouths = await _rows(conn, _MOUTHS, {"bay": place["bay_id"], "station": station["id"], "reach": MOUTH_REACH_M})
        for mouth in mouths:
            found = await network.upstream_from(conn, catalog, mouth["id"], 1.0, mouth["distance_km"])
            for segment in found["segments"]:
                if segment["id"] not in segments or segment["distance_km"] < segments[segment["id"]]["distance_km"]:
                    segments[segment["id"]] = segment
            for candidate in found["stations"] + found["outfalls"]:
                known = candidates.get(candidate["id"])
                if known is None or candidate["distance_km"] < known["distance_km"]:
                    candidates[candidate["id"]] = candidate
        for outfall in await _rows(conn, _BAY_OUTFALLS, {"bay": place["bay_id"], "station": station["id"]}):
            candidates.setdefault(outfall["id"], outfall)
        return "bay", _nearest(list(segments.values())), _nearest(list(candidates.values()))
    traced = await network.catchment(conn, catalog, station["id"])
    how = "river" if traced["segment_id"] is not None else ("watershed" if traced["watersheds"] else None)
    return how, traced["segments"], _nearest(traced["stations"] + traced["outfalls"])


def _nearest(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda s: (s.get("distance_km") is None, s.get("distance_km") or 0.0, s["id"]))


async def _with_latest(conn: AsyncConnection, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each candidate's latest value per factor and its current class or AQI."""
    ids = [c["id"] for c in candidates]
    values: dict[int, list[dict[str, Any]]] = {}
    for row in await _rows(conn, _LATEST, (ids,)):
        sid = row.pop("station_id")
        values.setdefault(sid, []).append({**row, "time": row["time"].isoformat()})
    status = {row.pop("station_id"): row for row in await _rows(conn, _STATUS, (ids,))}
    keep = ("id", "code", "name", "kind", "status", "segment_id", "distance_km", "lon", "lat")
    return [
        {
            **{k: c.get(k) for k in keep},
            "latest": values.get(c["id"], []),
            "status": status.get(c["id"]),
        }
        for c in candidates
    ]


async def route(conn: AsyncConnection, catalog: Catalog, station_id: int) -> dict[str, Any]:
    """The routing of an alert at a station, as it is now (stored with the alert, JSON-ready)."""
    station = (await _rows(conn, _STATION, (station_id,)))[0]
    place = await station_place(conn, catalog, station)
    water = station["kind"] in STATION_KINDS
    chiefs = await _rows(conn, _CHIEFS, place_parameters(place)) if water else []
    how, segments, candidates = await _upstream(conn, catalog, station, place) if water else (None, [], [])
    by_segment: dict[int, list[dict[str, Any]]] = {}
    for row in await _rows(conn, _SEGMENT_CHIEFS, ([s["id"] for s in segments],)):
        by_segment.setdefault(row.pop("segment_id"), []).append(row)
    upstream_chiefs: dict[int, dict[str, Any]] = {}
    for segment in segments:
        for chief in by_segment.get(segment["id"], []):
            nearest = {"segment_id": segment["id"], "distance_km": segment["distance_km"]}
            upstream_chiefs.setdefault(chief["id"], {**chief, **nearest})
    return {
        "computed_at": dt.datetime.now(dt.UTC).isoformat(),
        "place": {k: place[k] for k in ("river_id", "bay_id", "watershed_id", "adcode", "watersheds")},
        "chiefs": chiefs,
        "traced": how,
        "segments": [
            {
                **{k: s.get(k) for k in ("id", "name", "segment", "hops", "distance_km", "length_km")},
                "chiefs": [c["id"] for c in by_segment.get(s["id"], [])],
            }
            for s in segments
        ],
        "upstream_chiefs": list(upstream_chiefs.values()),
        "candidates": await _with_latest(conn, candidates[:MAX_CANDIDATES]),
        "candidates_total": len(candidates),
    }
