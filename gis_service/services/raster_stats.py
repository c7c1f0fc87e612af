"""Zonal statistics (区域统计): land-cover composition and terrain of a zone, on the ellipsoid.

For a polygon, every raster cell it touches is weighted by the EXACT fraction of the cell
the polygon covers (exactextract) times the cell's area on the raster's ellipsoid (WGS84,
CGCS2000): for a geographic grid the closed-form area of the latitude/longitude cell, for a
projected grid the cell's planar area divided by the projection's areal scale factor at the
cell centre. Nothing is measured in degrees or in Web Mercator. Polygon edges are straight
lines in the raster's CRS (as in any GIS overlay); for sites of kilometres this differs from
geodesic edges by less than 1e-5 of the area.

Points and lines take no area:

- a point reports the cell under it (a multipoint: each point counts once; percentages are
  shares of the points);
- a line is cut into steps of at most a quarter cell, each step weighted by its geodesic
  length and assigned to the cell under its midpoint (percentages are shares of the length);
- with a buffer, callers pass the buffered polygon instead (see ``statistics_zone``).

Land cover: area (km²) and share of the zone per class, largest first, classes of zero area
omitted; cells holding nodata and parts of the zone outside the raster are reported as
``nodata_km2``. Terrain: min/max over the cells touched, means weighted by coverage × area.
The work is CPU-bound and runs in a worker thread; raster files stay open between calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract.feature import Feature, FeatureSource
from exactextract.raster import NumPyRasterSource
from psycopg import AsyncConnection, sql
from pyproj import CRS, Geod, Proj, Transformer
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from gis_service.access.scopes import FeatureScope, scope_params, scoped_table
from gis_service.errors import NotFound, PayloadTooLarge
from layers.catalog import Catalog, RasterLayer
from layers.crs import LocalEqualArea, transform_geometry
from layers.rasters import content_revision

log = logging.getLogger(__name__)

MAX_WINDOW_CELLS = 16_000_000
"""Cells of one raster a zone may span (its bounding box); 64 MB of float32."""
LINE_STEPS_PER_CELL = 4
WGS84 = CRS.from_epsg(4326)
GEOD = Geod(ellps="WGS84")
UNKNOWN_CLASS_COLOR = "#9e9e9e"

Measure = Literal["area", "length", "count"]


# --- where a zone falls on a grid ----------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and size."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    crs_wkt: str = ""
    """The CRS as WKT (keys the transformer caches); filled in from ``crs`` when not given."""

    def __post_init__(self) -> None:
        if not self.crs_wkt:
            object.__setattr__(self, "crs_wkt", self.crs.to_wkt())

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)


@dataclass(frozen=True)
class Cells:
    """The cells of a grid a zone covers and their weights (m², m or point counts)."""

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    outside: float
    """Weight of the part of the zone off the grid."""

    @property
    def window(self) -> Window | None:
        if not len(self.rows):
            return None
        row0, col0 = int(self.rows.min()), int(self.cols.min())
        return Window(col0, row0, int(self.cols.max()) - col0 + 1, int(self.rows.max()) - row0 + 1)


class _WkbFeature(Feature):
    """One geometry handed to exactextract as WKB (no GeoJSON round trip)."""

    def __init__(self, wkb: bytes) -> None:
        Feature.__init__(self)
        self.wkb = wkb
        self.values: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    def get(self, name: str) -> Any:
        return self.values[name]

    def geometry(self) -> bytes:
        return self.wkb

    def set_geometry(self, wkb: bytes) -> None:  # exactextract calls it only when asked to copy geometries
        self.wkb = wkb

    def set_geometry_format(self) -> str:
        return "wkb"

    def fields(self) -> list[str]:
        return list(self.values)


class _WkbSource(FeatureSource):
    def __init__(self, geometry: BaseGeometry) -> None:
        super().__init__()
        self.feature = _WkbFeature(shapely.to_wkb(geometry))

    def count(self) -> int:
        return 1

    def __iter__(self) -> Any:
        yield self.feature

    def srs_wkt(self) -> None:
        return None


@lru_cache(maxsize=32)
def _to_geodetic(crs_wkt: str) -> Transformer:
    crs = CRS.from_wkt(crs_wkt)
    return Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)


@lru_cache(maxsize=32)
def _projection(crs_wkt: str) -> Proj:
    return Proj(CRS.from_wkt(crs_wkt))


@lru_cache(maxsize=32)
def _to_grid(crs_wkt: str) -> Transformer | None:
    """WGS84 longitude/latitude to the grid CRS; None when they coincide (WGS84, CGCS2000)."""
    crs = CRS.from_wkt(crs_wkt)
    lon_lat_degrees = crs.is_geographic and crs.prime_meridian.longitude == 0 and crs.axis_info[0].unit_name == "degree"
    if lon_lat_degrees and crs.datum.name.startswith(("World Geodetic System 1984", "China 2000")):
        return None  # CGCS2000 and WGS84 agree within centimetres; PROJ's transformation is a no-op too
    return Transformer.from_crs(WGS84, crs, always_xy=True)


@lru_cache(maxsize=32)
def _from_grid(crs_wkt: str) -> Transformer | None:
    return None if _to_grid(crs_wkt) is None else Transformer.from_crs(CRS.from_wkt(crs_wkt), WGS84, always_xy=True)


def _transform(geometry: BaseGeometry, transformer: Transformer | None) -> BaseGeometry:
    return geometry if transformer is None else transform_geometry(geometry, transformer)


def _authalic_q(latitude: np.ndarray, e: float) -> np.ndarray:
    """Snyder's q(φ) (Map Projections, eq. 3-12); the area between two parallels over Δλ is a²Δλ(q₂−q₁)/2."""
    s = np.sin(np.radians(latitude))
    if e == 0:
        return 2 * s
    return (1 - e * e) * (s / (1 - (e * s) ** 2) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))


