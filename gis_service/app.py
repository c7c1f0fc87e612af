"""Application factory: ``create_app(settings)`` builds the FastAPI app and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from gis_service import access
from gis_service.access import endpoint_rules, revocation
from gis_service.access.headers import SecurityHeaders
from gis_service.errors import add_exception_handlers
from gis_service.fastpath import EcoMapAPI
from gis_service.federation import routes as federation_routes
from gis_service.federation.config import RemoteLayers, load_remote_layers
from gis_service.federation.refresher import running_refresher
from gis_service.monitoring import sta
from gis_service.monitoring.ingest.hj212_receiver import running_receiver
from gis_service.monitoring.status import routes as monitoring_status
from gis_service.monitoring.status.events import running_events
from gis_service.openapi import add_documentation_routes, install_openapi, operation_id
from gis_service.region import routes as region_routes
from gis_service.routers import analysis, archives, config, health, layers, ogc, ogc_tiles, rasters, tiles, zone_check
from gis_service.routers import revisions as revisions_router
from gis_service.runtime import runtime
from gis_service.settings import Settings
from gis_service.workflow import routes as workflow_routes
from gis_service.workflow.alerts import routes as alert_routes
from gis_service.workflow.alerts.evaluator import running_alerts
from layers.catalog import LiveCatalog

DESCRIPTION = """
**EcoMap Xiamen (生态环境一张图)**: ecological protection red lines, protected areas,
drinking-water source zones, watersheds, rivers, bays and monitoring stations of Xiamen,
served from PostGIS as vector tiles and JSON.

The demo dataset is **sample data** (flagged `is_sample`), not official boundaries.
Errors answer `{"detail": "..."}` with a 4xx status saying what to fix. Every GET also answers
HEAD (the same status and headers, no body).
"""


class HeadAsGet:
    """Answer ``HEAD`` wherever ``GET`` is served, as HTTP requires: the request runs as a GET and
    the body is dropped, so the status and headers (``Content-Length``, ``ETag``…) are the GET's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def send_without_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


GZIP_LEVEL = 6
NOT_GZIPPED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, archives.PMTILES_MEDIA_TYPE)
"""Media types the service sends as they are (the PMTiles archives: see ``create_app``)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. Settings default to the ``ECOMAP_*`` environment, read now."""
    settings = settings or Settings()
    live = LiveCatalog(settings.catalog_dir, settings.rasters.catalog_dir)
    endpoint_rules.rules().check_catalog(live.current())  # access rules name catalog layers: abort early if not
    remotes = RemoteLayers(load_remote_layers(settings.federation.dir))  # a bad declaration aborts start-up
    remotes.check_ids(live.current())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            runtime(settings, live.current(), current_catalog=live.current, remotes=remotes) as running,
            running_receiver(running.pool, settings.hj212) as hj212_receiver,
            running_events(settings.dsn, running.pool, settings.monitoring) as monitoring_events,
            running_alerts(running.pool, live.current, settings.alerts) as alert_evaluator,
            revocation.listener(settings.dsn),  # access changes drop cached credentials at once
            running_refresher(running.pool, remotes, settings.federation, settings.region) as refresher,
        ):
            app.state.remote_refresher = refresher
            app.state.monitoring_events = monitoring_events
            app.state.alert_evaluator = alert_evaluator
            app.state.hj212_receiver = hj212_receiver
            app.state.pool = running.pool
            app.state.read_router = running.reads
            app.state.tile_engine = running.engine
            app.state.change_listener = running.listener
            app.state.raster_tiler = running.rasters
            yield

    app = EcoMapAPI(  # plain tile requests take a fast path in front of the middleware
        title="EcoMap Xiamen API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # served from the service's own copies of Swagger UI and ReDoc (offline)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.catalog = live  # read through routers.deps.get_catalog: rasters registered later included
    app.state.remote_layers = remotes  # partners' collections copied here (routers.deps.get_map_catalog)
    add_exception_handlers(app)
    install_openapi(app, live.current)
    app.add_middleware(SecurityHeaders, settings=settings.limits)  # inside gzip: hashes the plain page
    # PMTiles archives are read by byte ranges of the file as stored (their tiles are compressed
    # inside): a gzipped body would make the ranges offsets into another representation.
    # Level 6, not Starlette's 9: a 3.3 MB items page (the attribute table's 10,000 rows) takes
    # 23 ms instead of 84 ms to compress here, for 2 % more bytes (307 KB against 302 KB).
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=GZIP_LEVEL, exclude_content_types=NOT_GZIPPED)
    app.add_middleware(HeadAsGet)  # outside gzip: a HEAD reports the GET's encoded length
    add_documentation_routes(app)
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
    workflow_routes.get_workflow()  # a bad workflow.yaml aborts start-up, naming the file and the fault
    app.include_router(workflow_routes.router)  # /api/workflow, /api/issues
    alert_routes.get_alert_rules()  # a bad alert rules file aborts start-up, naming the file and the fault
    app.include_router(alert_routes.router)  # /api/alerts, /api/alert-rules
    app.include_router(sta.router)  # /sta/v1.1: OGC SensorThings API
    app.include_router(monitoring_status.router)  # /api/stations/{id}/..., quality summaries, events
    app.include_router(region_routes.router)  # /api/region: cross-boundary sections, compensation
    app.include_router(federation_routes.router)  # /api/federation: remote layers and their copies

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
