"""Revisions of red lines and protected areas, features as of a revision or date, exports."""

from __future__ import annotations

import shutil
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from psycopg import AsyncConnection
from starlette.background import BackgroundTask

from gis_service.access import layer_rules, policy
from gis_service.access.limits import RATE_LIMITED, rate_limited
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.routers.deps import get_catalog, get_connection
from gis_service.services import revisions as service
from gis_service.services.revisions import MAX_IDS_LENGTH, MAX_SELECTED_IDS
from layers.catalog import Catalog
from layers.exporter import FORMATS
from layers.filters import MAX_FILTER_LENGTH

router = APIRouter(prefix="/api/layers", tags=["revisions"])

NOT_FOUND = {404: {"description": "Unknown layer or revision, or a layer without history"}}
LayerId = Annotated[str, Path(description="Layer id", examples=["redline"])]
Revision = Annotated[int | None, Query(ge=0, description="Revision number (0 = before the first revision)")]
AsOf = Annotated[
    str | None,
    Query(
        description="The layer in force on a date or date-time by legal validity (the revisions' `valid_from`); "
        "ISO 8601, a date means the end of that day, China time",
        examples=["2024-01-01"],
    ),
]
LoadedAsOf = Annotated[
    str | None,
    Query(
        description="The layer as it was loaded at a date or date-time (the revisions' `created_at`), "
        "whatever their validity; ISO 8601, China time by default",
        examples=["2025-06-30T12:00:00+08:00"],
    ),
]


@router.get("/{layer}/revisions", summary="Revisions of a layer, newest first", responses=NOT_FOUND)
async def revisions(
    layer: LayerId,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Each revision: number, time, author, origin (import / sql / migration), source file and
    SHA-256, approval document, note, and the features it added, removed and changed (for a
    caller scoped to an area, counted in what it reads: the features inside)."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    return await service.list_revisions(conn, chosen, await policy.scope_on(conn, catalog, principal))


@router.get("/{layer}/diff", summary="What changed between two revisions", responses=NOT_FOUND)
async def diff(
    layer: LayerId,
    start: Annotated[int | None, Query(alias="from", ge=0, description="Older revision (default: to - 1)")] = None,
    end: Annotated[int | None, Query(alias="to", ge=0, description="Newer revision (default: the latest)")] = None,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Features added, removed and changed (with the properties that changed), and the area of
    the layer at both revisions and the area gained and lost, in km² on the WGS84 ellipsoid
    (for a caller scoped to an area: of the features inside it at each revision)."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    return await service.diff(conn, chosen, start, end, await policy.scope_on(conn, catalog, principal))


@router.get(
    "/{layer}/features",
    summary="Features of a layer as GeoJSON, current or as of a revision or date",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}, **NOT_FOUND},
)
async def features(
    layer: LayerId,
    request: Request,
    revision: Revision = None,
    asof: AsOf = None,
    loaded_asof: LoadedAsOf = None,
    limit: Annotated[int, Query(ge=1, le=50_000, description="Features per page")] = 10_000,
    offset: Annotated[int, Query(ge=0, description="Features to skip")] = 0,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> Response:
    """A FeatureCollection (WGS84) ordered by feature id, with the `revision` it shows.
    `revision`/`asof`/`loaded_asof` are available for layers with history (redline, protected_area):
    `asof` is the revision in force on that day by validity, `loaded_asof` the one loaded by then."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    scope = await policy.scope_on(conn, catalog, principal)
    body, more, number = await service.features_geojson(conn, chosen, revision, asof, limit, offset, scope, loaded_asof)
    headers = {"Cache-Control": "no-cache"}
    if number is not None:
        headers["X-Layer-Revision"] = str(number)
    if more:
        headers["Link"] = f'<{request.url.include_query_params(offset=offset + limit, limit=limit)}>; rel="next"'
    return Response(body, media_type="application/geo+json", headers=headers)


@router.get(
    "/{layer}/export",
    summary="Download a layer as GeoPackage, Shapefile (zip), GeoJSON, CSV or KML",
    response_class=FileResponse,
    responses={200: {"content": {f.media_type: {} for f in FORMATS.values()}}, **NOT_FOUND, **RATE_LIMITED},
    dependencies=[rate_limited("export")],
)
async def export(
    layer: LayerId,
    request: Request,
    format: Annotated[
        Literal["gpkg", "geojson", "shp", "csv", "kml"], Query(description="File format (shp = zip with .prj/.cpg)")
    ] = "gpkg",
    crs: Annotated[str | None, Query(description="Output CRS, e.g. EPSG:4548 (default EPSG:4326)")] = None,
    revision: Revision = None,
    asof: AsOf = None,
    loaded_asof: LoadedAsOf = None,
    filter_text: Annotated[
        str | None,
        Query(
            alias="filter",
            max_length=MAX_FILTER_LENGTH,
            description="CQL2 filter over the layer's properties (as on `/ogc/collections/{layer}/items`)",
        ),
    ] = None,
    filter_lang: Annotated[
        Literal["cql2-text", "cql2-json"], Query(alias="filter-lang", description="Encoding of `filter`")
    ] = "cql2-text",
    ids: Annotated[
        str | None,
        Query(
            description=f"Only these feature ids, separated by commas (a selection of at most {MAX_SELECTED_IDS})",
            max_length=MAX_IDS_LENGTH,
            pattern=r"^[0-9, ]*$",
        ),
    ] = None,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> FileResponse:
    """The layer (current, or as of a revision or date) in the chosen format and CRS, with every
    property the caller may see and the feature id; with `filter` (CQL2) and/or `ids` only the
    features matching (what the map and the attribute table show). Attributes are UTF-8 (shapefiles carry a
    .cpg saying so). An export holding non-public content is recorded in the audit log."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    scope = await policy.scope_on(conn, catalog, principal)
    selection = service.ExportSelection(filter_text, filter_lang, ids)
    result = await service.export(conn, chosen, format, crs, revision, asof, scope, loaded_asof, selection)
    detail = {"format": format, "crs": crs, "revision": revision, "asof": asof, "loaded_asof": loaded_asof}
    detail |= {"filter": filter_text, "ids": None if ids is None else len(ids.split(","))}
    detail["features"] = result.features
    await layer_rules.audit_sensitive_read(conn, request, principal, chosen, "layer.export", detail)
    return FileResponse(
        result.path,
        media_type=FORMATS[format].media_type,
        filename=result.path.name,
        headers={"Cache-Control": "no-cache", "X-Feature-Count": str(result.features)},
        background=BackgroundTask(shutil.rmtree, result.path.parent, ignore_errors=True),
    )