def geographic_row_areas(grid: Grid, rows: np.ndarray) -> np.ndarray:
    """Area (m²) on the grid's ellipsoid of one cell of each row of a latitude/longitude grid."""
    ellipsoid = grid.crs.ellipsoid
    a = ellipsoid.semi_major_metre
    f = 1 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
    e = math.sqrt(f * (2 - f))
    t = grid.transform
    top = t.f + t.e * rows
    band = np.abs(_authalic_q(top, e) - _authalic_q(top + t.e, e))
    return a * a * math.radians(abs(t.a)) * band / 2


def _cell_areas(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Area (m²) on the ellipsoid of the given cells."""
    if grid.crs.is_geographic:
        first = int(rows.min()) if len(rows) else 0
        per_row = geographic_row_areas(grid, np.arange(first, int(rows.max()) + 1 if len(rows) else 0))
        return per_row[rows - first]
    t = grid.transform
    unit = grid.crs.axis_info[0].unit_conversion_factor if grid.crs.axis_info else 1.0
    planar = abs(t.a * t.e) * unit * unit
    x, y = t @ (cols + 0.5, rows + 0.5)
    lon, lat = _to_geodetic(grid.crs_wkt).transform(x, y)
    return planar / np.asarray(_projection(grid.crs_wkt).get_factors(lon, lat).areal_scale)


def _ellipsoidal_area(geometry_in_grid: BaseGeometry, grid: Grid) -> float:
    """Area on the ellipsoid of a polygon whose edges are straight in the grid's CRS (densified to cells)."""
    step = min(abs(grid.transform.a), abs(grid.transform.e))
    wgs84 = _transform(shapely.segmentize(geometry_in_grid, step), _from_grid(grid.crs_wkt))
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(wgs84))[0]) if not wgs84.is_empty else 0.0


def _polygon_cells(zone: BaseGeometry, grid: Grid, raster_id: str) -> Cells:
    """Cells under a polygon with weight = exact coverage fraction × ellipsoidal cell area."""
    t = grid.transform
    minx, miny, maxx, maxy = zone.bounds
    col0 = max(0, math.floor((minx - t.c) / t.a))
    col1 = min(grid.width, math.ceil((maxx - t.c) / t.a))
    row0 = max(0, math.floor((maxy - t.f) / t.e))
    row1 = min(grid.height, math.ceil((miny - t.f) / t.e))
    grid_box = shapely.box(*grid.bounds)
    outside = 0.0 if grid_box.contains(zone) else _ellipsoidal_area(zone.difference(grid_box), grid)
    empty = np.empty(0, dtype=np.int64)
    if col1 <= col0 or row1 <= row0:
        return Cells(empty, empty, np.empty(0), outside)
    ncols, nrows = col1 - col0, row1 - row0
    if ncols * nrows > MAX_WINDOW_CELLS:
        raise PayloadTooLarge(
            f"the zone spans {ncols} × {nrows} cells of raster {raster_id!r}; the limit is "
            f"{MAX_WINDOW_CELLS:,} cells: compute statistics for a smaller zone or for its parts"
        )
    x0, y1 = t @ (col0, row0)
    x1, y0 = t @ (col1, row1)
    # The values of a raster of cell numbers: the same as exactextract's cell_id, at half the cost.
    numbers = NumPyRasterSource(np.arange(nrows * ncols, dtype=np.int32).reshape(nrows, ncols), x0, y0, x1, y1)
    (feature,) = exact_extract(numbers, _WkbSource(zone), ["values", "coverage"], output="geojson")
    ids = np.asarray(feature["properties"]["values"], dtype=np.int64)
    coverage = np.asarray(feature["properties"]["coverage"], dtype=np.float64)
    rows, cols = row0 + ids // ncols, col0 + ids % ncols
    return Cells(rows, cols, coverage * _cell_areas(grid, rows, cols), outside)


