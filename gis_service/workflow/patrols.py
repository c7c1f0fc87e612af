"""Patrols (巡河 / 巡湾): a chief's GPS track recorded from the phone (or a GPX file from
another device), the river segments and bays it passed, its length on the ellipsoid and
duration, and each chief's patrols against the frequency their level requires."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import pyogrio
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from gis_service.access import audit, policy
from gis_service.access.audit import AuditContext
from gis_service.access.principal import Principal, Role
from gis_service.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from gis_service.workflow.machine import Workflow
from gis_service.workflow.map_layers import ENVELOPE, BBox, view_parameters
from gis_service.workflow.schemas import NewPatrol, TrackPoint
from layers.catalog import Catalog
from layers.regions import Region

MAX_GPX_BYTES = 20 * 1024 * 1024
MAX_GPX_POINTS = 50_000
CLOCK_SLACK = dt.timedelta(minutes=10)
"""A phone's clock may run a little fast; points further in the future are refused."""

PATROL_SELECT = """
SELECT p.id, p.chief_id, p.actor, p.state, p.started_at, p.ended_at, p.length_m, p.note, p.origin,
       EXTRACT(EPOCH FROM (p.ended_at - p.started_at))::integer AS duration_s,
       (SELECT count(*) FROM workflow_patrol_point AS pt WHERE pt.patrol_id = p.id)::integer AS points,
       ST_AsGeoJSON(p.track, 7)::json AS track
FROM workflow_patrol AS p
"""


def _require_chief(principal: Principal) -> int:
    policy.require_role(principal, {Role.CHIEF}, "recording a patrol")
    if principal.chief_id is None:
        raise Forbidden(f"{principal.actor} is a chief account without a chief record; an admin links it")
    return principal.chief_id


async def _patrol(conn: AsyncConnection, patrol_id: int) -> dict[str, Any]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(PATROL_SELECT + " WHERE p.id = %s", [patrol_id])
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"patrol {patrol_id} does not exist; GET /api/patrols lists them")
    return row


async def _own_active(conn: AsyncConnection, principal: Principal, patrol_id: int) -> dict[str, Any]:
    patrol = await _patrol(conn, patrol_id)
    if patrol["actor"] != principal.actor:
        raise Forbidden(f"patrol {patrol_id} is {patrol['actor']}'s; only they record it")
    if patrol["state"] != "active":
        raise Conflict(f"patrol {patrol_id} is finished; start a new one for more points")
    return patrol


async def start_patrol(
    conn: AsyncConnection, principal: Principal, context: AuditContext, patrol: NewPatrol
) -> tuple[dict[str, Any], bool]:
    """Begin a patrol; the same idempotency key again returns the first one."""
    chief_id = _require_chief(principal)
    started = patrol.started_at or dt.datetime.now(dt.UTC)
    if started.tzinfo is None:
        raise InvalidRequest("started_at needs a time zone, e.g. 2026-12-02T09:00:00+08:00")
    if started > dt.datetime.now(dt.UTC) + CLOCK_SLACK:
        raise InvalidRequest("started_at lies in the future; check the phone's clock")
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO workflow_patrol"
            " (chief_id, actor, account_id, state, started_at, note, origin, idempotency_key)"
            " VALUES (%s, %s, %s, 'active', %s, %s, 'app', %s)"
            " ON CONFLICT (actor, idempotency_key) DO NOTHING RETURNING id",
            [chief_id, principal.actor, principal.account_id, started, patrol.note, patrol.idempotency_key],
        )
        row = await cursor.fetchone()
        if row is None:
            cursor = await conn.execute(
                "SELECT id FROM workflow_patrol WHERE actor = %s AND idempotency_key = %s",
                [principal.actor, patrol.idempotency_key],
            )
            existing = await cursor.fetchone()
            assert existing is not None  # noqa: S101 - the conflict names this row
            return await _patrol(conn, int(existing[0])), False
        await audit.record(conn, context, "patrol.start", target=f"patrol:{row[0]}")
    return await _patrol(conn, int(row[0])), True


def _check_points(points: list[TrackPoint], region: Region, started_at: dt.datetime) -> None:
    latest = dt.datetime.now(dt.UTC) + CLOCK_SLACK
    for index, point in enumerate(points):
        if point.time.tzinfo is None:
            raise InvalidRequest(f"points[{index}].time needs a time zone")
        if not started_at - CLOCK_SLACK <= point.time <= latest:
            raise InvalidRequest(
                f"points[{index}].time {point.time.isoformat()} is outside the patrol (before its "
                "start or in the future)"
            )
        if not region.covers((point.lon, point.lat, point.lon, point.lat)):
            raise InvalidRequest(
                f"points[{index}] ({point.lon}, {point.lat}) is not within {region.describe()}; {region.change_hint()}"
            )


