"""``ecomap import / export / revisions / diff``: official data in and out, and its history.

Registered in :mod:`gis_service.cli` with ``app.add_typer(data_app)`` (the commands are
merged into the top level). Errors print ``error: ...`` on stderr and exit with 1 (the
data or the database refused) or 2 (a wrong argument).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from gis_service.settings import Settings, describe_database, owner_database_url

data_app = typer.Typer(add_completion=False)

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def _layer(layer_id: str) -> Any:
    from layers.catalog import load_catalog

    catalog = load_catalog(Settings().catalog_dir)
    try:
        return catalog.get(layer_id)
    except KeyError as exc:
        _fail(str(exc.args[0]), EXIT_USAGE)


def database_url(announce: bool = True) -> str:
    """The database the CLI uses, as the owner role (``settings.owner_database_url``: the same
    database as the service's, which connects as the web role); says which on stderr."""
    url = owner_database_url()
    if announce:
        typer.echo(f"database: {describe_database(url)}", err=True)
    return url


def unreachable(url: str, exc: Exception) -> str:
    """The message for a database the CLI cannot reach, naming it and how to choose another."""
    return (
        f"cannot reach the database at {describe_database(url)} ({str(exc).strip()}); is it running? "
        "(`scripts/pgcluster.sh start` starts the local one on ECOMAP_PG_PORT, default 55432; "
        "or set ECOMAP_DATABASE_OWNER_URL)"
    )


def _connect(autocommit: bool = True, announce: bool = False) -> Any:
    """A connection to the database; ``announce``: name it on stderr (commands that write)."""
    import psycopg

    url = database_url(announce)
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name="ecomap-cli", connect_timeout=10)
    except psycopg.OperationalError as exc:
        _fail(unreachable(url, exc))