def _locate(grid: Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of points, and whether they fall on the grid."""
    col, row = ~grid.transform @ (x, y)
    col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    return row, col, inside


def _point_cells(zone: BaseGeometry, grid: Grid) -> Cells:
    xy = shapely.get_coordinates(zone)
    row, col, inside = _locate(grid, xy[:, 0], xy[:, 1])
    return Cells(row[inside], col[inside], np.ones(int(inside.sum())), float((~inside).sum()))


def _line_cells(zone: BaseGeometry, grid: Grid) -> Cells:
    """Steps of at most 1/LINE_STEPS_PER_CELL cell along the line, weighted by geodesic length."""
    t = grid.transform
    step = min(abs(t.a), abs(t.e)) / LINE_STEPS_PER_CELL
    dense = shapely.segmentize(zone, step)
    xy, part = shapely.get_coordinates(shapely.get_parts(dense), return_index=True)
    same = part[1:] == part[:-1]
    start, end = xy[:-1][same], xy[1:][same]
    back = _from_grid(grid.crs_wkt)
    lonlat_start, lonlat_end = (
        (start, end) if back is None else (np.column_stack(back.transform(p[:, 0], p[:, 1])) for p in (start, end))
    )
    lengths = GEOD.inv(lonlat_start[:, 0], lonlat_start[:, 1], lonlat_end[:, 0], lonlat_end[:, 1])[2]
    middle = (start + end) / 2
    row, col, inside = _locate(grid, middle[:, 0], middle[:, 1])
    return Cells(row[inside], col[inside], np.asarray(lengths)[inside], float(np.asarray(lengths)[~inside].sum()))


def zone_cells(zone_wgs84: BaseGeometry, grid: Grid, raster_id: str = "raster") -> tuple[Cells, Measure]:
    """The cells of ``grid`` under a zone given in WGS84, and what their weights measure."""
    zone = _transform(zone_wgs84, _to_grid(grid.crs_wkt))
    dimension = int(shapely.get_dimensions(zone))
    if dimension == 2:
        return _polygon_cells(zone, grid, raster_id), "area"
    if dimension == 1:
        return _line_cells(zone, grid), "length"
    return _point_cells(zone, grid), "count"


# --- open rasters -------------------------------------------------------------------


class _OpenRaster:
    """A rasterio dataset kept open, with the lock its reads need (datasets are not thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.revision = content_revision(path)
        self.dataset = rasterio.open(path)
        self.lock = threading.Lock()
        transform = self.dataset.transform
        if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
            raise ValueError(f"{path} is not a north-up grid; warp it (gdalwarp) before using it for statistics")
        if self.dataset.crs is None:
            raise ValueError(f"{path} has no CRS")
        self.grid = Grid(CRS.from_wkt(self.dataset.crs.to_wkt()), transform, self.dataset.width, self.dataset.height)

    def read(self, band: int, window: Window, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
        """The full-resolution values of a window and where they are valid (not nodata, not NaN)."""
        with self.lock:
            values = self.dataset.read(band, window=window)
        nodata = self.dataset.nodatavals[band - 1] if nodata is None else nodata
        valid = np.ones(values.shape, dtype=bool) if nodata is None or math.isnan(nodata) else values != nodata
        if values.dtype.kind == "f":
            valid &= ~np.isnan(values)
        scale, offset = self.dataset.scales[band - 1], self.dataset.offsets[band - 1]
        if scale != 1 or offset != 0:
            values = values.astype(np.float64) * scale + offset
        return values, valid


_OPEN: dict[Path, _OpenRaster] = {}
_OPEN_LOCK = threading.Lock()


def open_raster(path: Path) -> _OpenRaster:
    """The cached open dataset of a raster file, reopened when the file was replaced."""
    path = path.resolve()
    with _OPEN_LOCK:
        cached = _OPEN.get(path)
        if cached is None or cached.revision != content_revision(path):
            if cached is not None:
                with cached.lock:
                    cached.dataset.close()
            cached = _OPEN[path] = _OpenRaster(path)
        return cached


# --- statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class ZonalRasters:
    """The rasters the statistics read: the first catalog raster of each role, and where files live."""

    land_cover: RasterLayer | None
    elevation: RasterLayer | None
    slope: RasterLayer | None
    data_dir: Path

    @classmethod
    def from_catalog(cls, catalog: Catalog, data_dir: Path) -> ZonalRasters:
        roles = ("land_cover", "elevation", "slope")
        return cls(*(catalog.raster_for_role(role) for role in roles), data_dir=Path(data_dir))


class _Zone:
    """A zone (WGS84) and its cells on each grid, computed once per grid for the rasters sharing it."""

    def __init__(self, geometry: BaseGeometry) -> None:
        self.geometry = geometry
        self._cells: dict[tuple[str, Affine, int, int], tuple[Cells, Measure]] = {}

    def values(self, layer: RasterLayer, data_dir: Path) -> tuple[np.ndarray, np.ndarray, Cells, Measure] | None:
        """Values, validity and weights of the cells under the zone; None when the file is unusable."""
        try:
            raster = open_raster(layer.path(data_dir))
        except (OSError, ValueError, rasterio.errors.RasterioError) as exc:
            log.warning("raster %s cannot be read for statistics: %s", layer.id, exc)
            return None
        grid = raster.grid
        key = (grid.crs_wkt, grid.transform, grid.width, grid.height)
        if key not in self._cells:
            self._cells[key] = zone_cells(self.geometry, grid, layer.id)
        cells, measure = self._cells[key]
        window = cells.window
        if window is None:
            return np.empty(0), np.empty(0, dtype=bool), cells, measure
        block, valid = raster.read(layer.band, window, layer.nodata)
        rows, cols = cells.rows - window.row_off, cells.cols - window.col_off
        return block[rows, cols], valid[rows, cols], cells, measure


def _land_cover(layer: RasterLayer, data_dir: Path, zone: _Zone) -> dict[str, Any] | None:
    found = zone.values(layer, data_dir)
    if found is None:
        return None
    values, valid, cells, measure = found
    total = float(cells.weights.sum()) + cells.outside
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:  # classes index the sums directly
        sums = np.bincount(values[valid], weights=cells.weights[valid])
        classes_found = np.flatnonzero(sums)
        sums = sums[classes_found]
    else:
        classes_found, inverse = np.unique(values[valid].astype(np.int64), return_inverse=True)
        sums = np.bincount(inverse, weights=cells.weights[valid], minlength=len(classes_found))
    table = layer.class_by_value()
    classes = []
    for value, weight in sorted(zip(classes_found.tolist(), sums.tolist(), strict=True), key=lambda p: (-p[1], p[0])):
        if weight <= 0:
            continue
        known = table.get(value)
        entry: dict[str, Any] = {
            "value": value,
            "name": known.name.model_dump() if known else {"zh": f"类别 {value}", "en": f"Class {value}"},
            "color": known.color if known else UNKNOWN_CLASS_COLOR,
            "area_km2": round(weight / 1e6, 6) if measure == "area" else 0.0,
            "percent": round(100 * weight / total, 4) if total else 0.0,
        }
        if measure == "length":
            entry["length_m"] = round(weight, 2)
        elif measure == "count":
            entry["points"] = round(weight)
        classes.append(entry)
    nodata = float(cells.weights[~valid].sum()) + cells.outside
    return {
        "raster": layer.id,
        "area_km2": round(total / 1e6, 6) if measure == "area" else 0.0,
        "classes": classes,
        "nodata_km2": round(nodata / 1e6, 6) if measure == "area" else 0.0,
    }


def _terrain(layer: RasterLayer, data_dir: Path, zone: _Zone, *, with_min: bool) -> dict[str, Any] | None:
    found = zone.values(layer, data_dir)
    if found is None:
        return None
    values, valid, cells, _ = found
    valid = valid & (cells.weights > 0)
    data, weights = values[valid].astype(np.float64), cells.weights[valid]
    unit = layer.unit or ("m" if layer.role == "elevation" else "°")
    if not len(data):
        stats = {"min": None, "mean": None, "max": None}
    else:
        stats = {"min": data.min(), "mean": float((data * weights).sum() / weights.sum()), "max": data.max()}
    result = {"raster": layer.id, **{k: None if v is None else round(float(v), 2) for k, v in stats.items()}}
    if not with_min:
        result.pop("min")
    return {**result, "unit": unit}


def zonal_statistics(zone: BaseGeometry, rasters: ZonalRasters) -> dict[str, Any]:
    """Land cover and terrain of a zone given in WGS84 (the contract's ``rasters`` object), and
    what the weights measure: ``area`` (polygons), ``length`` (lines) or ``count`` (points)."""
    dimension = int(shapely.get_dimensions(zone))
    measure: Measure = "area" if dimension == 2 else "length" if dimension == 1 else "count"
    cells = _Zone(zone)
    land_cover = rasters.land_cover and _land_cover(rasters.land_cover, rasters.data_dir, cells)
    elevation = rasters.elevation and _terrain(rasters.elevation, rasters.data_dir, cells, with_min=True)
    slope = rasters.slope and _terrain(rasters.slope, rasters.data_dir, cells, with_min=False)
    terrain = {"elevation": elevation, "slope": slope} if elevation or slope else None
    return {"measure": measure, "land_cover": land_cover or None, "terrain": terrain}


async def zonal_statistics_async(zone: BaseGeometry, rasters: ZonalRasters) -> dict[str, Any]:
    """``zonal_statistics`` in a worker thread (it is CPU-bound; the service is async)."""
    return await asyncio.to_thread(zonal_statistics, zone, rasters)


def buffer_on_ellipsoid(geometry: BaseGeometry, metres: float) -> BaseGeometry:
    """A WGS84 geometry buffered by ``metres`` in an equal-area projection centred on it."""
    local = LocalEqualArea.around(geometry).transformer
    buffered = transform_geometry(geometry, local).buffer(metres, quad_segs=16)
    return transform_geometry(buffered, local, direction="INVERSE")


async def site_statistics(
    geometry: BaseGeometry, dimension: int, buffer_m: float, rasters: ZonalRasters
) -> dict[str, Any]:
    """The ``rasters`` part of a zone check.

    A polygon site is measured as it is (the land it would take; the buffer only widens
    the search for nearby features). Points and lines take no land: with a buffer, the
    buffered polygon is measured; without one, the cells under the points or along the line.
    """
    buffered = dimension < 2 and buffer_m > 0
    zone = buffer_on_ellipsoid(geometry, buffer_m) if buffered else geometry
    statistics = await zonal_statistics_async(zone, rasters)
    measure = statistics.pop("measure")
    basis = {"basis": "buffer" if buffered else "site", "buffer_m": buffer_m if buffered else 0.0, "measure": measure}
    return {"zone": basis, **statistics}


async def feature_statistics(
    conn: AsyncConnection,
    catalog: Catalog,
    rasters: ZonalRasters,
    layer_id: str,
    feature_id: int,
    scope: FeatureScope | None = None,
) -> dict[str, Any]:
    """Land cover and terrain of one feature of a polygon layer (e.g. a red line); a feature the
    caller's ``scope`` leaves out is not found."""
    polygon_layers = [layer.id for layer in catalog if layer.is_polygon]
    if layer_id not in polygon_layers:
        known = "is not a polygon layer" if layer_id in catalog else "does not exist"
        valid = ", ".join(polygon_layers)
        raise NotFound(f"layer {layer_id!r} {known}; statistics exist for the polygon layers {valid}")
    layer = catalog.get(layer_id)
    statement = sql.SQL("SELECT t.{name}::text, ST_AsBinary(t.{geom}) FROM {table} AS t WHERE t.{id} = %(id)s").format(
        name=sql.Identifier(layer.name_property),
        geom=sql.Identifier(layer.geometry_column),
        table=scoped_table(layer, scope),
        id=sql.Identifier(layer.id_column),
    )
    row = await (await conn.execute(statement, {"id": feature_id, **scope_params(scope)})).fetchone()
    if row is None:
        raise NotFound(f"{layer_id} {feature_id} does not exist; GET /api/layers/{layer_id}/features lists the ids")
    name, wkb = row
    statistics = await zonal_statistics_async(shapely.from_wkb(wkb), rasters)
    zone = {"basis": "feature", "buffer_m": 0.0, "measure": statistics.pop("measure")}
    return {"layer": layer_id, "id": feature_id, "name": name, "zone": zone, **statistics}
