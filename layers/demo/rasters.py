"""Demo rasters for Xiamen: land cover, elevation and slope, consistent with the demo vectors.

Generated from the demo dataset (same seed, same output) on a 1 arc-second lon/lat grid
(EPSG:4326, ≈ 31 m × 28 m here, the grid of SRTM and Copernicus GLO-30 DEMs) over
117.85–118.45 E, 24.38–24.93 N, and written as COGs into the raster data directory:

- ``landcover.tif`` (uint8, nodata 0 outside Xiamen's land and sea): water in the sea, the
  enclosed bays, the reservoirs, the water parts of drinking-water zones and along the
  streams; forest on the hills, in forest parks, scenic areas and land red lines; mangroves
  and coastal wetland at the named sites (下潭尾, 九龙江口, 同安湾西岸, 东坑湾); built-up
  land on Xiamen Island and around the district centres; cropland elsewhere.
- ``dem.tif`` (Int16 metres, nodata -32768 on the sea): a coastal ramp, a rise towards the
  northern uplands and hills at the red-line hill sites, the highest (≈ 900 m) around
  天竺山 and in northern 同安; reservoirs are flat water surfaces.
- ``slope.tif`` (Float32 degrees, nodata -9999): Horn's slope of the DEM, cell sizes
  measured on the ellipsoid per row.

Everything is sample data (``ECOMAP_SAMPLE=true`` in the file tags, ``is_sample`` in the
catalog). ``write_demo_rasters`` skips the work when the files exist and carry the stamp
of the same generator code and seed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine
from shapely.geometry.base import BaseGeometry

from layers.demo.build import DEFAULT_SEED, DemoDataset, build_demo_dataset
from layers.demo.places import RESERVOIRS
from layers.rasters import slope_degrees, write_array_cog

CRS = "EPSG:4326"
BOUNDS = (117.85, 24.38, 118.45, 24.93)
RESOLUTION = 1 / 3600
WIDTH = round((BOUNDS[2] - BOUNDS[0]) / RESOLUTION)
HEIGHT = round((BOUNDS[3] - BOUNDS[1]) / RESOLUTION)
TRANSFORM = Affine(RESOLUTION, 0.0, BOUNDS[0], 0.0, -RESOLUTION, BOUNDS[3])
FILES = {"landcover": "landcover.tif", "dem": "dem.tif", "slope": "slope.tif"}
STAMP_TAG = "ECOMAP_DEMO_STAMP"

FOREST, GRASS, CROP, BUILT, WATER, WETLAND, MANGROVE = 10, 30, 40, 50, 80, 90, 95
LANDCOVER_NODATA, DEM_NODATA, SLOPE_NODATA = 0, -32768, -9999.0
MAX_ELEVATION = 900.0

_KX = 111_320.0 * math.cos(math.radians(24.65))  # metres per degree, for shaping only
_KY = 110_760.0

HILLS: list[tuple[float, float, float, float]] = [
    # lon, lat, relative height, radius (km): at the hill red lines and forest parks.
    (117.928, 24.615, 1.00, 3.2),  # 天竺山
    (117.905, 24.575, 0.45, 2.0),  # 东孚
    (117.965, 24.645, 0.42, 1.6),  # 美人山
    (118.000, 24.690, 0.40, 2.6),  # hills around 石兜–坂头
    (118.030, 24.498, 0.36, 1.5),  # 蔡尖尾山
    (118.085, 24.872, 1.00, 4.0),  # 同安北部山区
    (118.025, 24.840, 0.85, 3.4),  # 莲花
    (118.145, 24.850, 0.90, 3.4),  # 汀溪
    (117.960, 24.815, 0.70, 3.0),  # 同安西北部
    (118.205, 24.860, 0.80, 3.0),  # 同安北部
    (118.212, 24.790, 0.50, 2.2),  # 北辰山
    (118.185, 24.752, 0.32, 1.8),  # 五峰
    (118.298, 24.765, 0.65, 3.0),  # 大帽山
    (118.255, 24.760, 0.38, 2.0),  # 新圩
    (118.315, 24.680, 0.20, 2.0),  # 内厝
    (118.268, 24.600, 0.18, 1.2),  # 香山
    (118.110, 24.458, 0.21, 1.2),  # 万石山
    (118.118, 24.503, 0.20, 0.9),  # 仙岳山
]

LAKES: list[tuple[float, float, float, float, float]] = [
    # lon, lat, radius (m), elongation, angle (degrees): water bodies that are not reservoirs.
    (118.095, 24.478, 420.0, 2.4, 15.0),  # 筼筜湖
]

CENTRES: list[tuple[float, float, float]] = [
    # lon, lat, radius (km) of the built-up area of district centres off the island.
    (118.035, 24.490, 2.6),  # 海沧
    (118.045, 24.560, 2.0),  # 杏林
    (118.105, 24.585, 2.4),  # 集美
    (118.150, 24.728, 2.6),  # 同安
    (118.245, 24.625, 2.2),  # 翔安新店
    (118.255, 24.668, 1.6),  # 马巷
]


def demo_stamp(seed: int = DEFAULT_SEED) -> str:
    """Identifies the generator (its source and the demo sources it draws on) and the seed."""
    digest = hashlib.blake2b(digest_size=12)
    sources = [*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parent.parent / "rasters.py"]
    for path in sources:
        digest.update(path.read_bytes())
    digest.update(str(seed).encode())
    return digest.hexdigest()


def demo_rasters_current(data_dir: Path, seed: int = DEFAULT_SEED) -> bool:
    """Whether the demo rasters in ``data_dir`` exist and were made by this generator and seed."""
    stamp = demo_stamp(seed)
    for name in FILES.values():
        try:
            with rasterio.open(data_dir / name) as dataset:
                if dataset.tags().get(STAMP_TAG) != stamp:
                    return False
        except rasterio.errors.RasterioIOError:
            return False
    return True


def write_demo_rasters(
    data_dir: Path, dataset: DemoDataset | None = None, seed: int = DEFAULT_SEED, force: bool = False
) -> dict[str, Path]:
    """Generate the demo rasters into ``data_dir`` unless already current; returns the files written."""
    if not force and demo_rasters_current(data_dir, seed):
        return {}
    dataset = dataset or build_demo_dataset(seed)
    rng = np.random.default_rng(seed + 7)
    grid = _Grid()
    dry = grid.mask([dataset.dry_land])
    dem = _elevation(grid, dry, dataset, rng)
    landcover = _land_cover(grid, dry, dem, dataset, rng)
    slope = slope_degrees(dem, dry, TRANSFORM, geographic=True)
    slope[~dry] = SLOPE_NODATA
    dem_int = np.where(dry, np.round(dem), DEM_NODATA).astype(np.int16)
    tags = {STAMP_TAG: demo_stamp(seed), "ECOMAP_SAMPLE": "true", "ECOMAP_SEED": str(seed)}
    paths = {key: data_dir / name for key, name in FILES.items()}
    common = {"transform": TRANSFORM, "crs": CRS, "zlevel": 1}  # fast; reading costs the same
    write_array_cog(landcover, paths["landcover"], nodata=LANDCOVER_NODATA, categorical=True, tags=tags, **common)
    write_array_cog(dem_int, paths["dem"], nodata=DEM_NODATA, tags=tags, **common)
    write_array_cog(slope, paths["slope"], nodata=SLOPE_NODATA, tags=tags, **common)
    return paths


class _Grid:
    """Cell-centre coordinates of the demo grid and helpers to rasterize and smooth on it."""

    def __init__(self) -> None:
        self.lon = BOUNDS[0] + (np.arange(WIDTH) + 0.5) * RESOLUTION
        self.lat = BOUNDS[3] - (np.arange(HEIGHT) + 0.5) * RESOLUTION

    def mask(self, geoms: Iterable[BaseGeometry], all_touched: bool = False) -> np.ndarray:
        shapes = [(g, 1) for g in geoms if g is not None and not g.is_empty]
        if not shapes:
            return np.zeros((HEIGHT, WIDTH), dtype=bool)
        burned = rasterize(
            shapes, out_shape=(HEIGHT, WIDTH), transform=TRANSFORM, all_touched=all_touched, dtype="uint8"
        )
        return burned.astype(bool)

    def add_bump(self, field: np.ndarray, lon: float, lat: float, height: float, radius_km: float) -> None:
        """Raise ``field`` to a Gaussian hill (standard deviation 0.8 × ``radius_km``) where it is lower."""
        sigma = 0.8 * radius_km
        reach_x, reach_y = 3.5 * sigma * 1000.0 / _KX, 3.5 * sigma * 1000.0 / _KY
        cols = slice(*np.searchsorted(self.lon, [lon - reach_x, lon + reach_x]))
        rows = slice(*np.searchsorted(-self.lat, [-(lat + reach_y), -(lat - reach_y)]))
        dx = ((self.lon[cols] - lon) * _KX / 1000.0)[None, :]
        dy = ((self.lat[rows] - lat) * _KY / 1000.0)[:, None]
        hill = height * np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
        np.maximum(field[rows, cols], hill, out=field[rows, cols])

    def distance_km(self, lon: float, lat: float) -> np.ndarray:
        dx = ((self.lon - lon) * _KX / 1000.0)[None, :]
        dy = ((self.lat - lat) * _KY / 1000.0)[:, None]
        return np.sqrt(dx**2 + dy**2).astype(np.float32)


def _fast_length(n: int) -> int:
    """The smallest 5-smooth integer >= n (quick FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _blur_fft(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur through the FFT, with mirrored edges (no wrap-around)."""
    pad = int(3 * sigma_px) + 1
    rows, cols = (_fast_length(n + 2 * pad) for n in field.shape)
    padded = np.pad(field, ((pad, rows - field.shape[0] - pad), (pad, cols - field.shape[1] - pad)), mode="reflect")
    fy = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(cols).astype(np.float32)[None, :]
    kernel = np.exp(-2 * (math.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    smooth = np.fft.irfft2(np.fft.rfft2(padded) * kernel, s=padded.shape)
    return smooth[pad : pad + field.shape[0], pad : pad + field.shape[1]].astype(np.float32)


def _upsample(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling of a field computed on a grid ``factor`` times coarser."""

    def axis(n_fine: int, n_coarse: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((np.arange(n_fine) + 0.5) / factor - 0.5, 0, n_coarse - 1)
        low = np.minimum(position.astype(int), n_coarse - 2)
        return low, low + 1, (position - low).astype(np.float32)

    r0, r1, wr = axis(HEIGHT, coarse.shape[0])
    c0, c1, wc = axis(WIDTH, coarse.shape[1])
    rows = coarse[r0] * (1 - wr[:, None]) + coarse[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc[None, :]) + rows[:, c1] * wc[None, :]


def _blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a full-grid field; wide kernels run on a coarser grid (same result to the eye)."""
    factor = max(1, int(sigma_px // 3))
    if factor == 1:
        return _blur_fft(field.astype(np.float32), sigma_px)
    h, w = (HEIGHT // factor) * factor, (WIDTH // factor) * factor
    coarse = field[:h, :w].astype(np.float32).reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return _upsample(_blur_fft(coarse, sigma_px / factor), factor)


def _noise(rng: np.random.Generator, sigma_px: float) -> np.ndarray:
    """Smooth random field with zero mean and unit standard deviation (features ~``sigma_px`` cells)."""
    factor = max(1, int(sigma_px // 2))
    shape = (-(-HEIGHT // factor), -(-WIDTH // factor))
    field = _upsample(_blur_fft(rng.standard_normal(shape, dtype=np.float32), sigma_px / factor), factor)
    return (field - field.mean()) / field.std()


def _elevation(grid: _Grid, dry: np.ndarray, dataset: DemoDataset, rng: np.random.Generator) -> np.ndarray:
    """Metres above sea level on dry land (float32; values off the land are meaningless)."""
    inland = np.clip((_blur(dry, 60.0) - 0.5) * 2.0, 0.0, 1.0)
    north = np.clip((grid.lat - 24.66) / 0.20, 0.0, 1.0)[:, None]
    base = 2.0 + 60.0 * inland + 140.0 * (north * north * (3 - 2 * north))
    hills = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    for lon, lat, height, radius in HILLS:
        grid.add_bump(hills, lon, lat, height, radius)
    ridges = 1.0 + 0.35 * _noise(rng, 12.0)
    roughness = _noise(rng, 4.0)
    knolls = np.clip(_noise(rng, 40.0), 0.0, None) * (50.0 + 120.0 * north)  # low hills between the peaks
    elevation = (base + knolls) * inland + MAX_ELEVATION * hills * np.clip(ridges, 0.3, None) * inland
    elevation += roughness * (2.0 + 12.0 * hills)
    elevation = np.clip(elevation, 0.0, None)
    top = float(elevation[dry].max())
    elevation *= MAX_ELEVATION / top
    for water in _reservoir_geoms(dataset):
        inside = grid.mask([water]) & dry
        if inside.any():
            elevation[inside] = np.percentile(elevation[inside], 20)
    return elevation.astype(np.float32)


def _reservoir_geoms(dataset: DemoDataset) -> list[BaseGeometry]:
    """Inland water bodies: water parts of drinking-water zones, reservoirs and lakes."""
    zones = dataset.layers["water_source_zone"]
    water_parts = list(zones.loc[zones["part"] == "水域", "geom"])
    ellipses = []
    shapes = [(r.center, r.radius_m, r.elongation, r.angle_deg) for r in RESERVOIRS.values()]
    shapes += [((lon, lat), radius, elongation, angle) for lon, lat, radius, elongation, angle in LAKES]
    for center, radius, elongation, angle in shapes:
        circle = shapely.Point(0, 0).buffer(radius, quad_segs=16)
        shape = shapely.affinity.rotate(shapely.affinity.scale(circle, elongation, 1.0), angle)
        shape = shapely.affinity.scale(shape, 1 / _KX, 1 / _KY, origin=(0, 0))
        ellipses.append(shapely.affinity.translate(shape, *center))
    merged = shapely.union_all(water_parts + ellipses)
    return list(shapely.get_parts(merged))


def _named(frame, names: Iterable[str]) -> list[BaseGeometry]:
    wanted = set(names)
    return [geom for name, geom in zip(frame["name"], frame["geom"], strict=True) if name in wanted]


def _land_cover(
    grid: _Grid, dry: np.ndarray, dem: np.ndarray, dataset: DemoDataset, rng: np.random.Generator
) -> np.ndarray:
    """Class per cell, painted from the general to the specific (later rules win)."""
    layers = dataset.layers
    territory = grid.mask([dataset.land, dataset.sea])
    cover = np.where(territory, WATER, LANDCOVER_NODATA).astype(np.uint8)
    cover[dry] = CROP
    woods, grass = _noise(rng, 8.0), _noise(rng, 6.0)
    cover[dry & (woods > 1.1)] = FOREST
    cover[dry & (grass > 1.9)] = GRASS
    cover[dry & (dem > 110.0 + 40.0 * woods)] = FOREST
    cover[dry & (dem > 600.0) & (grass > 0.7)] = GRASS

    districts = layers["district"]
    island = grid.mask(districts.loc[districts["adcode"].isin(["350203", "350206"]), "geom"])
    urban = island & (dem < 90.0) & (woods < 1.6)
    for lon, lat, radius in CENTRES:
        urban |= (grid.distance_km(lon, lat) + 0.5 * woods < radius) & (dem < 80.0)
    cover[dry & urban] = BUILT

    parks = layers["protected_area"]
    forest_parks = parks.loc[parks["category"].isin(["森林公园", "风景名胜区"]), "geom"]
    redlines = layers["redline"]
    land_redlines = redlines.loc[redlines["domain"] == "陆域"]
    sandy = land_redlines["function_type"] == "土地沙化敏感"
    cover[dry & grid.mask(list(forest_parks) + list(land_redlines.loc[~sandy, "geom"]))] = FOREST
    cover[dry & grid.mask(land_redlines.loc[sandy, "geom"])] = GRASS

    cover[grid.mask(_reservoir_geoms(dataset))] = WATER
    cover[dry & grid.mask(layers["river"]["geom"], all_touched=True)] = WATER

    shore = _blur(dry, 12.0)
    near_shore = ~dry & territory & (shore > 0.02)
    wide_shore = ~dry & territory & (_blur(dry, 25.0) > 0.02)
    xiatanwei = parks.loc[parks["area_name"] == "下潭尾红树林湿地公园"]
    wetlands = _named(
        redlines, ["同安湾西岸滨海湿地生物多样性维护生态保护红线", "东坑湾滨海湿地海岸生态稳定生态保护红线"]
    )
    wetlands += list(xiatanwei.loc[xiatanwei["zone"] != "核心保护区", "geom"])
    cover[wide_shore & grid.mask(wetlands)] = WETLAND
    mangroves = _named(redlines, ["下潭尾红树林生物多样性维护生态保护红线", "九龙江口红树林生物多样性维护生态保护红线"])
    mangroves += list(xiatanwei.loc[xiatanwei["zone"] == "核心保护区", "geom"])
    cover[near_shore & grid.mask(mangroves)] = MANGROVE
    return cover
