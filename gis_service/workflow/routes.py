"""HTTP API of the chiefs' work: ``/api/workflow`` (states, steps, codes with their labels),
``/api/issues`` (list, report), ``/api/issues/{id}`` (with history and the caller's next
steps), ``POST /api/issues/{id}/transitions`` and ``/comments``; ``/api/patrols`` (start,
points, finish, GPX upload, list, one, and the frequency each chief's level requires)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from psycopg import AsyncConnection

from gis_service.access import endpoint_rules, policy
from gis_service.access.audit import AuditContext
from gis_service.access.limits import RATE_LIMITED, rate_limited
from gis_service.access.policy import current_principal
from gis_service.access.principal import ANONYMOUS, Principal
from gis_service.access.state import client_address, request_id
from gis_service.routers.deps import get_catalog, get_connection, get_site_region
from gis_service.workflow import assessment, file_page, files, map_layers, patrols, photos, public, service
from gis_service.workflow.machine import Workflow, load_workflow
from gis_service.workflow.schemas import (
    FinishPatrol,
    NewComment,
    NewIssue,
    NewPatrol,
    TrackPoints,
    TransitionRequest,
)
from layers.catalog import Catalog
from layers.regions import Region

router = APIRouter(prefix="/api", tags=["issues"])

Connection = Annotated[AsyncConnection, Depends(get_connection)]
Caller = Annotated[Principal, Depends(current_principal)]


def get_workflow() -> Workflow:
    """The validated workflow (``workflow.yaml``, read once; checked when the app is built)."""
    return load_workflow()


WorkflowRules = Annotated[Workflow, Depends(get_workflow)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A field is missing or wrong; the detail says which"},
    401: {"description": "Not signed in"},
    403: {"description": "The caller's role may not do this, or the issue is outside a chief's jurisdiction"},
    404: {"description": "No such issue"},
}


def _context(request: Request, principal: Principal) -> AuditContext:
    return AuditContext.of(principal, client_address(request), request_id(request))


@router.get("/workflow", summary="The issue workflow: states, steps, categories, severities, sources")
async def workflow_rules(workflow: WorkflowRules) -> dict[str, Any]:
    """What ``workflow.yaml`` says, with labels in Chinese and English, for clients to build forms."""
    return workflow.model_dump(mode="json", by_alias=True)


ListFormat = Annotated[
    Literal["json", "geojson"],
    Query(description="json, or geojson: a FeatureCollection for the map (application/geo+json)"),
]
View = Annotated[str | None, Query(description=map_layers.BBOX_HELP, examples=["118.0,24.4,118.2,24.6"])]
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"content": {"application/json": {}, map_layers.GEOJSON: {}}},
}


def _features(collection: dict[str, Any]) -> JSONResponse:
    return JSONResponse(jsonable_encoder(collection), media_type=map_layers.GEOJSON)


@router.get("/issues", summary="Issues, newest first", responses=LIST_RESPONSES)
async def list_issues(
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    state: Annotated[str | None, Query(description="A state id, e.g. assigned")] = None,
    category: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    chief_id: Annotated[int | None, Query(description="Issues a chief is responsible for")] = None,
    river_id: int | None = None,
    bay_id: int | None = None,
    overdue: Annotated[bool | None, Query(description="Past the deadline and not yet handled")] = None,
    open: Annotated[bool, Query(description="Only issues not closed")] = False,
    bbox: View = None,
    f: ListFormat = "json",
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """``f=geojson``: the same issues as points for the map (an area by a point on its surface,
    ``area: true``), with state, category and severity labels and the overdue flag."""
    service.require_reader(workflow, principal)
    view = map_layers.parse_view(bbox)
    issues = await service.list_issues(
        conn,
        state=state,
        category=category,
        severity=severity,
        source=source,
        chief_id=chief_id,
        river_id=river_id,
        bay_id=bay_id,
        overdue=overdue,
        open_only=open,
        bbox=view,
        limit=limit,
        offset=offset,
    )
    if f == "geojson":
        return _features(map_layers.issue_collection(issues, workflow, limit, offset))
    return {"issues": issues, "numberReturned": len(issues), "limit": limit, "offset": offset}


@router.post("/issues", status_code=201, summary="Report an issue", responses=ERRORS)
async def report_issue(
    request: Request,
    response: Response,
    issue: NewIssue,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    catalog: Catalog = Depends(get_catalog),
    region: Region = Depends(get_site_region),
) -> dict[str, Any]:
    """Record a problem at a point or area; its river segment, bay, watershed, district and
    responsible chiefs are found spatially. The same ``idempotency_key`` again answers 200
    with the issue already recorded."""
    record, created = await service.report_issue(
        conn, catalog, region, workflow, principal, _context(request, principal), issue
    )
    if not created:
        response.status_code = 200
    response.headers["location"] = f"/api/issues/{record['id']}"
    return record


@router.get("/issues/{issue_id}", summary="An issue with its history and your next steps", responses=ERRORS)
async def get_issue(issue_id: int, conn: Connection, principal: Caller, workflow: WorkflowRules) -> dict[str, Any]:
    service.require_reader(workflow, principal)
    return await service.issue_detail(conn, workflow, principal, issue_id)


@router.post(
    "/issues/{issue_id}/transitions",
    summary="Move an issue through the workflow",
    responses={**ERRORS, 409: {"description": "That step is not allowed from the issue's current state"}},
)
async def transition_issue(
    issue_id: int,
    step: TransitionRequest,
    request: Request,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
) -> dict[str, Any]:
    """``{"to": "assigned", "department": "…", "deadline": "…"}`` and so on; a step the
    current state does not allow answers 409 naming the steps it does."""
    service.require_reader(workflow, principal)
    return await service.transition_issue(conn, workflow, principal, _context(request, principal), issue_id, step)


@router.post("/issues/{issue_id}/comments", status_code=201, summary="Comment on an issue", responses=ERRORS)
async def comment_issue(
    issue_id: int, comment: NewComment, request: Request, conn: Connection, principal: Caller, workflow: WorkflowRules
) -> dict[str, Any]:
    service.require_reader(workflow, principal)
    return await service.add_comment(conn, principal, _context(request, principal), issue_id, comment)


@router.post("/issues/{issue_id}/photos", status_code=201, summary="Add a photo to an issue", responses=ERRORS)
async def add_issue_photo(
    issue_id: int,
    request: Request,
    response: Response,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP photo (resized to 2048 px, EXIF removed)")],
    caption: Annotated[str, Form(max_length=500)] = "",
) -> dict[str, Any]:
    """The photo is checked, turned upright and re-encoded; where and when its EXIF says it was
    taken is kept; the file is stored under its SHA-256. The same photo sent again to the same
    issue (an offline phone catching up) answers 200 with the one stored first."""
    service.require_reader(workflow, principal)
    settings = request.app.state.settings.workflow
    max_bytes = settings.photo_max_mb * 2**20
    photo = photos.prepare_photo(await file.read(max_bytes + 1), max_bytes)
    record, created = await photos.add_photo(
        conn, settings.photo_dir, principal, _context(request, principal), issue_id, photo, caption
    )
    if not created:
        response.status_code = 200
    return record


@router.get(
    "/issues/{issue_id}/photos/{photo_id}",
    summary="A photo of an issue (JPEG)",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {photos.MEDIA_TYPE: {}}}},
)
async def get_issue_photo(
    issue_id: int, photo_id: int, request: Request, conn: Connection, principal: Caller, workflow: WorkflowRules
) -> FileResponse:
    service.require_reader(workflow, principal)
    path, sha256 = await photos.photo_file(conn, request.app.state.settings.workflow.photo_dir, issue_id, photo_id)
    headers = {"etag": f'"{sha256}"', "cache-control": "private, max-age=86400"}
    return FileResponse(path, media_type=photos.MEDIA_TYPE, headers=headers)


@router.post("/patrols", status_code=201, summary="Start a patrol (chiefs)", responses=ERRORS)
async def start_patrol(
    patrol: NewPatrol, request: Request, response: Response, conn: Connection, principal: Caller
) -> dict[str, Any]:
    """Begin recording a patrol; the same ``idempotency_key`` again answers 200 with the first."""
    record, created = await patrols.start_patrol(conn, principal, _context(request, principal), patrol)
    if not created:
        response.status_code = 200
    response.headers["location"] = f"/api/patrols/{record['id']}"
    return record


@router.post("/patrols/gpx", status_code=201, summary="Record a patrol from a GPX track", responses=ERRORS)
async def patrol_from_gpx(
    request: Request,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    file: Annotated[UploadFile, File(description="A GPX 1.1 file with a timed track (another device's)")],
    note: Annotated[str, Form(max_length=4000)] = "",
    catalog: Catalog = Depends(get_catalog),
    region: Region = Depends(get_site_region),
) -> dict[str, Any]:
    content = await file.read(patrols.MAX_GPX_BYTES + 1)
    return await patrols.import_gpx(
        conn, catalog, region, workflow, principal, _context(request, principal), content, note
    )


@router.get("/patrols/frequency", summary="Patrols done per chief against their level's requirement")
async def patrol_frequency(
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    since: Annotated[dt.datetime, Query(description="Start of the period (with time zone)")],
    until: Annotated[dt.datetime, Query(description="End of the period, excluded")],
) -> dict[str, Any]:
    service.require_reader(workflow, principal)
    rows = await patrols.frequency(conn, workflow, since, until)
    return {"since": since, "until": until, "chiefs": rows}


@router.get("/patrols", summary="Patrols, newest first", responses=LIST_RESPONSES)
async def list_patrols(
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    chief_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bbox: View = None,
    f: ListFormat = "json",
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """``f=geojson``: the finished patrols' tracks as LineStrings for the map, with the chief's
    name, the date (China time), length (m, on the ellipsoid) and duration."""
    service.require_reader(workflow, principal)
    view = map_layers.parse_view(bbox)
    geojson = f == "geojson"
    rows = await patrols.list_patrols(conn, chief_id, since, until, limit, offset, bbox=view, tracks=geojson)
    if geojson:
        return _features(map_layers.patrol_collection(rows, limit, offset))
    return {"patrols": rows, "numberReturned": len(rows), "limit": limit, "offset": offset}


@router.get("/patrols/{patrol_id}", summary="A patrol with its track and what it passed", responses=ERRORS)
async def get_patrol(patrol_id: int, conn: Connection, principal: Caller, workflow: WorkflowRules) -> dict[str, Any]:
    service.require_reader(workflow, principal)
    return await patrols.patrol_detail(conn, patrol_id)


@router.post("/patrols/{patrol_id}/points", summary="Add GPS points to your active patrol", responses=ERRORS)
async def add_patrol_points(
    patrol_id: int,
    track: TrackPoints,
    conn: Connection,
    principal: Caller,
    region: Region = Depends(get_site_region),
) -> dict[str, Any]:
    """Points re-sent (an offline phone catching up) are stored once: one point per time."""
    return await patrols.add_points(conn, region, principal, patrol_id, track.points)


@router.post("/patrols/{patrol_id}/finish", summary="Finish your patrol", responses=ERRORS)
async def finish_patrol(
    patrol_id: int,
    body: FinishPatrol,
    request: Request,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    catalog: Catalog = Depends(get_catalog),
) -> dict[str, Any]:
    """The track is made from the points in time order, measured on the ellipsoid, and the
    river segments and bays within the workflow's patrol buffer are recorded as passed."""
    return await patrols.finish_patrol(
        conn, catalog, workflow, principal, _context(request, principal), patrol_id, body.note
    )


