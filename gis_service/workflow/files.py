"""One file per river and per bay (一河一档 / 一湾一档): everything the chiefs' work knows about
one water body in one answer — its segments (a river is every segment of that name) with
their targets, its chiefs, the stations and outfalls on it, the red lines and protected areas
it crosses, its issues (open and recent), the patrols that passed it, and for a river the
segments just upstream and downstream of it. A caller with a per-feature scope reads each layer
through it (``gis_service.access.scopes``), as on the other feature routes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.errors import NotFound
from gis_service.monitoring.status.assess import CHINA
from gis_service.monitoring.status.monthly import monthly_classes, trend_months
from gis_service.monitoring.status.service import LATEST_OF_STATIONS, WATER_STANDARDS, parse_period
from gis_service.workflow.service import ISSUE_SELECT
from layers.catalog import Catalog

RECENT = 20


def _ids(catalog: Catalog, scope: FeatureScope | None, *layer_ids: str) -> dict[str, Any]:
    """What the SQL below reads of catalog layers (the table, or the caller's ``scope`` of it) and
    their quoted id and geometry identifiers."""
    out: dict[str, Any] = {}
    for layer_id in layer_ids:
        layer = catalog.get(layer_id)
        out[f"{layer_id}_t"] = scoped_table(layer, scope)
        out[f"{layer_id}_id"] = sql.Identifier(layer.id_column)
        out[f"{layer_id}_g"] = sql.Identifier(layer.geometry_column)
    return out


async def _all(conn: AsyncConnection, query: sql.Composable, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def _common(
    conn: AsyncConnection,
    catalog: Catalog,
    layer: str,
    unit_ids: list[int],
    shape: sql.Composable,
    scope: FeatureScope | None,
    last_month: dt.date,
) -> dict[str, Any]:
    """The parts a river's and a bay's file share; ``shape`` selects the water body's geometry;
    the sections' trend ends with ``last_month``."""
    ids = _ids(catalog, scope, "station", "redline", "protected_area")
    params = {"units": unit_ids, "layer": layer, "recent": RECENT, **scope_params(scope)}
    chiefs = await _all(
        conn,
        sql.SQL(
            "SELECT DISTINCT c.id, c.name, c.role, c.level, c.adcode, c.title, c.contact FROM chief_assignment AS a"
            " JOIN chief AS c ON c.id = a.chief_id WHERE a.layer = %(layer)s AND a.feature_id = ANY(%(units)s)"
            " ORDER BY c.id"
        ),
        params,
    )
    near = sql.SQL(
        "SELECT s.{station_id} AS id, s.code, s.name, s.kind, s.status, s.river_id, s.standard, s.water_target,"
        " ST_X(s.{station_g}) AS lon, ST_Y(s.{station_g}) AS lat, st.observed_at, st.water_class, st.meets_target,"
        " st.aqi, st.colour FROM {station_t} AS s LEFT JOIN station_status AS st ON st.station_id = s.{station_id},"
        " ({shape}) AS w WHERE {match} ORDER BY s.{station_id}"
    )
    match = (
        sql.SQL("s.river_id = ANY(%(units)s)")
        if layer == "river"
        else sql.SQL("ST_Intersects(s.{}, w.geom)").format(ids["station_g"])
    )
    stations = await _all(conn, near.format(shape=shape, match=match, **ids), params)
    await _add_latest_values(conn, stations)
    water = [s for s in stations if s["standard"] in WATER_STANDARDS and s["kind"] != "outfall"]
    trends = await monthly_classes(conn, water, last_month)
    sections = [
        {
            **{k: s[k] for k in ("id", "code", "name", "river_id", "standard", "water_class", "meets_target")},
            "target": s["water_target"],
            "trend": trends[s["id"]],
        }
        for s in water
    ]
    crossed = {}
    for other, fields in (("redline", ("function_type", "domain")), ("protected_area", ("category", "zone"))):
        crossed[other] = await _all(
            conn,
            sql.SQL(
                "SELECT t.{id} AS id, t.name, t.{f0}::text AS {f0}, t.{f1}::text AS {f1}"
                " FROM {table} AS t, ({shape}) AS w WHERE ST_Intersects(t.{geom}, w.geom) ORDER BY t.{id}"
            ).format(
                id=ids[f"{other}_id"],
                table=ids[f"{other}_t"],
                geom=ids[f"{other}_g"],
                f0=sql.Identifier(fields[0]),
                f1=sql.Identifier(fields[1]),
                shape=shape,
            ),
            params,
        )
    column = sql.Identifier("river_id" if layer == "river" else "bay_id")
    issue_filter = sql.SQL(" WHERE i.{} = ANY(%(units)s)").format(column)
    issues = await _all(
        conn,
        sql.SQL(ISSUE_SELECT) + issue_filter + sql.SQL(" ORDER BY i.created_at DESC LIMIT %(recent)s"),
        params,
    )
    counts = await _all(
        conn,
        sql.SQL(
            "SELECT count(*) FILTER (WHERE i.state <> 'closed')::integer AS open,"
            " count(*) FILTER (WHERE i.state = 'closed')::integer AS closed FROM workflow_issue AS i"
        )
        + issue_filter,
        params,
    )
    patrols = await _all(
        conn,
        sql.SQL(
            "SELECT p.id, p.chief_id, p.actor, p.started_at, p.ended_at, p.length_m FROM workflow_patrol AS p"
            " WHERE EXISTS (SELECT 1 FROM workflow_patrol_unit AS u WHERE u.patrol_id = p.id AND u.layer = %(layer)s"
            " AND u.feature_id = ANY(%(units)s)) ORDER BY p.started_at DESC LIMIT %(recent)s"
        ),
        params,
    )
    return {
        "chiefs": chiefs,
        "sections": sections,
        "trend_months": [f"{m:%Y-%m}" for m in trend_months(last_month)],
        "stations": [s for s in stations if s["kind"] != "outfall"],
        "outfalls": [s for s in stations if s["kind"] == "outfall"],
        "redlines": crossed["redline"],
        "protected_areas": crossed["protected_area"],
        "issues": {**counts[0], "recent": issues},
        "patrols": patrols,
    }


async def _add_latest_values(conn: AsyncConnection, stations: list[dict[str, Any]]) -> None:
    """Each station's latest value of every factor (``latest``: code, property, unit, time, value, quality)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(LATEST_OF_STATIONS, ([s["id"] for s in stations],))
    latest: dict[int, list[dict[str, Any]]] = {s["id"]: [] for s in stations}
    for row in await cursor.fetchall():
        latest[row.pop("station_id")].append(row)
    for station in stations:
        station["latest"] = latest[station["id"]]


def parse_month(month: str | None) -> dt.date:
    """The month a file's trend ends with: ``YYYY-MM``, or the current month (China time)."""
    if month is None:
        return dt.datetime.now(CHINA).date().replace(day=1)
    return parse_period(None, month)[0]


async def river_file(
    conn: AsyncConnection,
    catalog: Catalog,
    segment_id: int,
    scope: FeatureScope | None = None,
    last_month: dt.date | None = None,
) -> dict[str, Any]:
    """The file of the river one segment belongs to (every segment of that river's name); of the
    features the caller's ``scope`` lets it read."""
    ids = _ids(catalog, scope, "river")
    segments = await _all(
        conn,
        sql.SQL(
            "SELECT r.{river_id} AS id, r.name, r.name_en, r.segment, r.length_km, r.target_class, r.downstream_id,"
            " r.watershed_id FROM {river_t} AS r"
            " WHERE r.name = (SELECT r1.name FROM {river_t} AS r1 WHERE r1.{river_id} = %(id)s)"
            " ORDER BY r.{river_id}"
        ).format(**ids),
        {"id": segment_id, **scope_params(scope)},
    )
    if not segments:
        raise NotFound(f"river segment {segment_id} does not exist; GET /ogc/collections/river/items lists them")
    unit_ids = [s["id"] for s in segments]
    shape = sql.SQL(
        "SELECT ST_Union(r1.{river_g}) AS geom FROM {river_t} AS r1 WHERE r1.{river_id} = ANY(%(units)s)"
    ).format(**ids)
    neighbours = await _all(
        conn,
        sql.SQL(
            "SELECT r.{river_id} AS id, r.name, r.segment, r.downstream_id,"
            " CASE WHEN r.downstream_id = ANY(%(units)s) THEN 'upstream' ELSE 'downstream' END AS side"
            " FROM {river_t} AS r WHERE NOT r.{river_id} = ANY(%(units)s) AND (r.downstream_id = ANY(%(units)s)"
            " OR r.{river_id} IN (SELECT r1.downstream_id FROM {river_t} AS r1 WHERE r1.{river_id} = ANY(%(units)s)))"
            " ORDER BY side, r.{river_id}"
        ).format(**ids),
        {"units": unit_ids, **scope_params(scope)},
    )
    first = segments[0]
    return {
        "kind": "river",
        "name": first["name"],
        "name_en": first["name_en"],
        "length_km": round(sum(s["length_km"] or 0 for s in segments), 3),
        "segments": segments,
        "upstream": [n for n in neighbours if n["side"] == "upstream"],
        "downstream": [n for n in neighbours if n["side"] == "downstream"],
        **await _common(conn, catalog, "river", unit_ids, shape, scope, last_month or parse_month(None)),
    }


async def bay_file(
    conn: AsyncConnection,
    catalog: Catalog,
    bay_id: int,
    scope: FeatureScope | None = None,
    last_month: dt.date | None = None,
) -> dict[str, Any]:
    """The file of one bay unit (of the features the caller's ``scope`` lets it read)."""
    ids = _ids(catalog, scope, "bay")
    rows = await _all(
        conn,
        sql.SQL(
            "SELECT b.{bay_id} AS id, b.name, b.name_en, b.area_km2, b.target_class FROM {bay_t} AS b"
            " WHERE b.{bay_id} = %(id)s"
        ).format(**ids),
        {"id": bay_id, **scope_params(scope)},
    )
    if not rows:
        raise NotFound(f"bay {bay_id} does not exist; GET /ogc/collections/bay/items lists them")
    shape = sql.SQL("SELECT b1.{bay_g} AS geom FROM {bay_t} AS b1 WHERE b1.{bay_id} = ANY(%(units)s)").format(**ids)
    return {
        "kind": "bay",
        **rows[0],
        **await _common(conn, catalog, "bay", [bay_id], shape, scope, last_month or parse_month(None)),
    }
