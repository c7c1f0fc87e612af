"""The layer catalog API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from psycopg import AsyncConnection

from gis_service.routers.deps import base_url, get_catalog, get_connection
from gis_service.services.layers import list_layers
from layers.catalog import Catalog

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", summary="The layer catalog with tile URLs")
async def layers(
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
) -> dict[str, Any]:
    """Every layer: titles (zh/en), group, geometry type, properties, zoom range, default style,
    the data revision and sample-data flag, and its vector tile and TileJSON URLs."""
    return await list_layers(conn, catalog, base)
