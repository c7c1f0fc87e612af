"""Raster layers: the catalog, the demo rasters, PNG/WebP tiles decoded pixel by pixel, the
raster list with legends, and ``ecomap raster add`` on real GeoTIFFs written here."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image

from layers.catalog import CATALOG_DIR, CatalogError, load_catalog
from layers.demo.rasters import BOUNDS, demo_rasters_current
from layers.rasters import is_valid_cog, slope_degrees

TMS = morecantile.tms.get("WebMercatorQuad")
CATALOG = load_catalog()


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def class_color(raster_id: str, value: int) -> tuple[int, int, int]:
    return hex_rgb(CATALOG.get_raster(raster_id).class_by_value()[value].color)


def pixel_of(lon: float, lat: float, z: int) -> tuple[morecantile.Tile, int, int]:
    """The tile holding a lon/lat at zoom z and the pixel of that point inside the 256-px tile."""
    tile = TMS.tile(lon, lat, z)
    west, south, east, north = TMS.xy_bounds(tile)
    x, y = TMS.xy(lon, lat)
    return tile, int((x - west) / (east - west) * 256), int((north - y) / (north - south) * 256)


def get_image(client: TestClient, raster_id: str, tile: morecantile.Tile, fmt: str = "png") -> Image.Image:
    response = client.get(f"/tiles/raster/{raster_id}/{tile.z}/{tile.x}/{tile.y}.{fmt}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/{fmt}"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (256, 256)
    return image.convert("RGBA")


def sample(path: Path, lon: float, lat: float) -> float:
    with rasterio.open(path) as dataset:
        return next(dataset.sample([(lon, lat)]))[0]


# --- the catalog -------------------------------------------------------------------------


def test_bundled_rasters_are_separate_from_vector_layers() -> None:
    assert CATALOG.raster_ids == ["landcover", "dem", "slope"]
    assert not set(CATALOG.raster_ids) & set(CATALOG.ids)
    assert all(not hasattr(layer, "band") for layer in CATALOG)  # iterating the catalog: vector layers only
    assert CATALOG.raster_for_role("elevation").id == "dem"
    with pytest.raises(KeyError, match="valid rasters: landcover, dem, slope"):
        CATALOG.get_raster("ndvi")


def _catalog_copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, target)
    return target


@pytest.mark.parametrize(
    ("file", "replace", "by", "message"),
    [
        ("dem.yaml", "unit: m", "unit: m\ncolour: red", "unknown key 'colour'"),
        ("dem.yaml", "range: [0, 900]", "range: [900, 0]", "range minimum 900 must be below the maximum 0"),
        ("dem.yaml", "    - [50, ", "    - [-50, ", "stop values must increase strictly"),
        ("dem.yaml", "range: [0, 900]\n", "", "a continuous raster needs colormap"),
        ("landcover.yaml", "{value: 30,", "{value: 10,", "duplicate class values: [10]"),
        ("landcover.yaml", 'color: "#ffff4c"', 'color: "yellow"', "classes.1.color: String should match pattern"),
        ("landcover.yaml", "categorical: true", "categorical: false", "classes are for categorical rasters"),
        ("landcover.yaml", "file: landcover.tif", "file: ../etc/passwd", "file: String should match pattern"),
        ("slope.yaml", "kind: raster", "kind: image", "kind: Input should be 'vector' or 'raster'"),
        ("slope.yaml", "role: slope", "role: steepness", "role: Input should be"),
    ],
)
def test_invalid_raster_entries_name_file_and_key(tmp_path: Path, file: str, replace: str, by: str, message: str):
    directory = _catalog_copy(tmp_path)
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert replace in text
    path.write_text(text.replace(replace, by, 1), encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(directory)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_registered_raster_may_not_reuse_an_id(tmp_path: Path) -> None:
    extra = tmp_path / "registered"
    extra.mkdir()
    (extra / "dem.yaml").write_text((CATALOG_DIR / "dem.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"registered/dem\.yaml: id 'dem' is already declared in .*dem\.yaml"):
        load_catalog(raster_dirs=[extra])
    (extra / "dem.yaml").unlink()
    (extra / "river.yaml").write_text((CATALOG_DIR / "river.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(CatalogError, match="a raster layer file needs `kind: raster`"):
        load_catalog(raster_dirs=[extra])


# --- the demo rasters ----------------------------------------------------------------------


def test_demo_rasters_are_cogs_consistent_with_the_vector_demo(raster_dir: Path) -> None:
    assert demo_rasters_current(raster_dir)
    for name in ("landcover", "dem", "slope"):
        path = raster_dir / f"{name}.tif"
        assert is_valid_cog(path)
        with rasterio.open(path) as dataset:
            assert dataset.crs.to_epsg() == 4326
            assert dataset.overviews(1), "COGs carry overviews"
            assert dataset.tags()["ECOMAP_SAMPLE"] == "true"
            assert tuple(round(v, 6) for v in dataset.bounds) == BOUNDS
    landcover, dem = raster_dir / "landcover.tif", raster_dir / "dem.tif"
    assert sample(landcover, 118.19, 24.60) == 80  # 同安湾: water
    assert sample(landcover, 118.05, 24.49) == 80  # 西海域
    assert sample(landcover, 118.132, 24.803) == 80  # 汀溪水库
    assert sample(landcover, 117.93, 24.61) == 10  # 天竺山: forest
    assert sample(landcover, 118.22, 24.65) == 95  # 下潭尾: mangroves
    assert sample(landcover, 118.38, 24.45) == 0  # 金门 (not Xiamen): no data
    assert sample(dem, 118.19, 24.60) == -32768  # the sea has no elevation
    assert 600 < sample(dem, 117.93, 24.61) <= 900  # 天竺山
    assert sample(dem, 118.096, 24.477) < 120  # 筼筜湖 on the island: low
    with rasterio.open(dem) as dataset:
        heights = dataset.read(1, masked=True)
        assert 880 <= heights.max() <= 900


def test_slope_uses_metric_cell_sizes_on_the_ellipsoid() -> None:
    """A plane rising 1 m per metre eastwards is 45°, on a lon/lat grid at Xiamen's latitude."""
    resolution = 1 / 3600
    transform = rasterio.transform.from_origin(118.0, 24.6, resolution, resolution)
    lat = 24.6 - (np.arange(5) + 0.5) * resolution
    east_m = 6_378_137.0 / np.sqrt(1 - 6.69438e-3 * np.sin(np.radians(lat)) ** 2) * np.cos(np.radians(lat))
    east_m *= np.radians(resolution)
    dem = np.cumsum(np.broadcast_to(east_m[:, None], (5, 6)), axis=1)
    slope = slope_degrees(dem, np.ones_like(dem, dtype=bool), transform, geographic=True)
    assert np.allclose(slope[1:-1, 1:-1], 45.0, atol=0.01)


