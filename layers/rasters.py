"""Raster files of the catalog: Cloud-Optimized GeoTIFFs written atomically, checked on the way in.

Every raster the service draws or measures is a single-band COG with internal tiles and
overviews in the raster data directory (``Settings.rasters.data_dir``). This module writes
them (from arrays for the demo, from a user's GeoTIFF for ``ecomap raster add``), always to
a temporary file renamed into place, so a failure never leaves a partial raster behind. It
also derives slope from a DEM with the cell size measured on the ellipsoid.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

BLOCK_SIZE = 256
"""Internal tile size of the COGs: one 256-px web tile at native zoom touches few blocks."""

# WGS84 / CGCS2000 ellipsoid (they differ by < 0.1 mm in the semi-minor axis).
_A = 6_378_137.0
_E2 = 6.694379990141317e-3


class RasterFileError(ValueError):
    """A raster file is unusable; the message names the file and says how to fix it."""


@dataclass(frozen=True)
class RasterInfo:
    """What ``inspect_geotiff`` found in a file."""

    path: Path
    driver: str
    crs: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    nodata: float | None
    bounds_lonlat: tuple[float, float, float, float]


def content_revision(path: Path) -> str:
    """A short token that changes whenever the file is replaced or rewritten (size, mtime, inode)."""
    stat = path.stat()
    return f"{stat.st_size:x}-{stat.st_mtime_ns:x}-{stat.st_ino:x}"


def _temporary_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{os.getpid()}.tmp")


def translate_to_cog(
    source: rasterio.io.DatasetReader,
    dst: Path,
    *,
    band: int = 1,
    nodata: float | None = None,
    categorical: bool = False,
    tags: dict[str, str] | None = None,
    zlevel: int = 6,
) -> None:
    """Write one band of an open dataset as a COG (deflate, 256-px blocks, overviews) at ``dst``.

    Overviews use ``mode`` for categorical rasters (a class stays a class) and ``average``
    otherwise. The file appears at ``dst`` only once complete (written next to it, then renamed).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=BLOCK_SIZE, blockysize=BLOCK_SIZE, zlevel=zlevel)
    if not categorical:
        profile["predictor"] = 3 if np.dtype(source.dtypes[band - 1]).kind == "f" else 2
    tmp = _temporary_path(dst)
    try:
        cog_translate(
            source,
            str(tmp),
            profile,
            indexes=[band],
            nodata=nodata,
            overview_resampling="mode" if categorical else "average",
            in_memory=True,
            quiet=True,
            additional_cog_metadata=tags or None,
            config={"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_TIFF_OVR_BLOCKSIZE": str(BLOCK_SIZE)},
        )
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_array_cog(
    data: np.ndarray,
    dst: Path,
    *,
    transform: Affine,
    crs: str,
    nodata: float,
    categorical: bool = False,
    tags: dict[str, str] | None = None,
    zlevel: int = 6,
) -> None:
    """Write a 2-D array as a single-band COG at ``dst`` (atomically, see ``translate_to_cog``)."""
    height, width = data.shape
    profile = {
        "driver": "GTiff",
        "dtype": data.dtype.name,
        "count": 1,
        "height": height,
        "width": width,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(data, 1)
        with memory.open() as dataset:
            translate_to_cog(dataset, dst, nodata=nodata, categorical=categorical, tags=tags, zlevel=zlevel)


def geographic_cell_size_m(transform: Affine, rows: int) -> tuple[np.ndarray, float]:
    """Cell sizes in metres of a lon/lat grid, on the ellipsoid.

    Returns (width of a cell at each row's centre latitude, array of shape (rows,)) and the
    mean cell height. East-west: ``N(φ)·cos φ·Δλ``; north-south: ``M(φ)·Δφ`` (radii of
    curvature in the prime vertical and the meridian).
    """
    lat = np.radians(transform.f + transform.e * (np.arange(rows) + 0.5))
    sin2 = np.sin(lat) ** 2
    prime_vertical = _A / np.sqrt(1 - _E2 * sin2)
    meridional = _A * (1 - _E2) / (1 - _E2 * sin2) ** 1.5
    dx = prime_vertical * np.cos(lat) * math.radians(abs(transform.a))
    dy = meridional * math.radians(abs(transform.e))
    return dx, float(dy.mean())


def slope_degrees(dem: np.ndarray, valid: np.ndarray, transform: Affine, geographic: bool) -> np.ndarray:
    """Slope in degrees with Horn's 3×3 weights (as ``gdaldem slope``), float32.

    Cells outside ``valid`` count as height 0 (the sea) for their land neighbours; edges
    repeat the border. On a lon/lat grid the cell size is taken per row on the ellipsoid.
    """
    z = np.where(valid, dem, 0).astype(np.float32)
    p = np.pad(z, 1, mode="edge")
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dz_dx = (c + 2 * f + i) - (a + 2 * d + g)
    dz_dy = (g + 2 * h + i) - (a + 2 * b + c)
    if geographic:
        dx, dy = geographic_cell_size_m(transform, dem.shape[0])
        dx = dx[:, None]
    else:
        dx, dy = abs(transform.a), abs(transform.e)
    rise = np.hypot(dz_dx / (8 * dx), dz_dy / (8 * dy))
    return np.degrees(np.arctan(rise)).astype(np.float32)


class _GdalErrors(logging.Handler):
    """Collects the I/O errors GDAL reports as warnings (damaged tags, truncated strips)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "error" in message.lower():
            self.messages.append(message)


def inspect_geotiff(path: Path, band: int = 1, nodata: float | None = None) -> RasterInfo:
    """Check that a file is a readable GeoTIFF with a CRS, the band and a nodata value.

    The band is read over the whole extent (decimated) so a damaged or truncated file is
    refused here rather than half-converted.

    Raises:
        RasterFileError: with a message naming the file and the fix.
    """
    if not path.is_file():
        raise RasterFileError(f"{path}: no such file")
    gdal_log = logging.getLogger("rasterio._env")
    errors = _GdalErrors()
    gdal_log.addHandler(errors)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # reported below as "no CRS"
            dataset = rasterio.open(path)
        with dataset:
            if dataset.driver not in ("GTiff", "COG"):
                raise RasterFileError(f"{path}: a {dataset.driver} file, not a GeoTIFF; convert it with gdal_translate")
            if not 1 <= band <= dataset.count:
                raise RasterFileError(f"{path}: band {band} requested but the file has {dataset.count} band(s)")
            dataset.read(band, out_shape=(min(dataset.height, 256), min(dataset.width, 256)))
            if errors.messages:
                raise RasterFileError(f"{path}: the GeoTIFF is damaged ({errors.messages[0]}); export it again")
            if dataset.crs is None:
                raise RasterFileError(
                    f"{path}: the GeoTIFF has no coordinate reference system; assign one first, e.g. "
                    "`gdal_edit.py -a_srs EPSG:4326 FILE` (or EPSG:4490/4527/4548 for CGCS2000 data)"
                )
            if dataset.nodata is None and nodata is None:
                raise RasterFileError(
                    f"{path}: the file defines no nodata value; give the value of empty cells with --nodata"
                )
            bounds = rasterio.warp.transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
            return RasterInfo(
                path=path,
                driver=dataset.driver,
                crs=dataset.crs.to_string(),
                width=dataset.width,
                height=dataset.height,
                count=dataset.count,
                dtypes=tuple(dataset.dtypes),
                nodata=dataset.nodata if nodata is None else nodata,
                bounds_lonlat=tuple(bounds),  # type: ignore[arg-type]
            )
    except RasterioIOError as exc:
        detail = exc.__cause__ or exc.__context__ or exc  # GDAL's own message, when rasterio wraps it
        raise RasterFileError(f"{path}: not a readable GeoTIFF ({detail}); export it again") from None
    finally:
        gdal_log.removeHandler(errors)


def is_valid_cog(path: Path) -> bool:
    """Whether a file is a valid Cloud-Optimized GeoTIFF (internal tiles, overviews in order)."""
    valid, _errors, _warnings = cog_validate(str(path), quiet=True)
    return valid
