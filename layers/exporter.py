"""Export a layer (current, or as of a revision or date) in the formats agencies use.

GeoPackage, Shapefile (a .zip with .shp/.shx/.dbf/.prj/.cpg, attributes in UTF-8 so
Chinese text is intact), GeoJSON, CSV (X/Y columns for points, WKT otherwise) and KML,
in any CRS PROJ knows (``EPSG:4548`` for Gauss-Krüger CM 117°E, ...). Each export
carries the feature ``id`` and every catalog property; importing it back gives the same
features (shapefile field names are cut to 10 characters; the importer maps them back).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from psycopg import sql

from layers.catalog import Layer
from layers.crs import WGS84, crs_label, parse_crs
from layers.history import AsOfBasis, features_as_of_sql


@dataclass(frozen=True)
class ExportFormat:
    name: str
    driver: str
    extension: str
    media_type: str


FORMATS = {
    "gpkg": ExportFormat("gpkg", "GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "shp": ExportFormat("shp", "ESRI Shapefile", ".zip", "application/zip"),
    "geojson": ExportFormat("geojson", "GeoJSON", ".geojson", "application/geo+json"),
    "csv": ExportFormat("csv", "CSV", ".csv", "text/csv; charset=utf-8"),
    "kml": ExportFormat("kml", "KML", ".kml", "application/vnd.google-earth.kml+xml"),
}
_SUFFIXES = {".gpkg": "gpkg", ".shp": "shp", ".zip": "shp", ".geojson": "geojson", ".json": "geojson",
             ".csv": "csv", ".kml": "kml"}  # fmt: skip
SHAPEFILE_TEXT_BYTES = 254
"""The dBase limit of a text attribute; longer values are cut by the format."""


class ExportError(ValueError):
    """The export cannot be done as asked; the message says what to change."""


@dataclass
class ExportResult:
    path: Path
    format: str
    features: int
    crs: str
    warnings: list[str] = field(default_factory=list)


def format_for(path: str | Path, fmt: str | None = None) -> ExportFormat:
    """The export format named, or implied by the output file's extension."""
    name = fmt or _SUFFIXES.get(Path(path).suffix.lower())
    if name not in FORMATS:
        raise ExportError(
            f"unknown export format for {path}: use a .gpkg, .shp, .zip (shapefile), .geojson, .csv or .kml file"
        )
    return FORMATS[name]