def _parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            _fail(f"--map {pair!r}: write SOURCE_FIELD=PROPERTY, e.g. --map MC=name", EXIT_USAGE)
        mapping[src.strip()] = dst.strip()
    return mapping


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@data_app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help="Target layer id, e.g. redline (see GET /api/layers)")],
    path: Annotated[
        Path, typer.Argument(help="File to import: .shp, .zip (zipped shapefile/any), .gpkg, .geojson, .kml, .csv")
    ],
    layer_name: Annotated[
        str | None, typer.Option("--layer-name", help="Layer inside a multi-layer file (GeoPackage, KML, zip)")
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="CRS of the coordinates when the file declares none (required for CSV), e.g. EPSG:4527"),
    ] = None,
    datum: Annotated[
        str | None, typer.Option(help="'gcj02': coordinates come from AMap/Tencent maps; convert them to WGS84")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of the attributes, e.g. gbk (default: .cpg or detected)")
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="replace: the layer becomes the file; append: add the features; upsert: update by --key, add new"
        ),
    ] = "replace",
    key: Annotated[
        str | None,
        typer.Option(help="Property identifying a feature for upsert/replace (default: a unique column, e.g. code)"),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="SOURCE=PROPERTY: take a property from a differently named field (repeatable)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the report; write nothing")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse invalid geometries instead of repairing them with make_valid")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report and the result as JSON")] = False,
    author: Annotated[
        str | None, typer.Option(help="Who imports, recorded with the revision (default: $ECOMAP_AUTHOR or login)")
    ] = None,
    approval: Annotated[
        str | None, typer.Option(help="Approval document of this revision, e.g. '厦府〔2025〕12号'")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note recorded with the revision")] = None,
    generalize: Annotated[
        bool | None,
        typer.Option(
            "--generalize/--no-generalize",
            help="Recompute the low-zoom tile geometry in the import transaction, or leave it to the service's"
            " background job (default: in the transaction when the layer is small)",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr")] = True,
) -> None:
    """Validate a file and import it into a layer, all or nothing (one transaction).

    The validation report is printed first; with errors nothing is written and the exit
    code is 1. Red lines and protected areas get a new revision (see `ecomap revisions`).
    """
    from layers.importer import MODES, ImportFailed, ValidationFailed, import_layer
    from layers.regions import get_region
    from tiles.incremental import regeneralize_changes

    target = _layer(layer)
    if mode not in MODES:
        _fail(f"--mode {mode!r}: use one of {', '.join(MODES)}", EXIT_USAGE)
    chosen_author = author or os.environ.get("ECOMAP_AUTHOR") or getpass.getuser()
    settings = Settings()
    with _connect(announce=True) as conn:
        try:
            result = import_layer(
                conn, target, path, layer_name=layer_name, crs=crs, datum=datum, encoding=encoding,
                mode=mode,  # type: ignore[arg-type]
                key=key, mapping=_parse_mapping(mapping), dry_run=dry_run, strict=strict, author=chosen_author,
                approval=approval, note=note, region=get_region(settings.region), generalize=generalize,
                generalizer=regeneralize_changes, progress=progress and sys.stderr.isatty(),
            )  # fmt: skip
        except ValidationFailed as exc:
            if as_json:
                _print_json({"applied": False, "report": exc.report.to_dict()})
            else:
                typer.echo(exc.report.to_text())
            _fail(f"{exc} — nothing was written")
        except ImportFailed as exc:
            _fail(f"{exc} — nothing was written")
    if as_json:
        _print_json(result.to_dict())
        if not result.report.ok:
            raise typer.Exit(EXIT_FAILED)
        return
    typer.echo(result.report.to_text())
    if dry_run:
        typer.echo("dry run: nothing written" + ("" if result.report.ok else "; fix the errors above first"))
        if not result.report.ok:
            raise typer.Exit(EXIT_FAILED)
        return
    revision = f"; revision {result.revision} (`ecomap diff {layer}` shows the changes)" if result.revision else ""
    typer.echo(
        f"imported {result.report.features} features into {layer} ({result.mode}): {result.inserted} inserted,"
        f" {result.updated} updated, {result.deleted} deleted{revision}"
    )


@data_app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. redline")],
    out: Annotated[
        Path, typer.Argument(help="Output file: .gpkg, .shp, .zip (zipped shapefile), .geojson, .csv or .kml")
    ],
    crs: Annotated[str | None, typer.Option(help="CRS of the output, e.g. EPSG:4548 (default EPSG:4326)")] = None,
    revision: Annotated[int | None, typer.Option(help="Export the layer as of this revision")] = None,
    asof: Annotated[
        str | None,
        typer.Option(help="Export the layer in force on a date by legal validity (ISO, China time by default)"),
    ] = None,
    loaded_asof: Annotated[
        str | None, typer.Option(help="Export the layer as it was loaded at a date or date-time (ISO)")
    ] = None,
) -> None:
    """Export a layer (current, or as of a revision, a validity date or a load date) to a file."""
    from layers.crs import CRSProblem
    from layers.exporter import ExportError, export_layer
    from layers.history import HistoryError

    target = _layer(layer)
    if asof is not None and loaded_asof is not None:
        _fail("give either --asof (validity date) or --loaded-asof (load date), not both", EXIT_USAGE)
    moment, basis = (loaded_asof, "loaded") if loaded_asof is not None else (asof, "valid")
    with _connect() as conn:
        try:
            result = export_layer(conn, target, out, crs=crs, revision=revision, asof=moment, by=basis)
        except (ExportError, CRSProblem, HistoryError) as exc:
            _fail(str(exc), EXIT_USAGE)
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"exported {result.features} features of {layer} to {result.path} ({result.format}, {result.crs})")


