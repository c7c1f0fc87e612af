"""The running parts shared by the web app and the CLI: pool, tile engine, change listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gis_service.db import connection, create_pool
from gis_service.errors import DatabaseUnreachable
from gis_service.federation.config import RemoteLayers
from gis_service.federation.store import typed_rows
from gis_service.scaleout.purge import CachePurger
from gis_service.scaleout.replicas import ReadRouter, replica_router
from gis_service.settings import Settings, describe_database
from layers.catalog import Catalog
from tiles.cache import TileCache
from tiles.engine import TileEngine
from tiles.listener import ChangeListener
from tiles.maintenance import GeneralizationScheduler
from tiles.raster import RasterTiler

MB = 1024 * 1024

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def tile_connection(
    pool: AsyncConnectionPool, engine: TileEngine, settings: Settings, router: ReadRouter | None = None
) -> AsyncIterator[AsyncConnection]:
    """A connection for a tile query, failing fast: at once while the database is known
    unreachable (the engine's circuit breaker), else after ``tiles.db_wait_s`` at most; a
    fresh replica's when there are replicas (``gis_service.scaleout.replicas``)."""
    if engine.database_unreachable():
        raise DatabaseUnreachable("the database is unreachable; the service reconnects by itself, try again shortly")
    if router is not None:
        async with router.read(lambda: tile_connection(pool, engine, settings)) as conn:
            yield conn
        return
    acquired = False
    try:
        async with connection(pool, timeout=settings.tiles.db_wait_s) as conn:
            acquired = True
            yield conn
    except DatabaseUnreachable:
        if not acquired:  # no connection to be had (one failing query proves less)
            engine.connection_failed()
        raise


@dataclass
class Runtime:
    pool: AsyncConnectionPool
    engine: TileEngine
    listener: ChangeListener
    rasters: RasterTiler
    reads: ReadRouter | None
    """Where tile and feature reads run (None: no replicas, the pool)."""


@contextlib.asynccontextmanager
async def runtime(
    settings: Settings,
    catalog: Catalog,
    *,
    regeneralize: bool = True,
    current_catalog: Callable[[], Catalog] | None = None,
    remotes: RemoteLayers | None = None,
) -> AsyncIterator[Runtime]:
    """Open the pool, build the tile engine and raster tiler, and keep the cache exact while the context lasts.

    ``current_catalog`` gives the catalog as it is now (``LiveCatalog.current``: rasters
    registered while running); by default ``catalog`` stays as given. ``remotes``: the remote
    layers (gis_service.federation), whose copies the tile engine serves as layers of its own."""
    logger.info("database %s, region %s", describe_database(settings.dsn), settings.region)
    pool = create_pool(settings)
    await pool.open(wait=False)  # start even when the database is down: /healthz reports it
    cache = None
    if settings.tiles.cache_enabled:
        cache = TileCache(
            settings.tiles.cache_memory_mb * MB,
            settings.tiles.cache_dir,
            disk_bytes=settings.tiles.cache_disk_mb * MB,
            variant_bytes=settings.tiles.cache_variant_mb * MB,
        )
    router = None
    if settings.db.replica_urls:
        replica_pools = [
            (url, create_pool(settings, url, f"ecomap-replica-{i}")) for i, url in enumerate(settings.db.replica_urls)
        ]
        for _, replica_pool in replica_pools:
            await replica_pool.open(wait=False)
        router = replica_router(pool, replica_pools, settings.tiles.db_wait_s)
        router.start()
    remotes = remotes or RemoteLayers([])
    map_catalog = remotes.map_catalog(catalog)  # remote layers: tiles and bans, never generalized
    engine = TileEngine(
        map_catalog,
        lambda: tile_connection(pool, engine, settings, router),
        cache,
        settings.tiles.max_renders,
        sources={layer_id: typed_rows(layer) for layer_id, layer in remotes.layers.items()},
    )
    # Same cache as vector tiles; keys carry file revisions.
    rasters = RasterTiler(current_catalog or (lambda: catalog), settings.rasters.data_dir, cache)
    scheduler = GeneralizationScheduler(settings.dsn, catalog)
    purger = None
    if settings.http_cache.purge_urls:
        longest_render_s = settings.tiles.db_wait_s + settings.db.statement_timeout_ms / 1000
        purger = CachePurger(
            settings.http_cache.purge_urls,
            map_catalog,
            repeat_after_s=(settings.http_cache.repeat_ban_after_s, longest_render_s + 1.0),
        )
    listener = ChangeListener(
        settings.dsn,
        engine,
        on_data_change=scheduler.schedule if regeneralize else None,
        on_change=_each(purger.changed if purger is not None else None, router.changed if router else None),
        connect_timeout_s=settings.db.connect_timeout_s,
    )
    listening = asyncio.create_task(listener.run(), name="tile-change-listener")
    try:
        yield Runtime(pool, engine, listener, rasters, router)
    finally:
        rasters.close()
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await scheduler.close()
        if purger is not None:
            await purger.close()
        if router is not None:
            await router.close()
        await pool.close()


def _each(*hooks: Callable[..., None] | None) -> Callable[..., None] | None:
    """One change hook calling each of the given ones (None: no hook)."""
    chosen = [hook for hook in hooks if hook is not None]
    if not chosen:
        return None

    def call(*args: object) -> None:
        for hook in chosen:
            hook(*args)

    return call
