"""Shared request dependencies: pool connection, catalog, zonal-statistics rasters, base URL, region."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from psycopg import AsyncConnection

from gis_service.db import connection
from gis_service.services.raster_stats import ZonalRasters
from layers.catalog import Catalog
from layers.regions import Region, get_region


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the duration of a request."""
    async with connection(request.app.state.pool) as conn:
        yield conn


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection for a request that only reads layers (OGC features): a fresh replica's when
    the service has replicas (``gis_service.scaleout.replicas``), else the pool's."""
    router = getattr(request.app.state, "read_router", None)
    if router is None:
        async with connection(request.app.state.pool) as conn:
            yield conn
        return
    async with router.read(lambda: connection(request.app.state.pool)) as conn:
        yield conn


def get_catalog(request: Request) -> Catalog:
    """The catalog now: its vector layers, and the rasters registered so far."""
    return request.app.state.catalog.current()


def get_map_catalog(request: Request) -> Catalog:
    """The catalog with the remote layers (gis_service.federation): what the map, TileJSON and
    tiles show. Feature, edit and OGC routes use ``get_catalog`` (remote copies are read-only)."""
    return request.app.state.remote_layers.map_catalog(get_catalog(request))


def get_vendor_dir(request: Request) -> Path:
    """Where the frontend build keeps the third-party files standalone pages inline (Leaflet)."""
    return request.app.state.settings.frontend_dir / "vendor"


def get_zonal_rasters(request: Request) -> ZonalRasters:
    """The land-cover, elevation and slope rasters zonal statistics read (first of each role)."""
    return ZonalRasters.from_catalog(get_catalog(request), request.app.state.settings.rasters.data_dir)


def base_url(request: Request) -> str:
    """The external base URL of the service, for links in documents (TileJSON, styles, OGC).

    ``ECOMAP_PUBLIC_URL`` when set; else the request's own URL if its ``Host`` is trusted
    (``ECOMAP_ALLOWED_HOSTS``, 127.0.0.1, localhost, the listen host); else the first trusted
    host on this server's port. A ``Host`` header is never reflected as given otherwise: behind a
    shared cache, one request with a forged Host would poison every client's links.
    """
    settings = request.app.state.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    trusted = settings.trusted_hosts
    if host_is_trusted(request.headers.get("host", ""), trusted):
        return str(request.base_url).rstrip("/")
    scheme = request.url.scheme
    server = request.scope.get("server") or (None, None)
    default_port = {"http": 80, "https": 443}.get(scheme)
    first = trusted[0]
    port = f":{server[1]}" if server[1] and server[1] != default_port and ":" not in first else ""
    return f"{scheme}://{first}{port}{request.scope.get('root_path', '')}".rstrip("/")


def host_is_trusted(host: str, trusted: list[str]) -> bool:
    """Whether a ``Host`` header names a trusted host (an entry without a port matches any port)."""
    host = host.strip().lower()
    if not host:
        return False
    if host.startswith("["):  # [::1]:8000
        name = host[: host.find("]") + 1] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in trusted or name in trusted


def get_site_region(request: Request) -> Region:
    """The deployment's region (``ECOMAP_REGION``): sites and locations outside it are refused."""
    return get_region(request.app.state.settings.region)
