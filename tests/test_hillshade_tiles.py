"""Terrarium tiles of the elevation raster (what the map's hillshade reads): the heights decoded
from a tile's pixels are the DEM file's, the sea (no data) is 0 m, and only elevation rasters
have them."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.test_rasters import pixel_of, sample


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