async def add_points(
    conn: AsyncConnection, region: Region, principal: Principal, patrol_id: int, points: list[TrackPoint]
) -> dict[str, Any]:
    """Append GPS points (a point already stored for its time is kept: re-sent batches add nothing)."""
    patrol = await _own_active(conn, principal, patrol_id)
    _check_points(points, region, patrol["started_at"])
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO workflow_patrol_point (patrol_id, recorded_at, geom, accuracy_m)"
            " SELECT %s, t, ST_SetSRID(ST_MakePoint(x, y), 4326), a"
            " FROM unnest(%s::timestamptz[], %s::float8[], %s::float8[], %s::float8[]) AS u(t, x, y, a)"
            " ON CONFLICT (patrol_id, recorded_at) DO NOTHING",
            [
                patrol_id,
                [p.time for p in points],
                [p.lon for p in points],
                [p.lat for p in points],
                [p.accuracy_m for p in points],
            ],
        )
    return await _patrol(conn, patrol_id)


def _units_sql(catalog: Catalog) -> sql.Composed:
    """The river segments and bays within the buffer of a patrol's track."""
    river, bay = catalog.get("river"), catalog.get("bay")
    parts = [
        sql.SQL(
            "SELECT %(patrol)s, {name}, t.{id} FROM {table} AS t, workflow_patrol AS p WHERE p.id = %(patrol)s"
            " AND ST_DWithin(t.{geom}::geography, p.track::geography, %(buffer)s)"
        ).format(
            name=sql.Literal(layer.id),
            id=sql.Identifier(layer.id_column),
            table=sql.Identifier(layer.table),
            geom=sql.Identifier(layer.geometry_column),
        )
        for layer in (river, bay)
    ]
    return sql.SQL("INSERT INTO workflow_patrol_unit (patrol_id, layer, feature_id) {} ON CONFLICT DO NOTHING").format(
        sql.SQL(" UNION ").join(parts)
    )


async def _finish(
    conn: AsyncConnection, catalog: Catalog, workflow: Workflow, patrol_id: int, note: str | None
) -> None:
    """Make the track from the points in time order, measure it and find what it passed."""
    cursor = await conn.execute(
        "UPDATE workflow_patrol AS p SET state = 'finished', note = coalesce(%(note)s, p.note),"
        " track = t.line, length_m = ST_Length(t.line::geography), ended_at = t.last"
        " FROM (SELECT ST_MakeLine(geom ORDER BY recorded_at) AS line, max(recorded_at) AS last, count(*) AS n"
        "       FROM workflow_patrol_point WHERE patrol_id = %(patrol)s) AS t"
        " WHERE p.id = %(patrol)s AND t.n >= 2 RETURNING p.id",
        {"patrol": patrol_id, "note": note},
    )
    if await cursor.fetchone() is None:
        raise InvalidRequest(f"patrol {patrol_id} has fewer than 2 points; send its track first")
    await conn.execute(_units_sql(catalog), {"patrol": patrol_id, "buffer": workflow.patrol_buffer_m})


async def finish_patrol(
    conn: AsyncConnection,
    catalog: Catalog,
    workflow: Workflow,
    principal: Principal,
    context: AuditContext,
    patrol_id: int,
    note: str | None,
) -> dict[str, Any]:
    await _own_active(conn, principal, patrol_id)
    async with conn.transaction():
        await _finish(conn, catalog, workflow, patrol_id, note)
        await audit.record(conn, context, "patrol.finish", target=f"patrol:{patrol_id}")
    return await patrol_detail(conn, patrol_id)


def read_gpx(content: bytes) -> list[TrackPoint]:
    """The timed track points of a GPX file (its tracks, else its routes), in file order."""
    if len(content) > MAX_GPX_BYTES:
        raise PayloadTooLarge(f"the GPX file has {len(content)} bytes; the limit is {MAX_GPX_BYTES}")
    if b"<gpx" not in content[:4096]:
        raise InvalidRequest("the file is not GPX (no <gpx> element); export the track as GPX 1.1")
    for layer in ("track_points", "route_points"):
        try:
            frame = pyogrio.read_dataframe(io.BytesIO(content), layer=layer, columns=["time"])
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InvalidRequest(f"the GPX file cannot be read: {exc}") from None
        if len(frame):
            break
    else:
        raise InvalidRequest("the GPX file holds no track or route points")
    if len(frame) > MAX_GPX_POINTS:
        raise PayloadTooLarge(f"the GPX track has {len(frame)} points; the limit is {MAX_GPX_POINTS}")
    if frame["time"].isna().any():
        raise InvalidRequest("some GPX points have no <time>; a patrol needs timed points")
    times = frame["time"].dt.tz_localize("UTC") if frame["time"].dt.tz is None else frame["time"]
    return [
        TrackPoint(lon=geom.x, lat=geom.y, time=time.to_pydatetime())
        for geom, time in zip(frame.geometry, times, strict=True)
    ]