@router.post(
    "/public-reports",
    status_code=201,
    summary="Report pollution (anyone; rate-limited)",
    dependencies=[rate_limited("public_report")],
    responses={**ERRORS, **RATE_LIMITED},
)
async def public_report(
    request: Request,
    conn: Connection,
    workflow: WorkflowRules,
    title: Annotated[str, Form(min_length=1, max_length=200, description="What you saw")],
    category: Annotated[str, Form(description="A category id of GET /api/workflow")],
    lon: Annotated[float, Form(ge=-180, le=180)],
    lat: Annotated[float, Form(ge=-90, le=90)],
    description: Annotated[str, Form(max_length=4000)] = "",
    contact: Annotated[str | None, Form(max_length=200, description="Phone or e-mail (seen by staff only)")] = None,
    idempotency_key: Annotated[str | None, Form(min_length=8, max_length=128)] = None,
    photo: Annotated[UploadFile | None, File(description="A JPEG, PNG or WebP photo")] = None,
    catalog: Catalog = Depends(get_catalog),
    region: Region = Depends(get_site_region),
) -> dict[str, Any]:
    """Enters the workflow as 上报 (reported); the answer's ``tracking_code`` (shown once) opens
    ``GET /api/public-reports/{code}``, the report's state — nothing else."""
    settings = request.app.state.settings.workflow
    max_bytes = settings.photo_max_mb * 2**20
    prepared = photos.prepare_photo(await photo.read(max_bytes + 1), max_bytes) if photo is not None else None
    issue = NewIssue(
        title=title,
        description=description,
        category=category,
        source="public",
        geometry={"type": "Point", "coordinates": [lon, lat]},
        idempotency_key=idempotency_key,
    )
    return await public.report(
        conn, catalog, region, workflow, _context(request, ANONYMOUS), issue, contact, prepared, settings.photo_dir
    )