# --- tiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_tile_over_a_bay_has_the_water_colour(client: TestClient, fmt: str) -> None:
    tile, px, py = pixel_of(118.19, 24.60, 12)  # 同安湾
    image = get_image(client, "landcover", tile, fmt)
    assert image.getpixel((px, py)) == (*class_color("landcover", 80), 255)


def test_tile_colours_are_the_catalog_classes(client: TestClient) -> None:
    tile, px, py = pixel_of(117.93, 24.61, 13)  # 天竺山
    image = get_image(client, "landcover", tile)
    assert image.getpixel((px, py)) == (*class_color("landcover", 10), 255)
    allowed = {(*hex_rgb(c.color), 255) for c in CATALOG.get_raster("landcover").classes} | {(0, 0, 0, 0)}
    assert {color for _, color in image.getcolors(maxcolors=65536)} <= allowed


def test_nodata_is_transparent(client: TestClient) -> None:
    # On the Kinmen shore at zoom 11 a tile holds Xiamen's sea and, east of the territory, no data.
    tile, px, py = pixel_of(118.38, 24.45, 11)
    image = get_image(client, "landcover", tile)
    assert image.getpixel((px, py))[3] == 0
    alpha = np.asarray(image)[..., 3]
    assert (alpha == 255).any() and (alpha == 0).any()
    dem_tile, sx, sy = pixel_of(118.19, 24.60, 12)  # the sea is no data in the DEM
    assert get_image(client, "dem", dem_tile).getpixel((sx, sy))[3] == 0


