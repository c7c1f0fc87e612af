"""Zone check and its printable report: ``POST /api/zone-check`` and ``/api/zone-check/report``.

Both take JSON — a bare GeoJSON geometry, Feature or FeatureCollection, or the wrapped form
``{"geometry": ..., "buffer_m", "crs", "station_radius_m"}`` — or a multipart upload
(``file`` = GeoJSON, zipped Shapefile, GeoPackage or KML/KMZ, with the same options as form
fields). The body is read here (capped); parsing and checking the site is CPU work and runs
in a worker thread (``services.site``), so other requests are not kept waiting.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from psycopg import AsyncConnection
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from gis_service.access import endpoint_rules, layer_rules, policy
from gis_service.access.limits import RATE_LIMITED, rate_limited
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from gis_service.routers.deps import get_catalog, get_connection, get_site_region, get_vendor_dir, get_zonal_rasters
from gis_service.rules import RuleSet, load_rules
from gis_service.services import site as site_input
from gis_service.services import zone_check as service
from gis_service.services.raster_stats import ZonalRasters
from gis_service.services.report import zone_check_report, zone_check_report_data
from gis_service.services.site import ZoneCheckOptions
from layers.catalog import Catalog
from layers.regions import Region

router = APIRouter(prefix="/api", tags=["zone check"])

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
    "buffer_m": {"type": "number", "minimum": 0, "maximum": site_input.MAX_BUFFER_M, "default": 0},
    "crs": {"type": "string", "enum": list(site_input.INPUT_CRS), "default": "EPSG:4326"},
    "station_radius_m": {
        "type": "number",
        "minimum": 0,
        "maximum": site_input.MAX_STATION_RADIUS_M,
        "default": 3000,
    },
}
_GEOJSON = {
    "type": "object",
    "description": "A GeoJSON geometry (Point, LineString, Polygon, Multi*, GeometryCollection), Feature or "
    "FeatureCollection, in WGS84 lon/lat unless `crs` says otherwise",
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "enum": [
                "Point",
                "MultiPoint",
                "LineString",
                "MultiLineString",
                "Polygon",
                "MultiPolygon",
                "GeometryCollection",
                "Feature",
                "FeatureCollection",
            ],
        }
    },
}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {**_GEOJSON, "title": "GeoJSON (default options)"},
                        {
                            "title": "Wrapped, with options",
                            "type": "object",
                            "required": ["geometry"],
                            "properties": {"geometry": _GEOJSON, **_OPTIONS_SCHEMA},
                        },
                    ]
                },
                "examples": {
                    "wrapped": {"summary": "A polygon with options", "value": EXAMPLE},
                    "geometry": {
                        "summary": "A bare GeoJSON point",
                        "value": {"type": "Point", "coordinates": [118.1, 24.5]},
                    },
                    "feature": {
                        "summary": "A Feature",
                        "value": {"type": "Feature", "properties": {"name": "拟选址"}, "geometry": EXAMPLE["geometry"]},
                    },
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"GeoJSON, zipped Shapefile, GeoPackage or KML/KMZ, at most "
                            f"{site_input.MAX_UPLOAD_BYTES // 2**20} MB "
                            f"({site_input.MAX_UNZIPPED_BYTES // 2**20} MB unzipped)",
                        },
                        **_OPTIONS_SCHEMA,
                    },
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Malformed or invalid geometry or options, nesting too deep, or a site outside the "
        "deployment's region (ECOMAP_REGION); the message says what to fix"
    },
    413: {"description": "Too many vertices or parts, too large an area, or too large an upload (or unzipped)"},
    415: {"description": "Unsupported content type or file format"},
    **RATE_LIMITED,
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
    if declared.isdigit() and int(declared) > site_input.MAX_UPLOAD_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"the request is larger than {site_input.MAX_UPLOAD_BYTES // 2**20} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > site_input.MAX_UPLOAD_BYTES + 64 * 1024:
            raise PayloadTooLarge(f"the request is larger than {site_input.MAX_UPLOAD_BYTES // 2**20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_site(request: Request, region: Region) -> tuple[site_input.Site, ZoneCheckOptions]:
    """Parse a JSON or multipart zone-check request into a checked site and its options."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_capped(request)
    if content_type == "application/json" or content_type.endswith("+json"):
        return await to_thread.run_sync(partial(site_input.site_from_json, body, region))
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
        site = await to_thread.run_sync(partial(site_input.site_from_upload, content, options, region))
        return site, options
    raise UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}: send application/json with a GeoJSON geometry, "
        "Feature or FeatureCollection, or multipart/form-data with a `file`"
    )


