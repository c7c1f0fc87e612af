"""``ecomap raster add / list / remove``: register GeoTIFFs as raster layers of the catalog.

Registered in :mod:`gis_service.cli` as the ``raster`` group. A registered raster is a COG
``<data dir>/<id>.tif`` plus ``<data dir>/catalog/<id>.yaml``, merged into the catalog; a
running service shows it (or forgets a removed one) within a second or two. Errors
print ``error: ...`` on stderr and exit with 1 (the file was refused) or 2 (a wrong argument);
nothing is written then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gis_service.settings import Settings

raster_app = typer.Typer(
    help="Raster layers (land cover, elevation, slope...): register GeoTIFFs as Cloud-Optimized GeoTIFFs.",
    no_args_is_help=True,
)

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def _range(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        _fail(f"--range must be MIN,MAX, e.g. --range 0,900 (got {text!r})", EXIT_USAGE)
    return [low, high]


@raster_app.command("add")
def add(
    raster_id: Annotated[str, typer.Argument(metavar="ID", help="New raster id: lower-case letters, digits, _")],
    path: Annotated[Path, typer.Argument(help="GeoTIFF to register (any CRS; it is converted to a COG)")],
    categorical: Annotated[
        bool, typer.Option("--categorical", help="Cells are classes (needs --classes); default: continuous values")
    ] = False,
    classes: Annotated[
        Path | None,
        typer.Option(
            help="Class table, YAML or JSON: a list of {value, name: {zh, en}, color: '#rrggbb'} (categorical)"
        ),
    ] = None,
    title_zh: Annotated[str | None, typer.Option("--title-zh", help="Chinese title (default: the id)")] = None,
    title_en: Annotated[str | None, typer.Option("--title-en", help="English title (default: the id)")] = None,
    meaning_zh: Annotated[str | None, typer.Option("--meaning-zh", help="What a cell value means, in Chinese")] = None,
    meaning_en: Annotated[str | None, typer.Option("--meaning-en", help="What a cell value means, in English")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit of the values, e.g. m or °")] = None,
    role: Annotated[
        str | None, typer.Option(help="land_cover, elevation or slope: used by the zone check's statistics")
    ] = None,
    band: Annotated[int, typer.Option(help="Band holding the values (1-based)")] = 1,
    nodata: Annotated[
        float | None, typer.Option(help="Value of empty cells, needed when the file defines none (overrides it)")
    ] = None,
    value_range: Annotated[
        str | None, typer.Option("--range", help="MIN,MAX of the colour ramp (continuous; default: the data's)")
    ] = None,
    opacity: Annotated[float, typer.Option(help="Default opacity on the map, 0-1")] = 0.7,
    minzoom: Annotated[int, typer.Option(help="Lowest zoom drawn")] = 0,
    maxzoom: Annotated[int, typer.Option(help="Highest zoom advertised (tiles overzoom above)")] = 18,
    sample: Annotated[bool, typer.Option("--sample", help="Flag the raster as sample data")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a raster registered under this ID")] = False,
) -> None:
    """Check a GeoTIFF (readable, has a CRS, the band, a nodata value), convert it to a COG with
    overviews in the raster data directory (ECOMAP_RASTERS__DATA_DIR) and register it in the catalog.

    Examples:

        ecomap raster add landuse_2024 landuse.tif --categorical --classes classes.yaml --title-zh 土地利用

        ecomap raster add ndvi ndvi.tif --nodata -1 --range 0,1 --unit NDVI --title-en "Vegetation index"
    """
    from layers.raster_registry import RegistrationError, register_raster
    from layers.rasters import RasterFileError

    if categorical != (classes is not None):
        _fail("a categorical raster needs --classes FILE, and --classes needs --categorical", EXIT_USAGE)
    title = {"zh": title_zh or raster_id, "en": title_en or title_zh or raster_id}
    options = {
        "title": title,
        "band_meaning": {"zh": meaning_zh or title["zh"], "en": meaning_en or title["en"]},
        "unit": unit,
        "role": role,
        "opacity": opacity,
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "is_sample": sample,
    }
    if not categorical:
        options["range"] = _range(value_range)
    settings = Settings()
    try:
        result = register_raster(
            raster_id,
            path,
            settings.rasters.data_dir,
            band=band,
            nodata=nodata,
            classes_file=classes,
            replace=replace,
            catalog_dir=settings.catalog_dir,
            **options,
        )
    except (RegistrationError, RasterFileError) as exc:
        _fail(str(exc))
    verb = "replaced" if result.replaced else "registered"
    typer.echo(f"raster {raster_id!r} {verb}: {result.cog} (COG), {result.yaml}")
    if result.unclassified_values:
        shown = ", ".join(str(v) for v in result.unclassified_values[:20])
        typer.secho(f"warning: values without a class are drawn transparent: {shown}", err=True, fg="yellow")
    typer.echo("a running service shows it within a second or two (reload the map page to list it)")


@raster_app.command("list")
def list_command() -> None:
    """List the raster layers: bundled and registered, with their files."""
    from layers.catalog import load_catalog

    settings = Settings()
    catalog = load_catalog(settings.catalog_dir, raster_dirs=[settings.rasters.catalog_dir])
    for raster in catalog.rasters:
        path = raster.path(settings.rasters.data_dir)
        origin = "registered" if (settings.rasters.catalog_dir / f"{raster.id}.yaml").is_file() else "bundled"
        kind = "categorical" if raster.categorical else f"continuous {raster.unit or ''}".rstrip()
        state = f"{path.stat().st_size / 1e6:.1f} MB" if path.is_file() else "MISSING (ecomap demo rasters?)"
        typer.echo(f"{raster.id:<16} {origin:<10} {kind:<16} {raster.title.zh} / {raster.title.en}  {path}  {state}")


@raster_app.command("remove")
def remove(raster_id: Annotated[str, typer.Argument(metavar="ID", help="A raster added with `raster add`")]) -> None:
    """Remove a registered raster (its catalog entry and its COG). Bundled rasters stay."""
    from layers.raster_registry import RegistrationError, unregister_raster

    try:
        removed = unregister_raster(raster_id, Settings().rasters.data_dir)
    except RegistrationError as exc:
        _fail(str(exc), EXIT_USAGE)
    typer.echo(f"raster {raster_id!r} removed: " + ", ".join(str(p) for p in removed))