def test_continuous_tile_follows_the_ramp(client: TestClient, raster_dir: Path) -> None:
    lon, lat = 117.93, 24.61
    tile, px, py = pixel_of(lon, lat, 14)
    image = get_image(client, "dem", tile)
    raster = CATALOG.get_raster("dem")
    height = sample(raster_dir / "dem.tif", lon, lat)
    stops = raster.colormap.stops
    expected = [np.interp(height, [v for v, _ in stops], [hex_rgb(c)[i] for _, c in stops]) for i in range(3)]
    got = image.getpixel((px, py))
    assert got[3] == 255
    assert all(abs(g - e) <= 12 for g, e in zip(got[:3], expected, strict=True)), (got, expected, height)


def test_tile_outside_the_raster_and_below_minzoom_is_204(client: TestClient) -> None:
    assert client.get("/tiles/raster/landcover/12/0/0.png").status_code == 204
    tile = TMS.tile(118.1, 24.6, 5)
    assert client.get(f"/tiles/raster/landcover/5/{tile.x}/{tile.y}.png").status_code == 204


def test_values_at_a_point_are_the_files_cells(client: TestClient, raster_dir: Path) -> None:
    """GET /api/rasters/values: each raster's value in the cell holding the point, read with
    rasterio independently; the land-cover class with its catalog name and colour."""
    lon, lat = 117.93, 24.61  # 天竺山: forest on a hill
    answer = client.get("/api/rasters/values", params={"lon": lon, "lat": lat}).json()
    assert (answer["lon"], answer["lat"]) == (lon, lat)
    values = {v["raster"]: v for v in answer["values"]}
    assert list(values) == [r.id for r in CATALOG.rasters]
    land = int(sample(raster_dir / "landcover.tif", lon, lat))
    assert values["landcover"]["value"] == land == 10
    expected_class = CATALOG.get_raster("landcover").class_by_value()[land]
    assert values["landcover"]["class"] == {
        "value": land,
        "name": expected_class.name.model_dump(),
        "color": expected_class.color,
    }
    assert values["dem"]["value"] == int(sample(raster_dir / "dem.tif", lon, lat)) > 100
    assert values["dem"]["unit"] == "m"
    assert values["slope"]["value"] == pytest.approx(float(sample(raster_dir / "slope.tif", lon, lat)), abs=0.006)


def test_values_where_a_raster_has_no_data_are_null(client: TestClient) -> None:
    # 同安湾: water in the land cover, no data (sea) in the elevation model; far away: outside.
    bay = client.get("/api/rasters/values", params={"lon": 118.19, "lat": 24.60, "rasters": "dem,landcover"}).json()
    assert [(v["raster"], v["value"]) for v in bay["values"]] == [("dem", None), ("landcover", 80)]
    away = client.get("/api/rasters/values", params={"lon": 2.35, "lat": 48.85}).json()
    assert all(v["value"] is None for v in away["values"])
    assert all(v["class"] is None for v in away["values"] if v["raster"] == "landcover")


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"lon": 200, "lat": 24.6}, 400, "lon"),
        ({"lon": 118.1, "lat": 95}, 400, "lat"),
        ({"lon": "east", "lat": 24.6}, 400, "lon"),
        ({"lat": 24.6}, 400, "lon"),
        ({"lon": 118.1, "lat": 24.6, "rasters": "dem,ndvi"}, 404, "valid rasters: landcover, dem, slope"),
    ],
)
def test_values_errors_say_what_to_fix(client: TestClient, params: dict, status: int, message: str) -> None:
    response = client.get("/api/rasters/values", params=params)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_tile_errors_say_what_to_fix(client: TestClient) -> None:
    response = client.get("/tiles/raster/ndvi/12/3400/1760.png")
    assert response.status_code == 404
    assert "valid rasters: landcover, dem, slope" in response.json()["detail"]
    response = client.get("/tiles/raster/dem/3/9/1.png")
    assert response.status_code == 400
    assert "x and y must be between 0 and 7" in response.json()["detail"]
    response = client.get("/tiles/raster/dem/12/3400/1760.gif")
    assert response.status_code == 400
    assert "'png', 'webp', 'terrarium' or 'hillshade'" in response.json()["detail"]