def export_sql(
    layer: Layer,
    revision: int | None = None,
    asof: dt.datetime | dt.date | str | None = None,
    view: Callable[[sql.Composable], sql.Composable] | None = None,
    *,
    by: AsOfBasis = "valid",
    where: sql.Composable | None = None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query of the rows to export: id, every property, WKB geometry (EPSG:4326), by id.
    ``view`` turns the features subquery into what is read in its place (a caller's scope);
    ``where``: a condition over alias ``t`` (a CQL2 filter, a selection), its values bound by the caller."""
    features, params = features_as_of_sql(layer, revision, asof, by=by)
    columns = [sql.SQL("t.{}").format(sql.Identifier(c)) for c in [layer.id_column, *layer.property_names]]
    columns.append(sql.SQL("ST_AsBinary(t.{})").format(sql.Identifier(layer.geometry_column)))
    source = view(features) if view is not None else sql.SQL("({})").format(features)
    query = sql.SQL("SELECT {} FROM {} AS t WHERE {} ORDER BY t.{}").format(
        sql.SQL(", ").join(columns),
        source,
        where if where is not None else sql.SQL("true"),
        sql.Identifier(layer.id_column),
    )
    return query, params


def rows_to_frame(layer: Layer, rows: list[tuple[Any, ...]]) -> gpd.GeoDataFrame:
    """Rows of :func:`export_sql` as a GeoDataFrame in EPSG:4326 with typed columns."""
    names = [layer.id_column, *layer.property_names]
    data: dict[str, Any] = {}
    for position, name in enumerate(names):
        values = [row[position] for row in rows]
        prop = layer.get_property(name)
        kind = prop.type if prop else "integer"
        if kind == "integer":
            data[name] = pd.array(values, dtype="Int64")
        elif kind == "number":
            data[name] = pd.array(values, dtype="Float64")
        elif kind == "boolean":
            data[name] = pd.array(values, dtype="boolean")
        elif kind == "date":
            data[name] = pd.Series(pd.to_datetime(values), dtype="datetime64[ms]")
        else:
            data[name] = pd.Series(values, dtype=object)
    geometry = shapely.from_wkb([bytes(row[-1]) for row in rows]) if rows else []
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs=WGS84), crs=WGS84)


def write_frame(
    frame: gpd.GeoDataFrame, layer: Layer, out: str | Path, fmt: ExportFormat, crs: str | None = None
) -> ExportResult:
    """Write features to a file (a shapefile as a zip unless ``out`` ends in .shp)."""
    target = parse_crs(crs) if crs else WGS84
    if fmt.name == "kml" and not target.equals(WGS84, ignore_axis_order=True):
        raise ExportError("KML is always in WGS84 longitude/latitude; drop --crs or choose another format")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.to_crs(target) if not target.equals(WGS84, ignore_axis_order=True) else frame
    result = ExportResult(out, fmt.name, len(frame), crs_label(target))
    if fmt.name in ("shp", "csv", "kml"):  # no Date field type there: ISO text, read back by the importer
        frame = frame.copy()
        for prop in layer.properties:
            if prop.type == "date" and prop.name in frame:
                text = frame[prop.name].dt.strftime("%Y-%m-%d")
                frame[prop.name] = text.astype(object).where(text.notna(), None)
    options: dict[str, Any] = {}
    if fmt.name == "csv":
        point = layer.geometry_type == "Point"
        # explicitly layer creation options: as plain keywords, pyogrio's GDAL 3.12 refused
        # GEOMETRY=AS_XY ("unexpected value") and failed on every point (a 500 for stations)
        options = {"layer_options": {"GEOMETRY": "AS_XY" if point else "AS_WKT", "CREATE_CSVT": "YES"}}
    if fmt.name == "shp":
        result.warnings += _shapefile_warnings(frame, layer)
        if out.suffix.lower() == ".shp":
            _write(frame, out, fmt, layer, encoding="UTF-8")
            return result
        with tempfile.TemporaryDirectory(prefix="ecomap-export-") as tmp:
            shp = Path(tmp) / f"{layer.id}.shp"
            _write(frame, shp, fmt, layer, encoding="UTF-8")
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
                for part in sorted(Path(tmp).iterdir()):
                    archive.write(part, part.name)
        return result
    if out.exists():
        out.unlink()
    _write(frame, out, fmt, layer, **options)
    return result


def _write(frame: gpd.GeoDataFrame, path: Path, fmt: ExportFormat, layer: Layer, **options: Any) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(Normalized|truncated|laundered).*")
        pyogrio.write_dataframe(frame, path, driver=fmt.driver, layer=layer.id, **options)


def _shapefile_warnings(frame: gpd.GeoDataFrame, layer: Layer) -> list[str]:
    notes = []
    long_names = [p for p in layer.property_names if len(p) > 10]
    if long_names:
        notes.append(
            "shapefile field names are cut to 10 characters: " + ", ".join(f"{n}->{n[:10]}" for n in long_names)
        )
    for prop in layer.properties:
        if prop.type != "string" or prop.name not in frame:
            continue
        lengths = frame[prop.name].dropna().map(lambda v: len(str(v).encode("utf-8")))
        if len(lengths) and lengths.max() > SHAPEFILE_TEXT_BYTES:
            notes.append(
                f"{prop.name}: {int((lengths > SHAPEFILE_TEXT_BYTES).sum())} values exceed the shapefile limit of"
                f" {SHAPEFILE_TEXT_BYTES} bytes and are cut; export a GeoPackage to keep them whole"
            )
    return notes


def export_layer(
    conn: Any,
    layer: Layer,
    out: str | Path,
    *,
    fmt: str | None = None,
    crs: str | None = None,
    revision: int | None = None,
    asof: dt.datetime | dt.date | str | None = None,
    by: AsOfBasis = "valid",
) -> ExportResult:
    """Export a layer through a sync psycopg connection (the CLI's); ``asof`` by validity, or
    by load time with ``by="loaded"``."""
    export_format = format_for(out, fmt)
    rows = conn.execute(*export_sql(layer, revision, asof, by=by)).fetchall()
    return write_frame(rows_to_frame(layer, rows), layer, out, export_format, crs)


def export_to_temp(
    frame: gpd.GeoDataFrame, layer: Layer, fmt: ExportFormat, crs: str | None, name: str
) -> ExportResult:
    """Write an export into a new temporary directory (the caller removes ``result.path.parent``)."""
    directory = Path(tempfile.mkdtemp(prefix="ecomap-export-"))
    try:
        return write_frame(frame, layer, directory / f"{name}{fmt.extension}", fmt, crs)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
