"""HTTP routes of the cross-boundary sections: their status on the map and the monthly
assessment and compensation report (parse, check access, call the service)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection

from gis_service.monitoring.status.assess import CHINA
from gis_service.monitoring.status.routes import Stations
from gis_service.monitoring.status.service import parse_period
from gis_service.region import compensation
from gis_service.region.rules import CompensationRules, compensation_rules
from gis_service.routers.deps import get_connection

router = APIRouter(prefix="/api/region", tags=["region"])

Rules = Annotated[CompensationRules, Depends(compensation_rules)]
MONTH = r"^\d{4}-\d{2}$"
Month = Annotated[
    str | None, Query(pattern=MONTH, description="The month (YYYY-MM, China time); default the last complete month")
]
City = Annotated[str | None, Query(pattern=r"^\d{6}$", description="A city's 6-digit adcode, e.g. 350600")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed month or city code; the detail says which"},
    401: {"description": "The station layer needs a signed-in caller"},
    403: {"description": "The caller may not read the station layer"},
}


def last_complete_month(now: dt.datetime | None = None) -> str:
    """The month before this one (China time): the latest a monthly assessment is made for."""
    today = (now or dt.datetime.now(CHINA)).astimezone(CHINA).date()
    return f"{today.replace(day=1) - dt.timedelta(days=1):%Y-%m}"


def _first_day(month: str | None) -> dt.date:
    return parse_period(None, month or last_complete_month())[0]


@router.get("/sections", summary="Cross-boundary sections (交接断面) with their month's status", responses=ERRORS)
async def sections_map(
    stations: Stations, rules: Rules, month: Month = None, conn: AsyncConnection = Depends(get_connection)
) -> JSONResponse:
    """GeoJSON points of the sections between cities, with the upstream and downstream city, the
    month's class against the target, its map colour and who pays whom (see `/api/region/compensation`);
    by default for the last complete month."""
    report = await compensation.monthly_report(conn, stations, rules, _first_day(month))
    features = []
    for row in report["sections"]:
        assessment, paid = row["assessment"], row["compensation"]
        properties = {
            **{k: row[k] for k in ("id", "code", "name", "water_target", "river_id")},
            **{k: row[k] for k in ("upstream_city", "upstream_name", "downstream_city", "downstream_name")},
            **{k: assessment[k] for k in ("water_class", "meets_target", "colour")},
            **{k: paid[k] for k in ("outcome", "payer", "payee", "amount")},
        }
        features.append(
            {
                "type": "Feature",
                "id": row["id"],
                "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                "properties": properties,
            }
        )
    body = {"type": "FeatureCollection", "month": report["month"], "unit": report["unit"], "features": features}
    return JSONResponse(jsonable_encoder(body))


@router.get(
    "/compensation",
    summary="Monthly assessment and eco-compensation per cross-boundary section, city pair and city",
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def compensation_report(
    stations: Stations,
    rules: Rules,
    month: Annotated[str, Query(pattern=MONTH, description="The month (YYYY-MM, China time)")],
    upstream: City = None,
    downstream: City = None,
    f: Annotated[Literal["json", "csv"], Query(description="json (everything) or csv (one row per section)")] = "json",
    conn: AsyncConnection = Depends(get_connection),
) -> Response:
    """Each section's monthly means, class and whether it meets its target (GB 3838-2002 by the
    standards engine, from the daily means), and what the upstream city pays the downstream one
    (or receives) by the rules in `gis_service/region/compensation.yaml` (demo values; the
    rule set and its status are in the report); totals per city pair and per city."""
    first = _first_day(month)
    report = await compensation.monthly_report(conn, stations, rules, first, upstream, downstream)
    if f == "csv":
        pair = f"-{upstream or 'all'}-{downstream or 'all'}" if upstream or downstream else ""
        return Response(
            compensation.as_csv(report, list(rules.factors)),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="compensation-{report["month"]}{pair}.csv"'},
        )
    return JSONResponse(jsonable_encoder(report))