def test_etag_and_304(client: TestClient) -> None:
    tile, _, _ = pixel_of(118.1, 24.6, 12)
    url = f"/tiles/raster/slope/{tile.z}/{tile.x}/{tile.y}.png"
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get(url).content == first.content


def test_tilejson(client: TestClient) -> None:
    body = client.get("/tiles/raster/landcover.json").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"] == ["http://127.0.0.1/tiles/raster/landcover/{z}/{x}/{y}.png"]
    assert body["bounds"] == list(BOUNDS)
    assert body["minzoom"] == 6 and body["maxzoom"] == 18
    assert body["tileSize"] == 256 and body["format"] == "png"
    assert client.get("/tiles/raster/ndvi.json").status_code == 404


def test_raster_list_has_legends(client: TestClient) -> None:
    body = {item["id"]: item for item in client.get("/api/rasters").json()}
    assert list(body) == ["landcover", "dem", "slope"]
    landcover = body["landcover"]
    assert landcover["legend"]["type"] == "categorical"
    water = next(c for c in landcover["legend"]["classes"] if c["value"] == 80)
    assert water == {"value": 80, "name": {"zh": "水体", "en": "Water"}, "color": "#0064c8"}
    assert landcover["role"] == "land_cover" and landcover["is_sample"] and landcover["available"]
    assert landcover["tilejson"] == "http://127.0.0.1/tiles/raster/landcover.json"
    assert landcover["tiles"] == "http://127.0.0.1/tiles/raster/landcover/{z}/{x}/{y}.png"
    assert landcover["bounds"] == list(BOUNDS)
    dem = body["dem"]["legend"]
    assert dem["type"] == "continuous" and (dem["min"], dem["max"], dem["unit"]) == (0, 900, "m")
    assert dem["stops"][0] == [0, "#2f7d4a"]
    assert body["slope"]["unit"] == "°" and body["slope"]["role"] == "slope"


# --- ecomap raster add / list / remove -------------------------------------------------------


def write_geotiff(path: Path, data: np.ndarray, crs: str | None = "EPSG:4548", nodata: float | None = 0) -> Path:
    """A small GeoTIFF near Xiamen (CGCS2000 / 3-degree GK CM 117E by default, 100 m cells)."""
    transform = rasterio.transform.from_origin(615_000, 2_720_000, 100, 100)
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1, "dtype": data.dtype}
    with rasterio.open(path, "w", **profile, crs=crs, transform=transform, nodata=nodata) as dataset:
        dataset.write(data, 1)
    return path


CLASSES_YAML = """\
- {value: 1, name: {zh: 林地, en: Forest}, color: "#1b7837"}
- {value: 2, name: {zh: 水体, en: Water}, color: "#2166ac"}
"""


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rasters"
    directory.mkdir()
    return directory


def run_cli(args: list[str], data_dir: Path):
    from typer.testing import CliRunner

    from gis_service.cli import app as cli_app

    return CliRunner().invoke(cli_app, args, env={"ECOMAP_RASTERS__DATA_DIR": str(data_dir)})


