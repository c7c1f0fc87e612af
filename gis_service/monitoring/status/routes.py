"""HTTP routes of station status and history (parse, check access, call the service)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection

from gis_service.access import layer_rules, policy
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal, Role
from gis_service.access.scopes import Sources
from gis_service.db import connection
from gis_service.errors import DatabaseUnavailable, Forbidden, TooManyRequests, Unauthorized
from gis_service.monitoring.status import service
from gis_service.routers.deps import get_catalog, get_connection
from layers.catalog import Catalog

router = APIRouter(prefix="/api", tags=["monitoring"])
KEEPALIVE_S = 15.0
"""An SSE comment this often keeps proxies from closing an idle stream."""

StationId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Station feature id")]


def readable_stations(
    catalog: Catalog = Depends(get_catalog), principal: Principal = Depends(current_principal)
) -> Principal:
    """The station layer's access rules (the one policy): 401/403 when the caller may not read it."""
    layer_rules.require_layers(principal, [catalog.get("station")])
    return principal


def may_receive(principal: Principal, event: dict[str, Any]) -> bool:
    """Whether a client receives an event: an event naming its ``readers`` (roles; e.g. alerts,
    read by the workflow's readers) goes only to callers of those roles."""
    readers = event.get("readers")
    if readers is None:
        return True
    try:
        policy.require_role(principal, [Role(r) for r in readers], "receiving this event")
    except (Forbidden, Unauthorized, ValueError):  # ValueError: a role this version does not know
        return False
    return True


async def caller_stations(
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(readable_stations),
) -> Sources:
    """The stations the caller reads: all of them, or those its per-feature scope lets it (a
    partner key's area: the others are not found, and not in the summaries)."""
    return Sources.of(catalog, await policy.scope_on(conn, catalog, principal), "station")


Stations = Annotated[Sources, Depends(caller_stations)]


@router.get(
    "/stations/{station_id}/latest",
    summary="A station's latest values with its water class or AQI",
    responses={404: {"description": "No station with this id"}},
)
async def station_latest(
    station_id: StationId, stations: Stations, conn: AsyncConnection = Depends(get_connection)
) -> dict[str, Any]:
    """Latest value per property (unit, time, HJ 212 flag, quality). Water stations: `water_class`
    (I…V or 劣V; sea 一类…劣四类) with `deciding_factors` (value, target-class limit,
    `exceedance_multiple` 超标倍数), `target` and `meets_target`; air stations: `aqi`,
    `primary_pollutant`, `category`, `colour`. `standard` and `version` are those in force on
    the observation's date (China time)."""
    return await service.latest(conn, station_id, stations)


@router.get(
    "/stations/{station_id}/series",
    summary="A station's hourly values or daily / monthly means of one property",
    responses={400: {"description": "Unknown property, bad or too long range"}, 404: {"description": "No station"}},
)
async def station_series(
    station_id: StationId,
    stations: Stations,
    prop: Annotated[str, Query(alias="property", min_length=1, max_length=40, description="HJ 212 code or name")],
    start: Annotated[dt.datetime, Query(alias="from", description="Start (inclusive), with a time zone")],
    end: Annotated[dt.datetime, Query(alias="to", description="End (exclusive), with a time zone")],
    step: Annotated[service.Step, Query(description="hour: values; day / month: means by the validity rules")] = "hour",
    conn: AsyncConnection = Depends(get_connection),
) -> dict[str, Any]:
    """`step=hour`: every hourly value with its flag and quality (at most 366 days); `day`: daily
    means (China-time days; water 18 and air 20 valid hours needed, O3 its daily maximum 8-hour
    mean; at most 3 years); `month`: monthly means of the daily means (27 valid days, 25 in
    February; at most 10 years). Each point says how many values were valid and required."""
    return await service.series(conn, station_id, prop, start, end, step, stations)


@router.get(
    "/water-quality/summary",
    summary="Water sections per class, share meeting target (达标率), worst sections",
    responses={400: {"description": "Neither or both of date and month"}},
)
async def water_quality_summary(
    stations: Stations,
    date: Annotated[dt.date | None, Query(description="A day (YYYY-MM-DD): daily means")] = None,
    month: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}$", description="A month (YYYY-MM): monthly means")
    ] = None,
    conn: AsyncConnection = Depends(get_connection),
) -> dict[str, Any]:
    """River, lake and sea stations classed from their daily (or monthly) means by the standard in
    force, the count per class, how many meet their target and the worst sections with their
    deciding factors."""
    first, last = service.parse_period(date, month)
    return await service.water_summary(conn, first, last, stations)


@router.get(
    "/air-quality/summary",
    summary="Daily AQI (日报) of every air station and the count per category",
)
async def air_quality_summary(
    stations: Stations,
    date: Annotated[dt.date, Query(description="The day (YYYY-MM-DD, China time)")],
    conn: AsyncConnection = Depends(get_connection),
) -> dict[str, Any]:
    """Each air station's daily AQI from its 24-hour means (O3 daily maximum 8-hour mean), primary
    pollutant, category and colour, by the HJ 633 version in force on the date."""
    return await service.air_summary(conn, date, stations)


@router.get(
    "/monitoring/events",
    summary="Server-Sent Events: new observations and station status changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless event stream"}},
)
async def monitoring_events(
    request: Request,
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(readable_stations),
) -> StreamingResponse:
    """`event: observation` (`station_id`, `mn`, `time`, `inserted`) when a packet is stored,
    `event: status` (`station_id`, `water_class`, `meets_target`, `aqi`, `category`, `colour`)
    when a station's status changes (at most every `ECOMAP_MONITORING__STATUS_INTERVAL_S`),
    `event: alert` (`action` opened / escalated / resolved / acknowledged, `id`, `rule`,
    `station_id`, `severity`, `state`, `issue_id`, `chiefs`) to those who may read alerts; for a
    caller scoped to an area, of the stations inside it when the stream starts."""
    events = getattr(request.app.state, "monitoring_events", None)
    if events is None:
        raise DatabaseUnavailable("the event stream is not running (the service is starting or stopping)")
    pool = request.app.state.pool
    scope = await policy.feature_scope(catalog, principal, lambda: connection(pool))
    visible: frozenset[int] | None = None
    if scope is not None and scope.filters(catalog.get("station")):
        async with connection(pool) as conn:  # not held while the stream lasts
            visible = await service.station_ids(conn, Sources.of(catalog, scope, "station"))
    queue = events.subscribe()
    if queue is None:
        raise TooManyRequests("this worker serves as many event-stream clients as it may; retry later", 5)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if visible is not None and event.get("station_id") not in visible:
                    continue
                if not may_receive(principal, event):
                    continue
                event = {k: v for k, v in event.items() if k != "readers"}
                data = json.dumps(jsonable_encoder(event), ensure_ascii=False)
                yield f"event: {event.get('event', 'message')}\ndata: {data}\n\n".encode()
        finally:
            events.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