@router.get("/public-reports/{code}", summary="The state of your public report", responses={404: ERRORS[404]})
async def public_report_status(code: str, conn: Connection, workflow: WorkflowRules) -> dict[str, Any]:
    return await public.status(conn, workflow, code)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/assessment",
    summary="Assessment (考核) per chief and district for a period",
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}, XLSX: {}}}},
)
async def get_assessment(
    request: Request,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    since: Annotated[dt.datetime, Query(description="Start of the period (with time zone)")],
    until: Annotated[dt.datetime, Query(description="End of the period, excluded (a year at most)")],
    f: Annotated[
        Literal["json", "csv", "xlsx"], Query(description="json, csv (per chief) or xlsx (both sheets)")
    ] = "json",
    catalog: Catalog = Depends(get_catalog),
) -> Response:
    """Patrols done vs required, issues reported, closed, handled on time or late, and overdue;
    sections and section-months meeting their target; alerts opened and unresolved."""
    service.require_reader(workflow, principal)
    result = await assessment.assess(conn, workflow, catalog, since, until)
    name = f"assessment-{since.date()}-{until.date()}"
    if f == "csv":
        return Response(
            assessment.as_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}.csv"'},
        )
    if f == "xlsx":
        return Response(
            assessment.as_xlsx(result),
            media_type=XLSX,
            headers={"content-disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return JSONResponse(jsonable_encoder(result))


FILE_RESPONSES = {**ERRORS, 200: {"content": {"application/json": {}, "text/html": {}}}}
FileFormat = Annotated[
    Literal["json", "html"], Query(description="json, or html: the printable page (bilingual, print CSS)")
]
TrendMonth = Annotated[
    str | None,
    Query(description="Last month of the sections' 12-month trend, YYYY-MM (default: this month)"),
]


def _file_answer(principal: Principal, workflow: Workflow, catalog: Catalog, file: dict[str, Any], f: str) -> Response:
    """A file as JSON or as its printable page, without the chiefs' fields the caller may not see."""
    file = endpoint_rules.strip_fields(principal, "chiefs", file)
    if f == "html":
        return HTMLResponse(file_page.render_file_page(file, workflow, catalog))
    return JSONResponse(jsonable_encoder(file))


@router.get("/rivers/{segment_id}/file", summary="One file per river (一河一档)", responses=FILE_RESPONSES)
async def river_file(
    segment_id: int,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    catalog: Catalog = Depends(get_catalog),
    month: TrendMonth = None,
    f: FileFormat = "json",
) -> Response:
    """The river one segment belongs to: segments and targets, chiefs, sections with their current
    class and 12-month trend, stations with latest values and outfalls, red lines and protected
    areas it crosses, issues, patrols, upstream and downstream segments."""
    service.require_reader(workflow, principal)
    endpoint_rules.require_group(principal, catalog, "chiefs")
    last = files.parse_month(month)
    scope = await policy.scope_on(conn, catalog, principal)
    return _file_answer(principal, workflow, catalog, await files.river_file(conn, catalog, segment_id, scope, last), f)


@router.get("/bays/{bay_id}/file", summary="One file per bay (一湾一档)", responses=FILE_RESPONSES)
async def bay_file(
    bay_id: int,
    conn: Connection,
    principal: Caller,
    workflow: WorkflowRules,
    catalog: Catalog = Depends(get_catalog),
    month: TrendMonth = None,
    f: FileFormat = "json",
) -> Response:
    """The bay unit's file: as the river's, without segments and neighbours."""
    service.require_reader(workflow, principal)
    endpoint_rules.require_group(principal, catalog, "chiefs")
    last = files.parse_month(month)
    scope = await policy.scope_on(conn, catalog, principal)
    return _file_answer(principal, workflow, catalog, await files.bay_file(conn, catalog, bay_id, scope, last), f)
