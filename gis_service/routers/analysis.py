"""Chiefs and their jurisdictions, river network tracing, station catchments and name search."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse
from psycopg import AsyncConnection

from gis_service.access import endpoint_rules, layer_rules, policy
from gis_service.access.limits import RATE_LIMITED, rate_limited
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.errors import InvalidRequest
from gis_service.routers.deps import get_catalog, get_connection, get_site_region, get_vendor_dir
from gis_service.services import chiefs, network
from gis_service.services.features import parse_bbox
from gis_service.services.places import LABEL_MINZOOM, MAX_PLACES, place_labels
from gis_service.services.report import chief_map
from gis_service.services.search import MAX_RESULTS, search
from layers.catalog import Catalog
from layers.regions import Region

router = APIRouter(prefix="/api", tags=["chiefs, rivers and search"])

Id = Annotated[int, Path(ge=1, le=2**31 - 1, description="Feature or chief id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such chief, segment or station"}}


@router.get("/chiefs", summary="River and bay chiefs (河长/湾长)")
async def list_chiefs(
    role: Annotated[Literal["river", "bay"] | None, Query(description="river (河长) or bay (湾长)")] = None,
    level: Annotated[Literal["city", "district", "town", "village"] | None, Query(description="Level")] = None,
    adcode: Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code, e.g. 350212")] = None,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Chiefs filtered by role, level and district, city level first, with their number of units
    (`contact` for signed-in staff only; a caller scoped to an area counts the units inside it)."""
    endpoint_rules.require_group(principal, catalog, "chiefs")
    scope = await policy.scope_on(conn, catalog, principal)
    found = await chiefs.list_chiefs(conn, catalog, role, level, adcode, scope)
    return endpoint_rules.strip_fields(principal, "chiefs", {"chiefs": found})


@router.get("/chiefs/{chief_id}", summary="A chief's jurisdiction", responses=NOT_FOUND)
async def chief_detail(
    chief_id: Id,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """The chief, their rivers/bays/watersheds with extents, the stations and outfalls in them (on a
    segment or within 500 m of it; inside a bay or watershed), and the red lines and protected areas
    that touch them (for a caller scoped to an area: those inside it)."""
    endpoint_rules.require_group(principal, catalog, "chiefs")
    scope = await policy.scope_on(conn, catalog, principal)
    detail = await chiefs.chief_detail(conn, catalog, chief_id, scope)
    return endpoint_rules.strip_fields(principal, "chiefs", detail)


@router.get(
    "/chiefs/{chief_id}/map",
    summary="A chief's jurisdiction as a standalone HTML map",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **NOT_FOUND},
)
async def chief_map_page(
    chief_id: Id,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    vendor_dir: pathlib.Path = Depends(get_vendor_dir),
    principal: Principal = Depends(current_principal),
) -> HTMLResponse:
    """A folium (Leaflet) map of the jurisdiction with its stations, outfalls, red lines and protected areas."""
    endpoint_rules.require_group(principal, catalog, "chiefs")
    scope = await policy.scope_on(conn, catalog, principal)
    return HTMLResponse(await chief_map(conn, catalog, chief_id, vendor_dir, scope))


@router.get("/rivers/{river_id}/upstream", summary="What lies upstream of a river segment", responses=NOT_FOUND)
async def upstream(
    river_id: Id,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Segments upstream (with `distance_km` along the network from this segment's upstream end to
    each segment's downstream end), the watersheds draining to it, and the stations and outfalls on them."""
    endpoint_rules.require_group(principal, catalog, "network")
    scope = await policy.scope_on(conn, catalog, principal)
    return await network.trace(conn, catalog, river_id, "upstream", scope)


@router.get("/rivers/{river_id}/downstream", summary="What lies downstream of a river segment", responses=NOT_FOUND)
async def downstream(
    river_id: Id,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Segments downstream (with `distance_km` from this segment's downstream end), their watersheds,
    stations and outfalls."""
    endpoint_rules.require_group(principal, catalog, "network")
    scope = await policy.scope_on(conn, catalog, principal)
    return await network.trace(conn, catalog, river_id, "downstream", scope)


@router.get("/stations/{station_id}/catchment", summary="The catchment draining to a station", responses=NOT_FOUND)
async def catchment(
    station_id: Id,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Segments and watersheds draining to the station (distances in km from it), stations and outfalls
    upstream, the catchment area, and all of it as a GeoJSON FeatureCollection (`geojson`)."""
    endpoint_rules.require_group(principal, catalog, "network")
    scope = await policy.scope_on(conn, catalog, principal)
    return await network.catchment(conn, catalog, station_id, scope)


@router.get(
    "/search",
    summary="Search coordinates, places, and names across all layers and the chiefs",
    responses=RATE_LIMITED,
    dependencies=[rate_limited("search")],
)
async def search_names(
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="A name (Chinese, English, pinyin or its initials), a code, or coordinates: "
            "`118.1,24.5`, `24.5,118.1`, `24°27′N 118°05′E`, `EPSG:4527 39611495 2711113`",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    region: Region = Depends(get_site_region),
) -> dict[str, Any]:
    """Coordinates the text denotes (layer `coordinate`, with `lon`/`lat` and how they were read),
    gazetteer places (layer `place`, `detail` = the kind of place) and features and chiefs whose
    names match, best first (README "Search" gives the matching rules and scores); each with its
    layer, id, name, English name and bbox to zoom to. Only layers the caller may read are
    searched, by the properties it sees (chiefs: when it may read the chiefs' layers)."""
    layers = layer_rules.readable_layers(principal, catalog)
    with_chiefs = endpoint_rules.may_use(principal, catalog, "chiefs")
    scope = await policy.scope_on(conn, catalog, principal)
    results = await search(conn, layers, q, limit, chiefs=with_chiefs, scope=scope, region=region)
    return {"results": results}


@router.get(
    "/places",
    summary="Gazetteer places as GeoJSON points, for the map's place labels",
    responses={400: {"description": "A malformed bbox or an unknown kind"}, **RATE_LIMITED},
    dependencies=[rate_limited("search")],
)
async def places(
    bbox: Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
    kind: Annotated[
        str | None,
        Query(max_length=300, description=f"Kinds, comma-separated, of: {', '.join(LABEL_MINZOOM)}"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PLACES)] = 500,
    conn: AsyncConnection = Depends(get_connection),
) -> dict[str, Any]:
    """The gazetteer's places (public reference data) as a GeoJSON FeatureCollection: each a
    point with `name_zh`, `name_en`, `kind`, `minzoom` (the zoom from which the map labels that
    kind: districts 9, bays and islands 10, lakes, reservoirs, mountains and towns 11, ports and
    universities 12, subdistricts 12.5, landmarks and stations 13, villages 13.5) and `rank`
    (which label wins a collision, lower first); the most prominent kinds first when `limit`
    cuts the list."""
    kinds = [k.strip() for k in kind.split(",") if k.strip()] if kind else None
    unknown = sorted(set(kinds or []) - set(LABEL_MINZOOM))
    if unknown:
        raise InvalidRequest(f"unknown kind {', '.join(unknown)}; use some of: {', '.join(LABEL_MINZOOM)}")
    box = parse_bbox(bbox) if bbox else None
    return await place_labels(conn, box, kinds, limit)
