"""Terrarium and hillshade tiles of the elevation raster: the heights decoded from a terrarium
tile's pixels are the DEM file's and the sea (no data) is 0 m; a hillshade tile shades those
heights as gdaldem does, the sea clear; only elevation rasters have either."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import rasterio
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Geod
from rasterio.transform import from_origin
from rasterio.windows import Window

from tests.test_rasters import TMS, pixel_of, sample
from tiles.raster import exaggeration, shade


def decode(rgb: tuple[int, int, int]) -> float:
    red, green, blue = rgb
    return red * 256 + green + blue / 256 - 32768


def terrarium_tile(client: TestClient, lon: float, lat: float, z: int) -> tuple[Image.Image, int, int]:
    tile, px, py = pixel_of(lon, lat, z)
    response = client.get(f"/tiles/raster/dem/{tile.z}/{tile.x}/{tile.y}.terrarium")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content)).convert("RGB"), px, py


def test_terrarium_heights_are_the_dem_files(client: TestClient, raster_dir: Path) -> None:
    for lon, lat in [(117.93, 24.61), (118.05, 24.75), (118.2, 24.7)]:
        image, px, py = terrarium_tile(client, lon, lat, 14)
        height = float(sample(raster_dir / "dem.tif", lon, lat))
        # Bilinear resampling on ~9 m pixels of 30 m cells: within a few metres of the cell's value.
        assert abs(decode(image.getpixel((px, py))) - height) < 20, (lon, lat, height)


def test_the_sea_is_flat_and_other_rasters_have_no_terrarium(client: TestClient) -> None:
    image, px, py = terrarium_tile(client, 118.08, 24.40, 12)  # south of Xiamen island: sea, no data
    assert decode(image.getpixel((px, py))) == 0
    refused = client.get("/tiles/raster/landcover/12/3392/1760.terrarium")
    assert refused.status_code == 400
    assert "elevation" in refused.json()["detail"]
    described = {r["id"]: r for r in client.get("/api/rasters").json()}
    assert described["dem"]["terrarium_tiles"].endswith("/tiles/raster/dem/{z}/{x}/{y}.terrarium")
    assert described["landcover"]["terrarium_tiles"] is None


# --- hillshade tiles: the relief shaded on the server -------------------------------------------


def test_shading_is_gdaldems(raster_dir: Path, tmp_path: Path) -> None:
    """The shading of a DEM window equals gdaldem hillshade's (an independent implementation) on
    the same heights at the same spacing: gdaldem writes 1 + 254 × cos(angle to the sun)."""
    with rasterio.open(raster_dir / "dem.tif") as dataset:
        row, col = dataset.index(117.93, 24.61)  # the hills of the north-west
        heights = dataset.read(1, window=Window(col - 40, row - 40, 80, 80)).astype(np.float64)
    assert np.ptp(heights) > 50, "the window should hold relief"
    spacing = 30.0
    source, shaded = tmp_path / "dem.tif", tmp_path / "shade.tif"
    profile = {"driver": "GTiff", "width": 80, "height": 80, "count": 1, "dtype": "float64", "crs": "EPSG:32650"}
    with rasterio.open(source, "w", transform=from_origin(500000, 2700000, spacing, spacing), **profile) as out:
        out.write(heights, 1)
    subprocess.run(
        ["gdaldem", "hillshade", "-az", "315", "-alt", "45", "-z", "2.5", "-q", str(source), str(shaded)], check=True
    )
    with rasterio.open(shaded) as dataset:
        reference = (dataset.read(1)[1:-1, 1:-1].astype(np.float64) - 1) / 254  # its edge cells are no data
    ours = shade(heights, spacing, vertical=2.5)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 0.005  # gdaldem rounds to whole levels of 1/254
    assert ours.min() < 0.5 < 0.8 < ours.max(), "the window has slopes turned from the light and facing it"


def test_hillshade_tiles_shade_the_heights_of_the_terrarium_tiles(client: TestClient) -> None:
    """A hillshade tile is the shading of the heights the terrarium tile of the same address holds
    (computed here from those, the ground spacing worked out from the tile's latitude): dark where a
    slope is turned from the light, light where it faces it, clear on the sea."""
    tile, _, _ = pixel_of(117.93, 24.61, 13)
    address = f"{tile.z}/{tile.x}/{tile.y}"
    response = client.get(f"/tiles/raster/dem/{address}.hillshade")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    rgba = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA")).astype(np.float64)
    assert rgba.shape == (256, 256, 4)
    terrain = np.asarray(terrarium_tile(client, 117.93, 24.61, 13)[0]).astype(np.float64)
    heights = terrain[..., 0] * 256 + terrain[..., 1] + terrain[..., 2] / 256 - 32768
    west, south, east, north = TMS.bounds(tile)
    metres = Geod(ellps="WGS84").inv(west, (south + north) / 2, east, (south + north) / 2)[2] / 256
    lit = shade(heights, metres, vertical=exaggeration(tile.z))  # the tile's inner 254 × 254 pixels
    flat = np.sin(np.radians(45))
    dark = np.clip((flat - lit) / flat, 0, 1)
    light = np.clip((lit - flat) / (1 - flat), 0, 1) * 0.5
    inner = rgba[1:-1, 1:-1]
    land = heights[1:-1, 1:-1] != 0  # no data is 0 m in a terrarium tile, clear in a hillshade tile
    assert 0.5 < land.mean() < 0.9  # the tile holds land and sea
    assert (inner[..., 3][~land] == 0).mean() > 0.95  # (the coast's few cells at 0 m are land)
    expected_alpha = 255 * np.maximum(dark, light)
    # The terrarium tile's bilinear heights rounded to 1/256 m, the alpha to whole levels.
    assert np.abs(inner[..., 3] - expected_alpha)[land].max() < 3
    shadowed = dark > light + 0.05
    lighter = light > dark + 0.05
    assert shadowed.any() and lighter.any()
    assert (inner[..., 0][shadowed] < 64).all() and (inner[..., 0][lighter] == 255).all()


def test_the_sea_is_clear_and_only_elevations_have_a_hillshade(client: TestClient) -> None:
    tile, px, py = pixel_of(118.08, 24.40, 12)  # south of Xiamen island: sea, no data, in a tile with land
    response = client.get(f"/tiles/raster/dem/{tile.z}/{tile.x}/{tile.y}.hillshade")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).convert("RGBA").getpixel((px, py))[3] == 0
    tile = TMS.tile(118.30, 24.30, 12)  # open sea: nothing to draw
    assert client.get(f"/tiles/raster/dem/{tile.z}/{tile.x}/{tile.y}.hillshade").status_code == 204
    refused = client.get("/tiles/raster/landcover/12/3392/1760.hillshade")
    assert refused.status_code == 400
    assert refused.json()["detail"] == "hillshade tiles are made of elevation rasters only; 'landcover' is not one"
    described = {r["id"]: r for r in client.get("/api/rasters").json()}
    assert described["dem"]["hillshade_tiles"].endswith("/tiles/raster/dem/{z}/{x}/{y}.hillshade")
    assert described["landcover"]["hillshade_tiles"] is None
