"""HTTP API of alerts: ``/api/alert-rules`` (the rules with their labels), ``/api/alerts``
(list with filters; a chief's own by default), ``/api/alerts/{id}`` (with the routing and
candidate sources as they were when it was raised, its events and issue) and
``POST /api/alerts/{id}/acknowledge``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from gis_service.access import endpoint_rules
from gis_service.access.audit import AuditContext
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.access.state import client_address, request_id
from gis_service.errors import InvalidRequest
from gis_service.routers.deps import get_connection
from gis_service.workflow import map_layers
from gis_service.workflow.alerts import service
from gis_service.workflow.alerts.rules import AlertRules, load_rules
from gis_service.workflow.machine import Workflow, load_workflow

router = APIRouter(prefix="/api", tags=["alerts"])

Connection = Annotated[AsyncConnection, Depends(get_connection)]
Caller = Annotated[Principal, Depends(current_principal)]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A filter is wrong; the detail says which"},
    401: {"description": "Not signed in"},
    403: {"description": "The caller's role may not do this, or the alert is not routed to this chief"},
    404: {"description": "No such alert"},
}


def get_alert_rules() -> AlertRules:
    """The validated alert rules (``rules.yaml``, read once; checked when the app is built)."""
    return load_rules()


def get_workflow() -> Workflow:
    return load_workflow()


Rules = Annotated[AlertRules, Depends(get_alert_rules)]
WorkflowRules = Annotated[Workflow, Depends(get_workflow)]


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=4000, description="What the chief is doing about it")


@router.get("/alert-rules", summary="The alert rules: conditions, severities, escalation, issues")
async def alert_rules(rules: Rules) -> dict[str, Any]:
    """What ``rules.yaml`` says, with labels in Chinese and English, and each condition's measure."""
    document = rules.model_dump(mode="json", by_alias=True)
    for rule_id, rule in rules.rules.items():
        document["rules"][rule_id]["condition"]["measure"] = rule.condition.measure
    return document


LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"content": {"application/json": {}, map_layers.GEOJSON: {}}},
}


@router.get("/alerts", summary="Alerts, newest first (a chief's own by default)", responses=LIST_RESPONSES)
async def list_alerts(
    conn: Connection,
    principal: Caller,
    rules: Rules,
    workflow: WorkflowRules,
    state: Annotated[service.State | None, Query(description="open or resolved")] = None,
    station_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    river_id: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="The station's river segment")] = None,
    bay_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    chief_id: Annotated[
        int | None, Query(ge=1, le=2_147_483_647, description="Alerts routed to this chief (a chief: self by default)")
    ] = None,
    everyone: Annotated[
        bool, Query(alias="all", description="A chief: every alert, not only those routed to them")
    ] = False,
    severity: Annotated[str | None, Query(description="low, medium, high or critical")] = None,
    rule: Annotated[str | None, Query(description="A rule id of GET /api/alert-rules")] = None,
    since: Annotated[dt.datetime | None, Query(description="Open at some moment since then (with time zone)")] = None,
    bbox: Annotated[str | None, Query(description=map_layers.BBOX_HELP, examples=["118.0,24.4,118.2,24.6"])] = None,
    f: Annotated[
        Literal["json", "geojson"],
        Query(description="json, or geojson: a FeatureCollection of the alerts at their stations, for the map"),
    ] = "json",
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    """``f=geojson``: the same alerts as points at their stations, with the rule, its factor
    (``measure``), severity, state and since when the condition holds (``since``)."""
    service.require_reader(workflow, principal)
    view = map_layers.parse_view(bbox)
    if severity is not None and severity not in workflow.severities:
        raise InvalidRequest(f"severity {severity!r} is not one of {', '.join(workflow.severities)}")
    chief = service.default_chief(principal, chief_id, everyone)
    alerts = await service.list_alerts(
        conn,
        rules,
        state=state,
        station_id=station_id,
        river_id=river_id,
        bay_id=bay_id,
        chief_id=chief,
        severity=severity,
        rule=rule,
        since=since,
        bbox=view,
        located=f == "geojson",
        limit=limit,
        offset=offset,
    )
    alerts = endpoint_rules.strip_fields(principal, "chiefs", alerts)
    if f == "geojson":
        collection = map_layers.alert_collection(alerts, workflow, limit, offset)
        collection["chief_id"] = chief
        return JSONResponse(jsonable_encoder(collection), media_type=map_layers.GEOJSON)
    return {"alerts": alerts, "chief_id": chief, "numberReturned": len(alerts), "limit": limit, "offset": offset}


@router.get("/alerts/{alert_id}", summary="An alert with its routing, candidate sources and history", responses=ERRORS)
async def get_alert(
    alert_id: AlertId, conn: Connection, principal: Caller, rules: Rules, workflow: WorkflowRules
) -> dict[str, Any]:
    """``routing``: the place, the responsible chiefs, the upstream segments (nearest first) with
    their chiefs, and the candidate sources — outfalls and stations upstream with their latest
    values — nearest first along the network, as they were when the alert was raised."""
    service.require_reader(workflow, principal)
    return endpoint_rules.strip_fields(principal, "chiefs", await service.alert_detail(conn, rules, alert_id))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert (a chief it is routed to, or an admin)",
    responses={**ERRORS, 409: {"description": "Already acknowledged"}},
)
async def acknowledge_alert(
    alert_id: AlertId,
    request: Request,
    conn: Connection,
    principal: Caller,
    rules: Rules,
    workflow: WorkflowRules,
    body: Annotated[Acknowledgement | None, Body()] = None,
) -> dict[str, Any]:
    service.require_reader(workflow, principal)
    context = AuditContext.of(principal, client_address(request), request_id(request))
    note = body.note if body is not None else ""
    detail = await service.acknowledge(conn, rules, workflow, principal, context, alert_id, note)
    return endpoint_rules.strip_fields(principal, "chiefs", detail)
