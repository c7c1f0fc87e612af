"""The ``ecomap`` command line: serve, migrate, load the demo data."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gis_service import cli_access, cli_monitoring
from gis_service.cli_data import data_app, database_url, places_app, unreachable
from gis_service.cli_rasters import raster_app
from gis_service.federation import cli as federation_cli
from gis_service.settings import Settings, describe_database

if TYPE_CHECKING:
    from layers.demo import DemoDataset

app = typer.Typer(
    help="EcoMap Xiamen (生态环境一张图): PostGIS-backed eco-environment map service.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
demo_app = typer.Typer(help="The Xiamen demo dataset (sample data, not official boundaries).", no_args_is_help=True)
tiles_app = typer.Typer(help="Vector tiles: generalization, seeding, offline export.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(tiles_app, name="tiles")
app.add_typer(data_app)  # import, export, revisions, diff
app.add_typer(places_app, name="places")  # the gazetteer
app.add_typer(raster_app, name="raster")  # raster add, list, remove
cli_access.register(app)  # users, keys, audit
cli_monitoring.register(app)  # hj212 simulate
federation_cli.register(app)  # federation refresh, list


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


_ANNOUNCED: list[str] = []


def _database_url() -> str:
    """The database as the owner role (``settings.owner_database_url``: ECOMAP_DATABASE_OWNER_URL,
    else DATABASE_URL, else the local cluster on ECOMAP_PG_PORT), named on stderr once per command."""
    url = database_url(announce=not _ANNOUNCED)
    _ANNOUNCED.append(url)
    return url


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply migrations (default: all of them)."""
    from layers import db

    url = _database_url()
    try:
        db.upgrade(url, revision)
    except OperationalError as exc:
        _fail(unreachable(url, exc.orig))
    typer.echo(f"database migrated to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision ('base' = empty)")]) -> None:
    """Revert migrations down to a revision."""
    from layers import db

    db.downgrade(_database_url(), revision)
    typer.echo(f"database downgraded to {revision}")