async def import_gpx(
    conn: AsyncConnection,
    catalog: Catalog,
    region: Region,
    workflow: Workflow,
    principal: Principal,
    context: AuditContext,
    content: bytes,
    note: str,
) -> dict[str, Any]:
    """Record a finished patrol from a GPX track recorded on another device."""
    chief_id = _require_chief(principal)
    points = read_gpx(content)
    if len(points) < 2:
        raise InvalidRequest("the GPX track has fewer than 2 points")
    started = min(p.time for p in points)
    _check_points(points, region, started)
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO workflow_patrol (chief_id, actor, account_id, state, started_at, note, origin)"
            " VALUES (%s, %s, %s, 'active', %s, %s, 'gpx') RETURNING id",
            [chief_id, principal.actor, principal.account_id, started, note],
        )
        row = await cursor.fetchone()
        assert row is not None  # noqa: S101
        patrol_id = int(row[0])
        await conn.execute(
            "INSERT INTO workflow_patrol_point (patrol_id, recorded_at, geom)"
            " SELECT %s, t, ST_SetSRID(ST_MakePoint(x, y), 4326)"
            " FROM unnest(%s::timestamptz[], %s::float8[], %s::float8[]) AS u(t, x, y)"
            " ON CONFLICT (patrol_id, recorded_at) DO NOTHING",
            [patrol_id, [p.time for p in points], [p.lon for p in points], [p.lat for p in points]],
        )
        await _finish(conn, catalog, workflow, patrol_id, None)
        await audit.record(conn, context, "patrol.import", target=f"patrol:{patrol_id}", detail={"points": len(points)})
    return await patrol_detail(conn, patrol_id)


async def patrol_detail(conn: AsyncConnection, patrol_id: int) -> dict[str, Any]:
    """A patrol with its track (GeoJSON) and the segments and bays it passed."""
    patrol = await _patrol(conn, patrol_id)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT layer, feature_id FROM workflow_patrol_unit WHERE patrol_id = %s ORDER BY layer, feature_id",
        [patrol_id],
    )
    return {**patrol, "passed": await cursor.fetchall()}


async def list_patrols(
    conn: AsyncConnection,
    chief_id: int | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
    *,
    bbox: BBox | None = None,
    tracks: bool = False,
) -> list[dict[str, Any]]:
    """Patrols, newest first; ``bbox``: those whose track meets the box; ``tracks``: finished
    ones only, with their track (GeoJSON) and the chief's name (``chief_name``), for the map."""
    select = PATROL_SELECT
    if tracks:
        name = "(SELECT c.name FROM chief AS c WHERE c.id = p.chief_id) AS chief_name"
        select = select.replace("FROM workflow_patrol AS p", f", {name}\nFROM workflow_patrol AS p")
    else:
        select = select.replace("ST_AsGeoJSON(p.track, 7)::json AS track", "NULL::json AS track")
    where = [
        "(%(chief)s::int IS NULL OR p.chief_id = %(chief)s)",
        "(%(since)s::timestamptz IS NULL OR p.started_at >= %(since)s)",
        "(%(until)s::timestamptz IS NULL OR p.started_at < %(until)s)",
    ]
    if tracks:
        where.append("p.track IS NOT NULL")
    if bbox is not None:
        where.append(f"ST_Intersects(p.track, {ENVELOPE})")
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        select + " WHERE " + " AND ".join(where) + " ORDER BY p.started_at DESC, p.id DESC"
        " LIMIT %(limit)s OFFSET %(offset)s",
        {
            "chief": chief_id,
            "since": since,
            "until": until,
            "limit": limit,
            "offset": offset,
            **view_parameters(bbox),
        },
    )
    return await cursor.fetchall()


async def frequency(
    conn: AsyncConnection, workflow: Workflow, since: dt.datetime, until: dt.datetime
) -> list[dict[str, Any]]:
    """Each chief's finished patrols in [since, until) against the number their level requires
    (the period's days divided by the level's interval, rounded up)."""
    if until <= since:
        raise InvalidRequest("until must come after since")
    days = (until - since).total_seconds() / 86400
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT c.id AS chief_id, c.name, c.role, c.level, c.adcode,"
        " count(p.id) FILTER (WHERE p.state = 'finished')::integer AS done,"
        " coalesce(sum(p.length_m) FILTER (WHERE p.state = 'finished'), 0) AS length_m"
        " FROM chief AS c LEFT JOIN workflow_patrol AS p ON p.chief_id = c.id"
        " AND p.started_at >= %(since)s AND p.started_at < %(until)s"
        " GROUP BY c.id ORDER BY c.id",
        {"since": since, "until": until},
    )
    rows = await cursor.fetchall()
    for row in rows:
        rule = workflow.patrol_frequency.get(row["level"])
        row["required"] = math.ceil(days / rule.every_days) if rule else 0
        row["meets"] = row["done"] >= row["required"]
    return rows
