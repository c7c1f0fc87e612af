"""Shared request dependencies: the pool connection, the catalog, the zonal-statistics rasters, the base URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from psycopg import AsyncConnection

from gis_service.db import connection
from gis_service.services.raster_stats import ZonalRasters
from layers.catalog import Catalog


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the duration of a request."""
    async with connection(request.app.state.pool) as conn:
        yield conn


def get_catalog(request: Request) -> Catalog:
    """The catalog now: its vector layers, and the rasters registered so far."""
    return request.app.state.catalog.current()


def get_vendor_dir(request: Request) -> Path:
    """Where the frontend build keeps the third-party files standalone pages inline (Leaflet)."""
    return request.app.state.settings.frontend_dir / "vendor"


def get_zonal_rasters(request: Request) -> ZonalRasters:
    """The land-cover, elevation and slope rasters zonal statistics read (first of each role)."""
    return ZonalRasters.from_catalog(get_catalog(request), request.app.state.settings.rasters.data_dir)


def base_url(request: Request) -> str:
    """The external base URL of the service, for links in documents."""
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")
