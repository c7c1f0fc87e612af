"""Zone check and its printable report: ``POST /api/zone-check`` and ``/api/zone-check/report``.

Both take either JSON (``{"geometry": ..., "buffer_m", "crs", "station_radius_m"}``) or a
multipart upload (``file`` = GeoJSON, zipped Shapefile or KML/KMZ, with the same options
as form fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from gis_service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from gis_service.routers.deps import get_catalog, get_connection, get_vendor_dir, get_zonal_rasters
from gis_service.rules import RuleSet, load_rules
from gis_service.services import zone_check as service
from gis_service.services.raster_stats import ZonalRasters
from gis_service.services.report import zone_check_report
from layers.catalog import Catalog

router = APIRouter(prefix="/api", tags=["zone check"])


class ZoneCheckOptions(BaseModel):
    """Options of a zone check."""

    model_config = ConfigDict(extra="ignore")

    buffer_m: float = Field(
        default=0, ge=0, le=service.MAX_BUFFER_M, description="Also report features within this distance (m)"
    )
    crs: service.InputCrs = Field(
        default="EPSG:4326", description="CRS of the input coordinates (a file's own .prj/crs wins, except GCJ-02)"
    )
    station_radius_m: float = Field(
        default=3000, ge=0, le=service.MAX_STATION_RADIUS_M, description="Radius for nearby stations (m)"
    )


EXAMPLE = {
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[118.08, 24.47], [118.09, 24.47], [118.09, 24.48], [118.08, 24.48], [118.08, 24.47]]],
    },
    "buffer_m": 200,
    "crs": "EPSG:4326",
    "station_radius_m": 3000,
}
_OPTIONS_SCHEMA = {
    "buffer_m": {"type": "number", "minimum": 0, "maximum": service.MAX_BUFFER_M, "default": 0},
    "crs": {"type": "string", "enum": list(service.INPUT_CRS), "default": "EPSG:4326"},
    "station_radius_m": {"type": "number", "minimum": 0, "maximum": service.MAX_STATION_RADIUS_M, "default": 3000},
}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["geometry"],
                    "properties": {
                        "geometry": {
                            "type": "object",
                            "description": "GeoJSON geometry, Feature or FeatureCollection",
                            "required": ["type"],
                            "properties": {"type": {"type": "string"}},
                        },
                        **_OPTIONS_SCHEMA,
                    },
                },
                "example": EXAMPLE,
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"GeoJSON, zipped Shapefile or KML/KMZ, at most "
                            f"{service.MAX_UPLOAD_BYTES // 2**20} MB",
                        },
                        **_OPTIONS_SCHEMA,
                    },
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed or invalid geometry or options; the message says what to fix"},
    413: {"description": "Too many vertices, too large an area, or too large an upload"},
    415: {"description": "Unsupported content type or file format"},
}


def get_rules(catalog: Catalog = Depends(get_catalog)) -> RuleSet:
    rules = load_rules()
    rules.check_catalog(catalog)
    return rules


def _readable(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}" for item in exc.errors(include_url=False)
    )


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > service.MAX_UPLOAD_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"the request is larger than {service.MAX_UPLOAD_BYTES // 2**20} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > service.MAX_UPLOAD_BYTES + 64 * 1024:
            raise PayloadTooLarge(f"the request is larger than {service.MAX_UPLOAD_BYTES // 2**20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_site(request: Request) -> tuple[service.Site, ZoneCheckOptions]:
    """Parse a JSON or multipart zone-check request into a checked site and its options."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_capped(request)
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
        if not isinstance(document, dict) or "geometry" not in document:
            raise InvalidRequest('the body needs a "geometry": a GeoJSON geometry, Feature or FeatureCollection')
        try:  # options through pydantic; the (possibly huge) geometry is read by GEOS, not pydantic
            options = ZoneCheckOptions.model_validate({k: v for k, v in document.items() if k != "geometry"})
        except ValidationError as exc:
            raise InvalidRequest(f"invalid zone-check request: {_readable(exc)}") from None
        geometry = service.geometry_from_geojson(document["geometry"])
        return service.check_site(geometry, options.crs), options
    if content_type == "multipart/form-data":

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
        except MultiPartException as exc:
            raise InvalidRequest(f"the multipart body cannot be read: {exc.message}") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart request needs a `file` field holding the site file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            options = ZoneCheckOptions.model_validate(fields)
        except ValidationError as exc:
            raise InvalidRequest(f"invalid zone-check options: {_readable(exc)}") from None
        content = await upload.read()
        geometry, crs = service.geometry_from_file(content, options.crs)
        return service.check_site(geometry, crs), options
    raise UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}: send application/json with a GeoJSON geometry, "
        "or multipart/form-data with a `file`"
    )


async def _check(
    request: Request, conn: AsyncConnection, catalog: Catalog, rules: RuleSet, rasters: ZonalRasters
) -> tuple[service.Site, dict[str, Any]]:
    """Read the site from the request and check it."""
    site, options = await read_site(request)
    result = await service.zone_check(
        conn,
        catalog,
        rules,
        site,
        buffer_m=options.buffer_m,
        station_radius_m=options.station_radius_m,
        rasters=rasters,
    )
    return site, result


@router.post(
    "/zone-check",
    summary="Check a proposed site against red lines, protected areas, water-source zones…",
    openapi_extra=REQUEST_BODY,
    response_class=JSONResponse,
    responses={200: {"description": "Verdict, reasons, overlaps, chiefs, stations, land cover, terrain"}, **ERRORS},
)
async def zone_check(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    rules: RuleSet = Depends(get_rules),
    rasters: ZonalRasters = Depends(get_zonal_rasters),
) -> Response:
    """Every red line, protected-area zone, drinking-water source zone, watershed, bay, river segment
    and district the site touches (overlap in m² and share of the site, on the ellipsoid), those within
    `buffer_m` (with their distance), the chiefs of the rivers/bays/watersheds involved, the stations
    within `station_radius_m` (nearest first), and a verdict — `prohibited`, `restricted`, `caution` or
    `clear` — with its reasons, from the rules in `gis_service/rules/zone_check.yaml`.

    `rasters` gives the land the site takes: `land_cover` (km² and % per class, largest first,
    `nodata_km2`) and `terrain` (elevation min/mean/max in m, slope mean/max in °), with exact pixel
    coverage and areas on the ellipsoid. A polygon is measured as drawn (the buffer only widens the
    search); points and lines are measured over their buffer when `buffer_m` > 0, otherwise at the
    cells under them (shares by count or length). `rasters.zone` says which (`basis`, `measure`).

    Limits: 20,000 vertices, 500 km², 10 MB uploads. Share is by area for polygons, by length for
    lines and by count for points."""
    _, result = await _check(request, conn, catalog, rules, rasters)
    return Response(orjson.dumps(result), media_type="application/json")


@router.post(
    "/zone-check/report",
    summary="Printable HTML report of a zone check",
    openapi_extra=REQUEST_BODY,
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "A standalone HTML page"}, **ERRORS},
)
async def zone_check_report_page(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    rules: RuleSet = Depends(get_rules),
    rasters: ZonalRasters = Depends(get_zonal_rasters),
    vendor_dir: Path = Depends(get_vendor_dir),
) -> HTMLResponse:
    """The zone check as a standalone page: a map of the site with the overlapping zones and nearby
    stations, the verdict and reasons, the tables, the data revisions and the date. Print it from the
    browser (A4 print styles included)."""
    site, result = await _check(request, conn, catalog, rules, rasters)
    html = await zone_check_report(conn, catalog, site, result, vendor_dir)
    return HTMLResponse(html)
