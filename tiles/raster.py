"""Raster tiles: catalog rasters drawn as 256-px PNG/WebP web tiles with rio-tiler.

rio-tiler reads the WebMercatorQuad tile from the COG (picking the overview, warping from
the file's CRS), and this module colours it with the catalog's class table (categorical)
or colour ramp over the range (continuous); no-data cells are transparent. Elevation rasters
also give their heights (Terrarium) and a hillshade, shaded here from a tile read with a
one-pixel margin. Reads run in
a small thread pool, never on the event loop; each thread keeps its dataset handles open
and reopens a file when it is replaced. Tiles go through the shared tile cache under keys
that carry the file's content revision, so a new file is never answered from old tiles.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import render

from layers.catalog import Catalog, RasterLayer
from layers.rasters import content_revision
from tiles.cache import CachedTile, CacheKey, SingleFlight, TileCache
from tiles.grid import TileAddress

TILE_SIZE = 256
ImageFormat = Literal["png", "webp", "terrarium", "hillshade"]
"""png/webp: drawn with the catalog's colours; terrarium: elevation as Terrarium-encoded RGB PNG
(metres = R * 256 + G + B / 256 - 32768; what MapLibre's raster-dem sources read); hillshade:
elevation shaded by a light from the north-west, as a translucent RGBA PNG to lay over a map."""
MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "webp": "image/webp",
    "terrarium": "image/png",
    "hillshade": "image/png",
}
ELEVATION_FORMATS = frozenset({"terrarium", "hillshade"})
EARTH_RADIUS_M = 6378137.0  # WebMercatorQuad's sphere
SUN_AZIMUTH_DEG = 315.0  # the cartographic convention: light from the north-west ...
SUN_ALTITUDE_DEG = 45.0  # ... 45 degrees above the horizon (gdaldem's defaults)
SHADOW_RGB = (40, 40, 32)
HIGHLIGHT_RGB = (255, 255, 255)
HIGHLIGHT_STRENGTH = 0.5  # lit slopes brighten less than shaded ones darken


def exaggeration(z: int) -> float:
    """The vertical exaggeration of the shading at zoom ``z``: twice at zoom 12 and closer, and
    more the farther out (×1.3 a level, at most 6), where the tile's pixels smooth the slopes
    away (the usual practice of web hillshades)."""
    return min(6.0, 2.0 * 1.3 ** max(0, 12 - z))


_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "png": ("PNG", {"ZLEVEL": "6"}),
    "webp": ("WEBP", {"LOSSLESS": "TRUE"}),
}


def terrarium(values: np.ndarray, mask: np.ndarray) -> bytes:
    """Elevations (metres) as a Terrarium RGB PNG; no-data cells (the sea) are 0 m, i.e. flat."""
    shifted = np.where(mask, values.astype(np.float64), 0.0) + 32768.0
    whole = np.floor(shifted)
    rgb = np.stack([np.floor(whole / 256), whole % 256, np.floor((shifted - whole) * 256)]).astype(np.uint8)
    return render(rgb, img_format="PNG", ZLEVEL="6")


def shade(heights: np.ndarray, pixel_m: float, vertical: float = 1.0) -> np.ndarray:
    """Illumination (0 = in shadow, 1 = facing the sun) of the inner cells of ``heights`` (a grid
    with a one-cell margin, rows from north to south, cells ``pixel_m`` metres apart on the
    ground, heights multiplied by ``vertical``): Horn's 3×3 gradient, then the cosine of the
    angle between the surface normal and the sun (azimuth 315°, altitude 45°), as gdaldem
    hillshade computes it (``-z`` being ``vertical``)."""
    z = heights.astype(np.float64) * vertical
    nw, n, ne = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    w, e = z[1:-1, :-2], z[1:-1, 2:]
    sw, s, se = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    east = ((ne + 2 * e + se) - (nw + 2 * w + sw)) / (8 * pixel_m)  # dz/dx, x to the east
    north = ((nw + 2 * n + ne) - (sw + 2 * s + se)) / (8 * pixel_m)  # dz/dy, y to the north
    azimuth, altitude = np.radians(SUN_AZIMUTH_DEG), np.radians(SUN_ALTITUDE_DEG)
    # The sun's direction (east, north, up) against the surface normal (-dz/dx, -dz/dy, 1).
    sun = (np.sin(azimuth) * np.cos(altitude), np.cos(azimuth) * np.cos(altitude), np.sin(altitude))
    lit = (-east * sun[0] - north * sun[1] + sun[2]) / np.sqrt(1 + east**2 + north**2)
    return np.clip(lit, 0.0, 1.0)


def hillshade(heights: np.ndarray, mask: np.ndarray, pixel_m: float, vertical: float = 1.0) -> bytes:
    """A translucent RGBA PNG of the hillshade of ``heights`` (a grid with a one-cell margin;
    ``mask``: cells with data, same shape): slopes turned from the sun darken, slopes facing it
    lighten, flat ground and no-data cells (the sea, shaded as 0 m) are clear."""
    lit = shade(np.where(mask, heights, 0.0), pixel_m, vertical)
    flat = np.sin(np.radians(SUN_ALTITUDE_DEG))
    dark = np.clip((flat - lit) / flat, 0.0, 1.0)
    light = np.clip((lit - flat) / (1 - flat), 0.0, 1.0) * HIGHLIGHT_STRENGTH
    shadow = dark >= light
    rgb = np.where(shadow, np.array(SHADOW_RGB).reshape(3, 1, 1), np.array(HIGHLIGHT_RGB).reshape(3, 1, 1))
    alpha = np.where(mask[1:-1, 1:-1], np.round(255 * np.maximum(dark, light)), 0)
    return render(rgb.astype(np.uint8), alpha.astype(np.uint8), img_format="PNG", ZLEVEL="6")


def ground_pixel_m(address: TileAddress, size: int = TILE_SIZE) -> float:
    """Metres on the ground between two pixels of a WebMercatorQuad tile, at its centre's latitude."""
    mercator_m = 2 * np.pi * EARTH_RADIUS_M / (size * 2**address.z)
    y = 1 - 2 * (address.y + 0.5) / 2**address.z  # the centre's mercator y, -1..1
    latitude = np.arctan(np.sinh(np.pi * y))
    return float(mercator_m * np.cos(latitude))


class RasterUnavailable(Exception):
    """A catalog raster's file is missing or unreadable; the message says how to produce it."""


@dataclass(frozen=True)
class RasterFileInfo:
    """Facts read from a raster's file: its content revision and lon/lat bounds."""

    revision: str
    bounds: tuple[float, float, float, float]


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def color_table(raster: RasterLayer) -> np.ndarray:
    """256×4 RGBA lookup table: class colours by value, or the ramp sampled over the range.

    For a continuous raster entry ``i`` is the colour of ``min + i/255·(max - min)``.
    """
    table = np.zeros((256, 4), dtype=np.uint8)
    if raster.categorical:
        for item in raster.classes or []:
            table[item.value] = (*_hex_rgb(item.color), 255)
        return table
    assert raster.colormap is not None and raster.range is not None  # noqa: S101 - validated by the catalog
    low, high = raster.range
    values = np.linspace(low, high, 256)
    stops = [value for value, _ in raster.colormap.stops]
    colors = np.array([_hex_rgb(color) for _, color in raster.colormap.stops], dtype=np.float64)
    for channel in range(3):
        table[:, channel] = np.round(np.interp(values, stops, colors[:, channel]))
    table[:, 3] = 255
    return table


def colorize(raster: RasterLayer, table: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA bands (4, H, W) of a tile's values; cells outside ``mask``, NaN or unclassified are transparent."""
    if raster.categorical:
        valid = mask & (values >= 0) & (values <= 255)
        index = np.where(valid, values, 0).astype(np.uint8)
    else:
        low, high = raster.range  # type: ignore[misc]
        valid = mask & np.isfinite(values)
        scaled = (np.where(valid, values, low).astype(np.float32) - low) * (255.0 / (high - low))
        index = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    rgba = table[index]
    rgba[..., 3] = np.where(valid, rgba[..., 3], 0)
    return np.moveaxis(rgba, -1, 0)


class _Handles(threading.local):
    """Open readers of one worker thread: path -> (revision, reader)."""

    def __init__(self) -> None:
        self.readers: dict[Path, tuple[str, Reader]] = {}


class RasterTiler:
    """Renders and caches the raster tiles of the catalog's rasters."""

    def __init__(
        self, catalog: Callable[[], Catalog], data_dir: Path, cache: TileCache | None = None, threads: int = 4
    ) -> None:
        self._catalog = catalog
        self.data_dir = data_dir
        self.cache = cache
        self._tables: dict[str, tuple[RasterLayer, np.ndarray]] = {}
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="raster-tiles")
        self._handles = _Handles()
        self._info: dict[str, tuple[str, RasterFileInfo]] = {}
        self._single_flight = SingleFlight()

    @property
    def catalog(self) -> Catalog:
        """The catalog now (rasters registered while the service runs included)."""
        return self._catalog()

    def _table(self, raster: RasterLayer) -> np.ndarray:
        """The colour lookup table of a raster, made once per catalog entry."""
        known = self._tables.get(raster.id)
        if known is None or known[0] is not raster:
            known = self._tables[raster.id] = (raster, color_table(raster))
        return known[1]

    def get(self, raster_id: str) -> RasterLayer:
        """The catalog raster of an id; KeyError names the valid ids."""
        return self.catalog.get_raster(raster_id)

    def path(self, raster: RasterLayer) -> Path:
        return raster.path(self.data_dir)

    def revision(self, raster: RasterLayer) -> str:
        """The content revision of the raster's file (changes when the file is replaced)."""
        try:
            return content_revision(self.path(raster))
        except OSError:
            raise RasterUnavailable(
                f"the file of raster {raster.id!r} is missing ({self.path(raster)}); "
                "run `ecomap demo rasters` for the demo rasters or `ecomap raster add` to register it again"
            ) from None

    def file_info(self, raster: RasterLayer) -> RasterFileInfo:
        """Revision and lon/lat bounds of the raster's file (read once per revision)."""
        revision = self.revision(raster)
        known = self._info.get(raster.id)
        if known is not None and known[0] == revision:
            return known[1]
        with Reader(str(self.path(raster))) as reader:
            bounds = tuple(round(v, 6) for v in reader.get_geographic_bounds(reader.tms.rasterio_geographic_crs))
        info = RasterFileInfo(revision, bounds)  # type: ignore[arg-type]
        self._info[raster.id] = (revision, info)
        return info

    async def tile(self, raster: RasterLayer, address: TileAddress, image_format: ImageFormat) -> CachedTile:
        """The tile of a raster at an address (empty data: nothing to draw there), cached."""
        revision = self.revision(raster)
        key = CacheKey((f"raster.{raster.id}",), address.z, address.x, address.y, f"{image_format}.{revision}")
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit

        async def render() -> CachedTile:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(self._executor, self.render, raster, revision, address, image_format)
            entry = CachedTile(data)
            if self.cache is not None:
                self.cache.put(key, entry)
            return entry

        return await self._single_flight.run(key, render)

    def render(self, raster: RasterLayer, revision: str, address: TileAddress, image_format: ImageFormat) -> bytes:
        """Read and encode one tile (blocking; runs in the thread pool). Empty bytes: nothing to draw."""
        if address.z < raster.minzoom:
            return b""
        reader = self._reader(self.path(raster), revision)
        method = "nearest" if raster.categorical else "bilinear"
        margin = 1 if image_format == "hillshade" else 0  # the gradient at the edge needs the next cells
        try:
            image = reader.tile(
                address.x,
                address.y,
                address.z,
                tilesize=TILE_SIZE,
                indexes=raster.band,
                resampling_method=method,
                reproject_method=method,
                buffer=margin or None,
            )  # no-data comes from the file (written into every COG); overriding it costs ~10 ms a tile
        except TileOutsideBounds:
            return b""
        mask = image.mask > 0
        if not mask.any():
            return b""
        if image_format == "terrarium":
            return terrarium(image.array.data[0], mask)
        if image_format == "hillshade":
            if not mask[1:-1, 1:-1].any():
                return b""
            return hillshade(image.array.data[0], mask, ground_pixel_m(address), exaggeration(address.z))
        rgba = colorize(raster, self._table(raster), image.array.data[0], mask)
        if not rgba[3].any():
            return b""
        driver, creation = _ENCODERS[image_format]
        return render(rgba[:3], rgba[3], img_format=driver, **creation)

    async def value_at(self, raster: RasterLayer, lon: float, lat: float) -> float | None:
        """The raster's value at a lon/lat point (the cell holding it); None for no data or
        outside the raster."""
        revision = self.revision(raster)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read_point, raster, revision, lon, lat)

    def _read_point(self, raster: RasterLayer, revision: str, lon: float, lat: float) -> float | None:
        reader = self._reader(self.path(raster), revision)
        try:
            point = reader.point(lon, lat, indexes=raster.band)
        except PointOutsideBounds:
            return None
        if bool(point.array.mask[0]):
            return None
        return point.array.data[0].item()

    def _reader(self, path: Path, revision: str) -> Reader:
        readers = self._handles.readers
        known = readers.get(path)
        if known is not None and known[0] == revision:
            return known[1]
        if known is not None:
            known[1].close()
        reader = Reader(str(path))
        readers[path] = (revision, reader)
        return reader

    def close(self) -> None:
        """Close the open datasets, each in the thread that opened it (GDAL's environment is
        per thread), and stop the thread pool."""
        barrier = threading.Barrier(self._threads)

        def close_own_readers() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)  # one task per thread: all of them hold here together
            for _, reader in self._handles.readers.values():
                reader.close()
            self._handles.readers.clear()

        futures = [self._executor.submit(close_own_readers) for _ in range(self._threads)]
        concurrent.futures.wait(futures, timeout=30)
        self._executor.shutdown(wait=True, cancel_futures=True)
