"""HTTP routes of the OGC SensorThings API 1.1 under ``/sta/v1.1`` (thin: parse, call the service, answer).

Reads follow the station layer's access rules (``visibility``); creates need a station API key
(``X-API-Key``, ``Action.PUSH_OBSERVATIONS``) and are recorded in the audit log, one entry per
request with the observations counted per Datastream.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from psycopg import AsyncConnection

from gis_service.access import audit, policy
from gis_service.access.audit import AuditContext
from gis_service.access.policy import Action, CurrentPrincipal, require
from gis_service.access.principal import Principal
from gis_service.access.state import client_address, request_id
from gis_service.errors import InvalidRequest, PayloadTooLarge
from gis_service.monitoring.sta import service
from gis_service.monitoring.sta.entities import BY_PLURAL
from gis_service.monitoring.sta.options import MAX_TOP, parse_path
from gis_service.monitoring.sta.visibility import Model
from gis_service.monitoring.store import PartitionKeeper
from gis_service.routers.deps import base_url, get_catalog, get_connection
from layers.catalog import Catalog

PREFIX = "/sta/v1.1"
router = APIRouter(prefix=PREFIX, tags=["SensorThings API"])
MAX_BODY = 16 * 1024 * 1024

CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
]

Connection = Annotated[AsyncConnection, Depends(get_connection)]
JSON_RESPONSE = {200: {"content": {"application/json": {"schema": {"type": "object"}}}}}
OPTION = "SensorThings query option (see the README, section SensorThings API)"


def _root(request: Request) -> str:
    return base_url(request) + PREFIX


@router.get("", summary="SensorThings service root: entity sets and server settings", responses=JSON_RESPONSE)
async def service_root(request: Request) -> JSONResponse:
    root = _root(request)
    return JSONResponse(
        {
            "value": [{"name": plural, "url": f"{root}/{plural}"} for plural in BY_PLURAL],
            "serverSettings": {"conformance": CONFORMANCE, "maxTop": MAX_TOP},
        }
    )


@router.get(
    "/{resource:path}",
    summary="SensorThings entities: a collection, an entity, a link or a property",
    description=(
        "The resource path below the root: `Things`, `Things(1)`, `Things(1)/Datastreams`,"
        " `Datastreams(5)/Observations`, `ObservedProperties('w01001')`, `Things(1)/name/$value`…"
        f" Collections page by `$top` (default 100, at most {MAX_TOP}) and `$skip`, with `@iot.nextLink`."
        " A property's `/$value` answers text/plain."
    ),
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}, "text/plain": {}}}},
)
async def read(
    request: Request,
    resource: str,
    conn: Connection,
    principal: CurrentPrincipal,
    catalog: Annotated[Catalog, Depends(get_catalog)],
    filter_: Annotated[str | None, Query(alias="$filter", description=OPTION)] = None,
    expand: Annotated[str | None, Query(alias="$expand", description=OPTION)] = None,
    select: Annotated[str | None, Query(alias="$select", description=OPTION)] = None,
    orderby: Annotated[str | None, Query(alias="$orderby", description=OPTION)] = None,
    top: Annotated[str | None, Query(alias="$top", description=f"page size, at most {MAX_TOP}")] = None,
    skip: Annotated[str | None, Query(alias="$skip", description=OPTION)] = None,
    count: Annotated[str | None, Query(alias="$count", description="true: add @iot.count")] = None,
) -> Response:
    if not resource.strip("/"):
        return await service_root(request)
    path = parse_path(resource)
    model = Model.of(principal, catalog, await policy.scope_on(conn, catalog, principal))
    reader = service.Reader(conn, model, _root(request))
    url = f"{_root(request)}/{resource.strip('/')}"
    result = await reader.read(path, list(request.query_params.multi_items()), url)
    if isinstance(result, tuple):  # $value
        value = result[1]
        return Response("" if value is None else str(value), media_type="text/plain")
    return JSONResponse(result)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body is over {MAX_BODY // 1024 // 1024} MiB: send smaller batches")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not JSON ({exc})") from None


def _partitions(request: Request) -> PartitionKeeper:
    keeper = getattr(request.app.state, "sta_partitions", None)
    if keeper is None:
        keeper = request.app.state.sta_partitions = PartitionKeeper()
    return keeper


def _audit(request: Request, principal: Principal, kind: str):
    """The audit entry of a create: one per request, the observations counted per Datastream."""
    context = AuditContext.of(principal, client_address(request), request_id(request))

    async def record(conn: AsyncConnection, created: service.Created) -> None:
        detail = {
            "received": len(created.ids),
            "inserted": created.inserted,
            "datastreams": {str(k): v for k, v in sorted(created.per_datastream.items())},
        }
        await audit.record(conn, context, f"sta.{kind}", target="observations", detail=detail)

    return record


async def _create_one(request: Request, conn: AsyncConnection, principal: Principal, datastream: int | None):
    require(principal, Action.PUSH_OBSERVATIONS)
    row = service.observation_body(await _body(request), datastream, dt.datetime.now(dt.UTC))
    created = await service.store(conn, [row], _partitions(request), _audit(request, principal, "observations.create"))
    link = service.observation_link(_root(request), created.ids[0])
    return JSONResponse({"@iot.id": created.ids[0], "@iot.selfLink": link}, status_code=201, headers={"Location": link})


OBSERVATION_EXAMPLE = {"phenomenonTime": "2026-01-01T08:00:00Z", "result": 7.2, "Datastream": {"@iot.id": 1}}
BATCH_EXAMPLE = [
    {
        "Datastream": {"@iot.id": 1},
        "components": ["phenomenonTime", "result"],
        "dataArray": [["2026-01-01T08:00:00Z", 7.2], ["2026-01-01T09:00:00Z", 7.3]],
    }
]


@router.post(
    "/Observations",
    status_code=201,
    summary="Create an Observation (station API key)",
    description=(
        "Links to its Datastream by `@iot.id`; `parameters.flag` is the HJ 212 data flag (default N)."
        " Re-sending the same (Datastream, phenomenonTime) stores nothing new and answers the same Location."
    ),
    responses={201: {"description": "Created; `Location` names the Observation", "content": {"application/json": {}}}},
)
async def create_observation(
    request: Request,
    conn: Connection,
    principal: CurrentPrincipal,
    _example: Annotated[dict[str, Any] | None, Body(examples=[OBSERVATION_EXAMPLE])] = None,
) -> JSONResponse:
    return await _create_one(request, conn, principal, None)


@router.post(
    "/Datastreams({datastream_id})/Observations",
    status_code=201,
    summary="Create an Observation of a Datastream (station API key)",
    description="As `POST /Observations`, the Datastream named by the path.",
    responses={201: {"description": "Created; `Location` names the Observation", "content": {"application/json": {}}}},
)
async def create_datastream_observation(
    request: Request,
    datastream_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    conn: Connection,
    principal: CurrentPrincipal,
    _example: Annotated[dict[str, Any] | None, Body(examples=[OBSERVATION_EXAMPLE])] = None,
) -> JSONResponse:
    return await _create_one(request, conn, principal, datastream_id)


@router.post(
    "/CreateObservations",
    status_code=201,
    summary="Create Observations in bulk (dataArray extension, station API key)",
    description=(
        f"All or nothing, at most {service.MAX_BATCH} observations; answers the selfLink of each, in order."
        " Observations already stored (same Datastream and phenomenonTime) are left as they are."
    ),
    responses={201: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}},
)
async def create_observations(
    request: Request,
    conn: Connection,
    principal: CurrentPrincipal,
    _example: Annotated[list[dict[str, Any]] | None, Body(examples=[BATCH_EXAMPLE])] = None,
) -> JSONResponse:
    require(principal, Action.PUSH_OBSERVATIONS)
    rows = service.batch_body(await _body(request), dt.datetime.now(dt.UTC))
    created = await service.store(
        conn, rows, _partitions(request), _audit(request, principal, "observations.create_batch")
    )
    root = _root(request)
    return JSONResponse([service.observation_link(root, i) for i in created.ids], status_code=201)
