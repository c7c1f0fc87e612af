"""Application factory: ``create_app(settings)`` builds the FastAPI app and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from gis_service import access
from gis_service.errors import add_exception_handlers
from gis_service.fastpath import EcoMapAPI
from gis_service.routers import analysis, archives, config, health, layers, ogc, ogc_tiles, rasters, tiles, zone_check
from gis_service.routers import revisions as revisions_router
from gis_service.runtime import runtime
from gis_service.settings import Settings
from layers.catalog import LiveCatalog

DESCRIPTION = """
**EcoMap Xiamen (生态环境一张图)**: ecological protection red lines, protected areas,
drinking-water source zones, watersheds, rivers, bays and monitoring stations of Xiamen,
served from PostGIS as vector tiles and JSON.

The demo dataset is **sample data** (flagged `is_sample`), not official boundaries.
Errors answer `{"detail": "..."}` with a 4xx status saying what to fix.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. Settings default to the ``ECOMAP_*`` environment, read now."""
    settings = settings or Settings()
    live = LiveCatalog(settings.catalog_dir, settings.rasters.catalog_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime(settings, live.current(), current_catalog=live.current) as running:
            app.state.pool = running.pool
            app.state.tile_engine = running.engine
            app.state.change_listener = running.listener
            app.state.raster_tiler = running.rasters
            yield

    app = EcoMapAPI(  # plain tile requests take a fast path in front of the middleware
        title="EcoMap Xiamen API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog = live  # read through routers.deps.get_catalog: rasters registered later included
    add_exception_handlers(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.include_router(health.router)
    app.include_router(layers.router)
    app.include_router(config.router)
    app.include_router(revisions_router.router)
    app.include_router(rasters.router)  # before the vector tiles: /tiles/raster/... is more specific
    app.include_router(tiles.router)
    app.include_router(ogc_tiles.router)
    app.include_router(archives.router)
    app.include_router(ogc.router)
    app.include_router(zone_check.router)
    app.include_router(analysis.router)
    app.include_router(access.router)  # /api/auth, /api/admin, /api/audit

    if (settings.frontend_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    else:

        @app.get("/", include_in_schema=False)
        async def frontend_missing() -> JSONResponse:
            return JSONResponse(
                {"detail": f"the map frontend is not built (no {settings.frontend_dir}/index.html): run `make run`"},
                status_code=503,
            )

    return app