@demo_app.command("load")
def demo_load(
    force: Annotated[bool, typer.Option("--force", help="Replace existing data with the demo dataset")] = False,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when layers already hold data")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the generator")] = 2025,
) -> bool:
    """Load the Xiamen demo dataset in one transaction."""
    from layers.db import make_engine
    from layers.demo import build_demo_dataset, load_demo
    from layers.models import LAYER_TABLES

    url = _database_url()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            existing = sum(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in LAYER_TABLES)
            if existing and if_empty:
                typer.echo(f"demo data not loaded: the layers already hold {existing} features")
                return False
            if existing and not force:
                _fail(f"the layers already hold {existing} features; use --force to replace them with the demo data")
            if existing:
                conn.execute(text("TRUNCATE chief_assignment, chief, " + ", ".join(LAYER_TABLES) + " CASCADE"))
            dataset = build_demo_dataset(seed)
            counts = load_demo(conn, dataset)
    except OperationalError as exc:
        _fail(unreachable(url, exc.orig))
    typer.echo("demo data loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if counts.get("observation"):
        import asyncio

        from gis_service.monitoring.status.service import refresh_all_status

        asyncio.run(refresh_all_status(url))  # the stations' class / AQI now, not at the service's first start
    tiles_generalize(layers=None)
    _write_demo_rasters(seed, force=False, dataset=dataset)
    cli_access.ensure_demo_accounts()  # one account per role, passwords printed once
    return True


@demo_app.command("rasters")
def demo_rasters(
    force: Annotated[bool, typer.Option("--force", help="Regenerate even when the files are up to date")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the generator")] = 2025,
) -> None:
    """Generate the demo rasters (land cover, DEM, slope: sample data) as COGs into the raster
    data directory (ECOMAP_RASTERS__DATA_DIR); skipped when present and made by this version."""
    _write_demo_rasters(seed, force)


def _write_demo_rasters(seed: int, force: bool, dataset: DemoDataset | None = None) -> None:
    from layers.demo.rasters import write_demo_rasters

    data_dir = Settings().rasters.data_dir
    try:
        written = write_demo_rasters(data_dir, dataset, seed=seed, force=force)
    except OSError as exc:
        _fail(f"cannot write the demo rasters into {data_dir}: {exc}")
    if written:
        typer.echo(f"demo rasters written to {data_dir}: " + ", ".join(p.name for p in written.values()))
    else:
        typer.echo(f"demo rasters in {data_dir} are up to date")


@tiles_app.command("generalize")
def tiles_generalize(
    layers: Annotated[list[str] | None, typer.Option("--layer", help="Only this layer (repeatable)")] = None,
    if_dirty: Annotated[
        bool,
        typer.Option(
            "--if-dirty",
            help="Only layers with features edited since, and not already in progress; only around the edits",
        ),
    ] = False,
) -> None:
    """Recompute the low-zoom generalized geometry of polygon and line layers."""
    import psycopg

    from layers.catalog import load_catalog
    from tiles.generalize import generalize_catalog
    from tiles.maintenance import regenerate_if_dirty

    catalog = load_catalog()
    for layer_id in layers or []:
        if layer_id not in catalog:
            _fail(f"unknown layer {layer_id!r}; valid layers: {', '.join(catalog.ids)}")
    if if_dirty:
        done = [i for i in layers or catalog.ids if regenerate_if_dirty(_database_url(), catalog.get(i))]
        typer.echo(f"generalized: {', '.join(done) or 'nothing to do'}")
        return
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        written = generalize_catalog(conn, catalog, layers)
    typer.echo("generalized: " + ", ".join(f"{k} {v}" for k, v in written.items()))


def _tile_job(layers: str, bbox: str | None, minzoom: int, maxzoom: int):
    """Validate the common options of seed/export; returns settings, catalog, layers and bbox."""
    from layers.catalog import load_catalog
    from tiles.style import XIAMEN_BOUNDS

    settings = Settings()
    catalog = load_catalog(settings.catalog_dir)
    chosen = []
    for layer_id in [part.strip() for part in layers.split(",") if part.strip()] or catalog.ids:
        if layer_id not in catalog:
            _fail(f"unknown layer {layer_id!r}; valid layers: {', '.join(catalog.ids)}")
        chosen.append(catalog.get(layer_id))
    box = XIAMEN_BOUNDS
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
            assert len(box) == 4 and box[0] < box[2] and box[1] < box[3]  # noqa: S101
        except (ValueError, AssertionError):
            _fail(f"--bbox must be WEST,SOUTH,EAST,NORTH in degrees (got {bbox!r})")
    if not 0 <= minzoom <= maxzoom <= 22:
        _fail(f"need 0 <= --minzoom <= --maxzoom <= 22 (got {minzoom}..{maxzoom})")
    return settings, catalog, chosen, box


LayersOption = Annotated[str, typer.Option("--layers", help="Comma-separated layer ids (default: all)")]
BBoxOption = Annotated[str | None, typer.Option(help="WEST,SOUTH,EAST,NORTH (default: Xiamen)")]


@tiles_app.command("seed")
def tiles_seed(
    layers: LayersOption = "",
    minzoom: Annotated[int, typer.Option(help="First zoom")] = 6,
    maxzoom: Annotated[int, typer.Option(help="Last zoom")] = 14,
    bbox: BBoxOption = None,
    concurrency: Annotated[int, typer.Option(help="Tiles rendered at once")] = 4,
) -> None:
    """Pre-render tiles into the on-disk cache (ECOMAP_TILES__CACHE_DIR). Resumable: tiles
    already stored are skipped; edits during seeding invalidate as in the service."""
    import asyncio

    from tqdm import tqdm

    from gis_service.runtime import runtime
    from tiles.cache import CacheKey
    from tiles.offline import count_tiles, render_all, tile_addresses

    settings, catalog, chosen, box = _tile_job(layers, bbox, minzoom, maxzoom)
    if settings.tiles.cache_dir is None:
        _fail("seeding fills the on-disk cache: set ECOMAP_TILES__CACHE_DIR to a directory the service also uses")
    settings.tiles.cache_memory_mb = 0
    ids = tuple(layer.id for layer in chosen)

    async def seed() -> int:
        async with runtime(settings, catalog, regeneralize=False) as running:
            await asyncio.wait_for(running.listener.connected.wait(), timeout=30)
            store = settings.tiles.cache_dir

            def stored(address) -> bool:
                return (store / CacheKey(ids, address.z, address.x, address.y).relative_path()).exists()

            with tqdm(total=count_tiles(box, minzoom, maxzoom), unit="tile", desc="seeding") as bar:
                rendered = 0
                async for _ in render_all(
                    running.engine,
                    chosen,
                    tile_addresses(box, minzoom, maxzoom),
                    concurrency,
                    skip=stored,
                    progress=bar.update,
                ):
                    rendered += 1
            return rendered

    typer.echo(f"seeded: {asyncio.run(seed())} tiles rendered into {settings.tiles.cache_dir}")


@tiles_app.command("export")
def tiles_export(
    out: Annotated[str, typer.Argument(help="OUT.pmtiles (PMTiles v3) or OUT.mbtiles")],
    layers: LayersOption = "",
    minzoom: Annotated[int, typer.Option(help="First zoom")] = 6,
    maxzoom: Annotated[int, typer.Option(help="Last zoom")] = 14,
    bbox: BBoxOption = None,
) -> None:
    """Export tiles to a PMTiles or MBTiles archive for offline use or a CDN."""
    import asyncio
    from pathlib import Path

    from tqdm import tqdm

    from gis_service.runtime import runtime
    from tiles.offline import count_tiles, export_mbtiles, export_pmtiles

    path = Path(out)
    writers = {".pmtiles": export_pmtiles, ".mbtiles": export_mbtiles}
    if path.suffix not in writers:
        _fail(f"unsupported archive {path.name!r}: use a .pmtiles or .mbtiles file name")
    settings, catalog, chosen, box = _tile_job(layers, bbox, minzoom, maxzoom)
    settings.tiles.cache_enabled = False

    async def export() -> int:
        async with runtime(settings, catalog, regeneralize=False) as running:
            with tqdm(total=count_tiles(box, minzoom, maxzoom), unit="tile", desc="exporting") as bar:
                return await writers[path.suffix](running.engine, chosen, path, minzoom, maxzoom, box, bar.update)

    typer.echo(f"exported {asyncio.run(export())} tiles to {path}")


@app.command()
def setup(
    demo: Annotated[bool, typer.Option(help="Load the demo data when the database is empty")] = True,
) -> None:
    """Migrate the database and load the demo data if it is empty (idempotent)."""
    import psycopg

    from layers.catalog import load_catalog
    from tiles.generalize import dirty_layers, outdated_layers

    db_upgrade("head")
    if demo and not demo_load(force=False, if_empty=True, seed=2025):
        _write_demo_rasters(seed=2025, force=False)  # the database already held data
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        stale = sorted({*dirty_layers(conn), *outdated_layers(conn, load_catalog())})
    if stale:
        tiles_generalize(layers=stale)
    cli_access.prepare_access(demo)  # the token signing key; one demo account per role


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
    access_log: Annotated[
        bool,
        typer.Option(
            envvar="ECOMAP_ACCESS_LOG",
            help="Log every request (turn off behind a proxy or CDN that logs them; it costs ~8 % of a worker)",
        ),
    ] = True,
) -> None:
    """Serve the map and the APIs with uvicorn."""
    import copy
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = Settings()
    typer.echo(f"EcoMap Xiamen: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    typer.echo(f"database: {describe_database(settings.dsn)}; region: {settings.region}", err=True)
    _warn_if_schema_behind()
    app_path = "gis_service.app:create_app"
    # uvicorn's logging, plus the service's own loggers (start-up facts, errors with their request id)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["gis_service"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    options = {
        "log_config": log_config,
        "factory": True,
        "host": host,
        "port": port,
        "reload": reload,
        "log_level": "info",
        "access_log": access_log,
    }
    if workers > 1 and not reload:
        # Worker processes share this socket. Accepted connections inherit TCP_NODELAY from it;
        # without it, small keep-alive responses wait ~40 ms (Nagle meets delayed ACK).
        # uvicorn kills a worker that misses its 5 s health ping; a loaded 2-core machine (a tile
        # benchmark, a regeneralization) made workers miss it while starting: allow 30 s.
        config = uvicorn.Config(app_path, workers=workers, timeout_worker_healthcheck=30, **options)
        sock = config.bind_socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.run(app_path, **options)


def _warn_if_schema_behind() -> None:
    """Say so at start when the database is reachable but not migrated to this version
    (its tiles and APIs would answer 503 until it is); a database that is down is not an
    error here: the service waits for it."""
    import psycopg

    from layers.db import head_revision

    try:
        with psycopg.connect(database_url(announce=False), connect_timeout=3) as conn:
            exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if exists and exists[0] else None
    except psycopg.Error:
        return
    current, expected = (row[0] if row else None), head_revision()
    if current != expected:
        typer.secho(
            f"warning: the database schema is at migration {current or 'none'} but this version needs {expected}:"
            " run `ecomap setup` (or `ecomap db upgrade`) first",
            err=True,
            fg=typer.colors.YELLOW,
        )


def main() -> None:
    """Console-script entry point; invalid settings (``ECOMAP_*``) are reported, not traced back."""
    from pydantic import ValidationError

    try:
        sys.exit(app())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        typer.secho(f"error: invalid settings (ECOMAP_* environment variables): {problems}", err=True, fg="red")
        sys.exit(2)


if __name__ == "__main__":
    main()