def files_in(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def test_raster_add_registers_a_categorical_cog(tmp_path: Path, data_dir: Path, database_url: str) -> None:
    from gis_service import create_app
    from gis_service.settings import RasterSettings
    from tests.conftest import make_settings

    data = np.zeros((300, 400), dtype=np.uint8)
    data[:, :200] = 1
    data[:, 200:380] = 2  # the last 20 columns stay 0: nodata
    source = write_geotiff(tmp_path / "landuse.tif", data)
    classes = tmp_path / "classes.yaml"
    classes.write_text(CLASSES_YAML, encoding="utf-8")
    result = run_cli(
        ["raster", "add", "landuse", str(source), "--categorical", "--classes", str(classes), "--title-zh", "土地利用"],
        data_dir,
    )
    assert result.exit_code == 0, result.output
    assert "raster 'landuse' registered" in result.output
    assert files_in(data_dir) == {"landuse.tif", "catalog", "catalog/landuse.yaml"}
    assert is_valid_cog(data_dir / "landuse.tif")
    catalog = load_catalog(raster_dirs=[data_dir / "catalog"])
    layer = catalog.get_raster("landuse")
    assert layer.categorical and layer.title.zh == "土地利用" and layer.nodata == 0
    assert run_cli(["raster", "list"], data_dir).output.count("registered") == 1

    settings = make_settings(database_url, rasters=RasterSettings(data_dir=data_dir))
    with TestClient(create_app(settings)) as client:
        listed = {item["id"]: item for item in client.get("/api/rasters").json()}
        west, south, east, north = listed["landuse"]["bounds"]
        lat = (south + north) / 2
        forest_lon = west + (east - west) * 0.25
        tile, px, py = pixel_of(forest_lon, lat, 13)
        image = get_image(client, "landuse", tile)
        assert image.getpixel((px, py)) == (0x1B, 0x78, 0x37, 255)
        tile, px, py = pixel_of(west + (east - west) * 0.97, lat, 11)  # the nodata columns in the east
        image = get_image(client, "landuse", tile)
        assert image.getpixel((px, py))[3] == 0
        colors = {color for _, color in image.getcolors()}
        assert (0x21, 0x66, 0xAC, 255) in colors  # water cells next to them

        # Replacing the file changes the tile at once (cache keys carry the file's revision).
        forest_tile, px, py = pixel_of(forest_lon, lat, 13)
        before = client.get(f"/tiles/raster/landuse/13/{forest_tile.x}/{forest_tile.y}.png")
        write_geotiff(source, np.full((300, 400), 2, dtype=np.uint8))
        args = ["raster", "add", "landuse", str(source), "--categorical", "--classes", str(classes), "--replace"]
        replaced = run_cli(args, data_dir)
        assert replaced.exit_code == 0 and "replaced" in replaced.output, replaced.output
        after = client.get(f"/tiles/raster/landuse/13/{forest_tile.x}/{forest_tile.y}.png")
        assert after.headers["etag"] != before.headers["etag"]
        assert Image.open(io.BytesIO(after.content)).convert("RGBA").getpixel((px, py)) == (0x21, 0x66, 0xAC, 255)

    again = run_cli(["raster", "add", "landuse", str(source), "--categorical", "--classes", str(classes)], data_dir)
    assert files_in(data_dir) == {"landuse.tif", "catalog", "catalog/landuse.yaml"}
    assert again.exit_code == 1 and "add --replace to replace it" in again.output
    assert run_cli(["raster", "remove", "landuse"], data_dir).exit_code == 0
    assert files_in(data_dir) == {"catalog"}


def test_rasters_added_and_removed_while_running_show_without_a_restart(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """A running service lists, draws and measures a raster registered after it started,
    and forgets one removed, within a couple of seconds (the registry is looked at each second)."""
    import time

    from gis_service import create_app
    from gis_service.settings import RasterSettings
    from tests.conftest import make_settings

    def wait_for(condition, timeout: float = 60.0):  # a bound for a hung service, not a speed requirement
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            assert time.monotonic() < deadline, "not within the time"
            time.sleep(0.1)
        return result

    data = np.full((300, 400), 2, dtype=np.uint8)
    source = write_geotiff(tmp_path / "wetland.tif", data)
    classes = tmp_path / "classes.yaml"
    classes.write_text(CLASSES_YAML, encoding="utf-8")
    settings = make_settings(database_url, rasters=RasterSettings(data_dir=data_dir))
    with TestClient(create_app(settings)) as client:
        ids = lambda: {item["id"] for item in client.get("/api/rasters").json()}  # noqa: E731
        assert "wetland" not in ids()
        added = run_cli(["raster", "add", "wetland", str(source), "--categorical", "--classes", str(classes)], data_dir)
        assert added.exit_code == 0, added.output
        wait_for(lambda: "wetland" in ids())
        listed = {item["id"]: item for item in client.get("/api/rasters").json()}
        west, south, east, north = listed["wetland"]["bounds"]
        lon, lat = (west + east) / 2, (south + north) / 2
        tile, px, py = pixel_of(lon, lat, 13)
        assert get_image(client, "wetland", tile).getpixel((px, py)) == (0x21, 0x66, 0xAC, 255)
        values = client.get("/api/rasters/values", params={"lon": lon, "lat": lat, "rasters": "wetland"}).json()
        assert values["values"][0]["class"]["name"]["en"] == "Water"

        assert run_cli(["raster", "remove", "wetland"], data_dir).exit_code == 0
        wait_for(lambda: "wetland" not in ids())
        gone = client.get(f"/tiles/raster/wetland/{tile.z}/{tile.x}/{tile.y}.png")
        assert gone.status_code == 404 and "unknown raster 'wetland'" in gone.json()["detail"]


def test_raster_add_continuous_with_given_nodata(tmp_path: Path, data_dir: Path) -> None:
    data = np.linspace(0, 50, 200 * 200, dtype=np.float32).reshape(200, 200)
    data[:10] = -1
    source = write_geotiff(tmp_path / "ndvi.tif", data, crs="EPSG:4326", nodata=None)
    result = run_cli(["raster", "add", "ndvi", str(source), "--nodata", "-1", "--unit", "%"], data_dir)
    assert result.exit_code == 0, result.output
    layer = load_catalog(raster_dirs=[data_dir / "catalog"]).get_raster("ndvi")
    assert not layer.categorical and layer.nodata == -1 and layer.unit == "%"
    assert layer.range[0] > 0 and layer.range[1] == pytest.approx(50)
    assert is_valid_cog(data_dir / "ndvi.tif")
    with rasterio.open(data_dir / "ndvi.tif") as dataset:
        assert dataset.nodata == -1 and dataset.crs.to_epsg() == 4326


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        ("corrupt", [], "not a readable GeoTIFF"),
        ("truncated", [], "not a readable GeoTIFF"),
        ("text", [], "not a readable GeoTIFF"),
        ("no_crs", [], "has no coordinate reference system; assign one first"),
        ("no_nodata", [], "defines no nodata value; give the value of empty cells with --nodata"),
        ("good", ["--band", "3"], "band 3 requested but the file has 1 band(s)"),
        ("good", ["--categorical"], "a categorical raster needs --classes FILE"),
        ("good", ["--role", "height"], "role: Input should be 'land_cover', 'elevation' or 'slope'"),
        ("good_float", ["--categorical", "--classes", "CLASSES"], "needs integer cells, this band is float32"),
        ("missing", [], "no such file"),
    ],
)
def test_raster_add_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, data_dir: Path, make: str, args: list[str], message: str
) -> None:
    path = tmp_path / "input.tif"
    data = np.ones((50, 50), dtype=np.uint8)
    if make in ("corrupt", "truncated"):
        write_geotiff(path, np.arange(200 * 300, dtype=np.float32).reshape(200, 300))
        path.write_bytes(path.read_bytes()[: 300 if make == "corrupt" else 150_000])
    elif make == "text":
        path.write_text("not a raster", encoding="utf-8")
    elif make == "no_crs":
        write_geotiff(path, data, crs=None)
    elif make == "no_nodata":
        write_geotiff(path, data, nodata=None)
    elif make == "good":
        write_geotiff(path, data)
    elif make == "good_float":
        write_geotiff(path, data.astype(np.float32))
    classes = tmp_path / "classes.yaml"
    classes.write_text(CLASSES_YAML, encoding="utf-8")
    args = [str(classes) if a == "CLASSES" else a for a in args]
    result = run_cli(["raster", "add", "site", str(path), *args], data_dir)
    assert result.exit_code in (1, 2), result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert files_in(data_dir) == set() or files_in(data_dir) == {"catalog"}
    assert not list(data_dir.rglob("*.tif")) and not list(data_dir.rglob("*.yaml")) and not list(data_dir.rglob(".*"))


def test_raster_add_refuses_bundled_ids_and_bad_ids(tmp_path: Path, data_dir: Path) -> None:
    source = write_geotiff(tmp_path / "x.tif", np.ones((20, 20), dtype=np.uint8))
    result = run_cli(["raster", "add", "dem", str(source)], data_dir)
    assert result.exit_code == 1 and "'dem' is a layer of the bundled catalog" in result.output
    result = run_cli(["raster", "add", "redline", str(source)], data_dir)
    assert result.exit_code == 1 and "bundled catalog" in result.output
    result = run_cli(["raster", "add", "Bad-Id", str(source)], data_dir)
    assert result.exit_code == 1 and "invalid raster id 'Bad-Id'" in result.output
    assert files_in(data_dir) == set()