async def _check(
    request: Request,
    conn: AsyncConnection,
    catalog: Catalog,
    rules: RuleSet,
    rasters: ZonalRasters,
    region: Region,
    principal: Principal,
) -> tuple[site_input.Site, dict[str, Any]]:
    """Check the caller may read every layer the check weighs (the rules' layers and the
    stations) and the rasters it measures: refused (401/403 naming them) rather than answered
    with overlaps missing,
    read the site from the request and check it; chiefs' fields hidden from the caller are left out."""
    weighed = [catalog.get(layer) for layer in [*rules.layers, "station"] if layer in catalog]
    layer_rules.require_layers(principal, [*weighed, *layer_rules.zonal_rasters(catalog)])
    site, options = await read_site(request, region)
    result = await service.zone_check(
        conn,
        catalog,
        rules,
        site,
        buffer_m=options.buffer_m,
        station_radius_m=options.station_radius_m,
        rasters=rasters,
        scope=await policy.scope_on(conn, catalog, principal),
    )
    return site, endpoint_rules.strip_fields(principal, "chiefs", result)


@router.post(
    "/zone-check",
    summary="Check a proposed site against red lines, protected areas, water-source zones…",
    openapi_extra=REQUEST_BODY,
    response_class=JSONResponse,
    responses={200: {"description": "Verdict, reasons, overlaps, chiefs, stations, land cover, terrain"}, **ERRORS},
    dependencies=[rate_limited("zone_check")],
)
async def zone_check(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    rules: RuleSet = Depends(get_rules),
    rasters: ZonalRasters = Depends(get_zonal_rasters),
    region: Region = Depends(get_site_region),
    principal: Principal = Depends(current_principal),
) -> Response:
    """Every red line, protected-area zone, drinking-water source zone, watershed, bay, river segment
    and district the site touches (overlap in m² and share of the site, on the ellipsoid; for a river
    segment crossing an area site, `overlap_length_m`, its length inside the site), those within
    `buffer_m` (with their distance), the chiefs of the rivers/bays/watersheds involved, the stations
    within `station_radius_m` (nearest first), and a verdict — `prohibited`, `restricted`, `caution` or
    `clear` — with its reasons, from the rules in `gis_service/rules/zone_check.yaml`.

    `rasters` gives the land the site takes: `land_cover` (km² and % per class, largest first,
    `nodata_km2`) and `terrain` (elevation min/mean/max in m, slope mean/max in °), with exact pixel
    coverage and areas on the ellipsoid. A polygon is measured as drawn (the buffer only widens the
    search); points and lines are measured over their buffer when `buffer_m` > 0, otherwise at the
    cells under them (shares by count or length). `rasters.zone` says which (`basis`, `measure`).

    The body is a bare GeoJSON geometry, Feature or FeatureCollection (default options), the
    wrapped form `{"geometry": …, "buffer_m": …, "crs": …, "station_radius_m": …}`, or a file upload.

    Limits, checked before the work: 20,000 vertices, 1,000 parts, nesting 8 levels deep, 500 km²
    (on the ellipsoid), 10 MB uploads (50 MB unzipped), and the site's bounding box within the
    deployment's region (`ECOMAP_REGION`, default Xiamen and its waters). Share is by area for
    polygons, by length for lines and by count for points."""
    _, result = await _check(request, conn, catalog, rules, rasters, region, principal)
    return Response(orjson.dumps(result), media_type="application/json")


@router.post(
    "/zone-check/report",
    summary="Printable report of a zone check (an HTML page, or its words as JSON for a print sheet)",
    openapi_extra=REQUEST_BODY,
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {}, "application/json": {}},
            "description": "A standalone HTML page (`f=html`), or what it says as JSON (`f=json`)",
        },
        **ERRORS,
    },
    dependencies=[rate_limited("report")],
)
async def zone_check_report_page(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    rules: RuleSet = Depends(get_rules),
    rasters: ZonalRasters = Depends(get_zonal_rasters),
    vendor_dir: Path = Depends(get_vendor_dir),
    region: Region = Depends(get_site_region),
    principal: Principal = Depends(current_principal),
    f: Annotated[
        Literal["html", "json"],
        Query(description="`html`: the standalone page; `json`: its words, for the map's print tool"),
    ] = "html",
) -> Response:
    """The zone check as a standalone page: a map of the site with the overlapping zones and nearby
    stations, the verdict and reasons, the tables, the data revisions and the date. Print it from the
    browser (A4 print styles included).

    With `f=json`, what the page says as data, each text in Chinese and English (`zh`, `en`): the
    verdict and reasons, the site, the overlaps with their spatial relation (`within`, `contains`,
    `crosses`, `overlaps`, `touches` = boundary contact only, `near`) and `amount` (an area for
    zones, a length for lines), each chief once with the units they answer for, the stations, the
    local time and `sample_data`. The map UI composes its printed report (PDF/PNG, A4/A3) from it."""
    site, result = await _check(request, conn, catalog, rules, rasters, region, principal)
    if f == "json":
        data = await zone_check_report_data(conn, catalog, site, result, rules)
        return Response(orjson.dumps(data), media_type="application/json")
    html = await zone_check_report(conn, catalog, site, result, vendor_dir, rules)
    return HTMLResponse(html)