@data_app.command("revisions")
def revisions_command(
    layer: Annotated[str, typer.Argument(help="redline or protected_area")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List the revisions of a layer, newest first: when, who, file, checksum, approval, counts."""
    from layers.history import HistoryError, list_revisions

    target = _layer(layer)
    with _connect() as conn:
        try:
            revisions = list_revisions(conn, target)
        except HistoryError as exc:
            _fail(str(exc), EXIT_USAGE)
    if as_json:
        _print_json({"layer": layer, "revisions": revisions})
        return
    if not revisions:
        typer.echo(f"{layer} has no revision yet")
    for rev in revisions:
        counts = f"+{rev['features_added']} -{rev['features_removed']} ~{rev['features_changed']}"
        source = f" {rev['source_file']} sha256:{rev['checksum'][:12]}" if rev["source_file"] else ""
        approval = f" [{rev['approval_doc']}]" if rev["approval_doc"] else ""
        typer.echo(
            f"{rev['number']:>4}  {rev['created_at'][:19]}  {rev['author']}  {rev['origin']}  "
            f"{rev['feature_count']} features ({counts}){source}{approval}  {rev['note'] or ''}"
        )


@data_app.command("diff")
def diff_command(
    layer: Annotated[str, typer.Argument(help="redline or protected_area")],
    start: Annotated[int | None, typer.Option("--from", help="Older revision (default: the one before --to)")] = None,
    end: Annotated[int | None, typer.Option("--to", help="Newer revision (default: the latest)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full diff as JSON")] = False,
) -> None:
    """Features added, removed and changed between two revisions, with areas gained and lost (km², ellipsoid)."""
    from layers.history import HistoryError, diff_revisions

    target = _layer(layer)
    with _connect() as conn:
        try:
            diff = diff_revisions(conn, target, start, end)
        except HistoryError as exc:
            _fail(str(exc), EXIT_USAGE)
    if as_json:
        _print_json(diff)
        return
    s = diff["summary"]
    typer.echo(
        f"{layer}: revision {diff['from']} -> {diff['to']}: {s['added']} added, {s['removed']} removed,"
        f" {s['changed']} changed; area {s['area_from_km2']:.3f} -> {s['area_to_km2']:.3f} km²"
        f" (+{s['area_gained_km2']:.3f} / -{s['area_lost_km2']:.3f} km²)"
    )
    for item in diff["features"]:
        detail = ""
        if item["change"] == "changed":
            parts = [f"{k}: {_short(v['from'])} -> {_short(v['to'])}" for k, v in item["changed_properties"].items()]
            if item["geometry_changed"]:
                parts.append(f"geometry +{item['area_gained_km2']:.4f}/-{item['area_lost_km2']:.4f} km²")
            detail = "  " + "; ".join(parts)
        typer.echo(f"  {item['change']:8} #{item['id']} {item['name'] or ''}{detail}")


places_app = typer.Typer(help="The gazetteer: named places the search finds.", no_args_is_help=True)


@places_app.command("import")
def places_import(
    file: Annotated[Path, typer.Argument(help="Gazetteer CSV (UTF-8): name_zh,name_en,kind,lon,lat[,pinyin,...]")],
    replace: Annotated[bool, typer.Option("--replace", help="Remove the places the file does not hold")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file only")] = False,
) -> None:
    """Add or update places (same Chinese name and kind = the same place) in one transaction; a
    file with any wrong row writes nothing and lists each problem with its line."""
    from layers.gazetteer import GazetteerError, import_places, read_places
    from layers.regions import UnknownRegion, get_region

    try:
        region = get_region(os.environ.get("ECOMAP_REGION"))
        if dry_run:
            count = len(read_places(file.read_text(encoding="utf-8"), region))
            typer.echo(f"{file}: {count} places, all valid (nothing written: --dry-run)")
            return
        with _connect(announce=True) as conn:
            count = import_places(conn, file, replace=replace, region=region)
    except (GazetteerError, UnknownRegion, UnicodeDecodeError, OSError) as exc:
        _fail(f"{file}: {exc}", EXIT_USAGE)
    typer.echo(f"imported {count} places from {file}" + (" (others removed)" if replace else ""))
