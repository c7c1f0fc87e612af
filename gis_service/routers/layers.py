"""The layer catalog API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from psycopg import AsyncConnection

from gis_service.access import layer_rules, policy
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.routers.deps import base_url, get_catalog, get_connection, get_map_catalog, get_zonal_rasters
from gis_service.services.layers import list_layers
from gis_service.services.raster_stats import ZonalRasters, feature_statistics
from layers.catalog import Catalog

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", summary="The layer catalog with tile URLs")
async def layers(
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_map_catalog),
    base: str = Depends(base_url),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Every layer the caller may read (with the properties it sees): titles (zh/en), group,
    geometry type, properties, zoom range, default style, access rules, the data revision and
    sample-data flag, and its vector tile and TileJSON URLs. Remote layers (group `partners`, copies
    of partners' OGC API collections, read-only) carry `remote`: the partner, the source URL and
    `fetched_at` (when the copy was last confirmed current) and `changed_at`."""
    return await list_layers(conn, layer_rules.readable_layers(principal, catalog), base)


@router.get(
    "/layers/{layer}/{feature_id}/stats",
    summary="Land cover and terrain of a red line (or any polygon feature)",
    responses={
        404: {"description": "Unknown or non-polygon layer, or no feature with this id"},
        413: {"description": "The feature spans more raster cells than one request may read"},
    },
)
async def feature_stats(
    layer: Annotated[str, Path(description="A polygon layer, e.g. `redline`, `protected_area`")],
    feature_id: Annotated[int, Path(description="The feature id")],
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    rasters: ZonalRasters = Depends(get_zonal_rasters),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Zonal statistics of one feature, e.g. `GET /api/layers/redline/12/stats`: `land_cover` (km²
    and % of the feature per class, largest first, classes of zero area left out, `nodata_km2`
    for nodata cells and parts off the raster) and `terrain` (elevation min/mean/max in m, slope
    mean/max in °, means weighted by covered area). Pixel coverage is exact (exactextract) and
    areas are on the ellipsoid. `land_cover`/`terrain` are null when the catalog has no raster
    of that role."""
    if layer in catalog:
        layer_rules.require_layers(principal, [catalog.get(layer), *layer_rules.zonal_rasters(catalog)])
    scope = await policy.scope_on(conn, catalog, principal)
    return await feature_statistics(conn, catalog, rasters, layer, feature_id, scope)
