"""Zonal statistics: synthetic rasters with known answers, then the demo rasters through the API.

The expected areas are computed independently of the implementation: the exact region of
each class block (shapely, in the raster's CRS), densified so its edges follow the grid,
measured with pyproj.Geod on the WGS84 ellipsoid.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box

from gis_service.errors import PayloadTooLarge
from gis_service.services import raster_stats
from gis_service.services.raster_stats import ZonalRasters, zonal_statistics
from layers.catalog import RasterLayer

GEOD = Geod(ellps="WGS84")
RES = 0.001  # degrees
ORIGIN = (118.0, 24.6)  # north-west corner of the geographic test grid
SIZE = 100  # cells each way
CLASS_EDGES = {10: (0, 40), 40: (40, 70), 80: (70, 100)}  # class: column range
NODATA_ROWS = (90, 100)  # bottom rows hold nodata
CLASSES = [
    {"value": 10, "name": {"zh": "林地", "en": "Tree cover"}, "color": "#006400"},
    {"value": 40, "name": {"zh": "耕地", "en": "Cropland"}, "color": "#f096ff"},
    {"value": 80, "name": {"zh": "水体", "en": "Water"}, "color": "#0064c8"},
]


def geodesic_area(geometry: shapely.Geometry, step: float) -> float:
    """Area on the WGS84 ellipsoid of a lon/lat region whose edges are straight in lon/lat."""
    if geometry.is_empty:
        return 0.0
    dense = shapely.segmentize(shapely.orient_polygons(geometry), step)
    return abs(GEOD.geometry_area_perimeter(dense)[0])


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0, west, 0, -ysize, north)


def write_raster(path: Path, data: np.ndarray, crs: str, transform, nodata: float | None) -> None:
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def land_cover_layer(file: str) -> RasterLayer:
    return RasterLayer.model_validate(
        {
            "id": "lc",
            "title": {"zh": "土地覆被", "en": "Land cover"},
            "file": file,
            "band_meaning": {"zh": "类别", "en": "Class"},
            "role": "land_cover",
            "categorical": True,
            "classes": CLASSES,
            "nodata": 0,
        }
    )


def continuous_layer(file: str, role: str, nodata: float) -> RasterLayer:
    return RasterLayer.model_validate(
        {
            "id": role,
            "title": {"zh": role, "en": role},
            "file": file,
            "band_meaning": {"zh": role, "en": role},
            "role": role,
            "unit": "m" if role == "elevation" else "°",
            "colormap": {"stops": [[0, "#000000"], [1000, "#ffffff"]]},
            "range": [0, 1000],
            "nodata": nodata,
        }
    )


def cell_box(col0: float, row0: float, col1: float, row1: float) -> Polygon:
    """A lon/lat box of the geographic test grid given in (fractional) cell coordinates."""
    x0, y0 = ORIGIN
    return box(x0 + col0 * RES, y0 - row1 * RES, x0 + col1 * RES, y0 - row0 * RES)


@pytest.fixture(scope="module")
def geographic(tmp_path_factory: pytest.TempPathFactory) -> ZonalRasters:
    """Land cover in column blocks with a nodata strip, and two ramps: z = 100 + 2·col and z = row."""
    directory = tmp_path_factory.mktemp("rasters")
    transform = from_origin(ORIGIN[0], ORIGIN[1], RES, RES)
    classes = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for value, (c0, c1) in CLASS_EDGES.items():
        classes[:, c0:c1] = value
    classes[NODATA_ROWS[0] : NODATA_ROWS[1], :] = 0
    write_raster(directory / "lc.tif", classes, "EPSG:4326", transform, 0)
    columns, rows = np.meshgrid(np.arange(SIZE), np.arange(SIZE))
    write_raster(directory / "x.tif", (100 + 2 * columns).astype(np.float32), "EPSG:4326", transform, -9999)
    write_raster(directory / "y.tif", rows.astype(np.float32), "EPSG:4490", transform, -9999)
    return ZonalRasters(
        land_cover_layer("lc.tif"),
        continuous_layer("x.tif", "elevation", -9999),
        continuous_layer("y.tif", "slope", -9999),
        data_dir=directory,
    )


def test_land_cover_areas_match_the_ellipsoid_exactly(geographic: ZonalRasters) -> None:
    # A pentagon cutting cells at odd fractions, crossing every class block and the nodata strip,
    # and sticking out of the raster's east edge (that part is nodata too).
    x0, y0 = ORIGIN
    site = Polygon(
        [
            (x0 + 0.01237, y0 - 0.02113),
            (x0 + 0.05571, y0 - 0.00719),
            (x0 + 0.10843, y0 - 0.03377),  # east of the raster
            (x0 + 0.08119, y0 - 0.09611),  # in the nodata strip
            (x0 + 0.02461, y0 - 0.08293),
        ]
    )
    result = zonal_statistics(site, geographic)["land_cover"]
    step = RES / 20
    expected = {
        value: geodesic_area(site.intersection(cell_box(c0, 0, c1, NODATA_ROWS[0])), step)
        for value, (c0, c1) in CLASS_EDGES.items()
    }
    nodata = geodesic_area(site.difference(cell_box(0, 0, SIZE, NODATA_ROWS[0])), step)
    total = geodesic_area(site, step)
    assert result["raster"] == "lc"
    assert [c["value"] for c in result["classes"]] == sorted(expected, key=lambda v: -expected[v])
    for entry in result["classes"]:
        assert entry["area_km2"] * 1e6 == pytest.approx(expected[entry["value"]], rel=1e-7, abs=1)
        assert entry["percent"] == pytest.approx(100 * expected[entry["value"]] / total, abs=1e-4)
        assert entry["name"] == next(c["name"] for c in CLASSES if c["value"] == entry["value"])
    assert result["nodata_km2"] * 1e6 == pytest.approx(nodata, rel=1e-7, abs=1)
    assert result["area_km2"] * 1e6 == pytest.approx(total, rel=1e-7, abs=1)
    assert nodata > 0.02 * total


def test_whole_cells_have_their_ellipsoidal_area(geographic: ZonalRasters) -> None:
    site = cell_box(3, 7, 5, 8)  # exactly two cells of tree cover
    result = zonal_statistics(site, geographic)["land_cover"]
    expected = geodesic_area(site, RES / 50)
    assert result["classes"] == [{**CLASSES[0], "area_km2": pytest.approx(expected / 1e6, abs=1e-6), "percent": 100.0}]
    assert expected == pytest.approx(2 * 101.2 * 110.8, rel=0.01)  # ~101 m × ~111 m per cell at 24.6°N


def test_zero_area_classes_are_omitted(geographic: ZonalRasters) -> None:
    result = zonal_statistics(cell_box(71.5, 10.5, 80.25, 30.75), geographic)["land_cover"]
    assert [c["value"] for c in result["classes"]] == [80]
    assert result["nodata_km2"] == 0


def test_mean_of_a_ramp_is_the_analytic_value(geographic: ZonalRasters) -> None:
    # z = 100 + 2·col: cells 10.25–30.75 are covered by 0.75, 1, …, 1, 0.75, so the mean is z at the
    # centre column 20 (140); rows all have the same weight profile, whatever their area.
    site = cell_box(10.25, 5.5, 30.75, 40.2)
    elevation = zonal_statistics(site, geographic)["terrain"]["elevation"]
    assert elevation == {"raster": "elevation", "min": 120.0, "mean": 140.0, "max": 160.0, "unit": "m"}


def test_mean_along_latitude_is_weighted_by_cell_area(geographic: ZonalRasters) -> None:
    # z = row over rows 2.5–60.5: the mean weights each row by its covered ellipsoidal area, which
    # shrinks northwards; computed here from Geod areas of the covered strip of each row.
    site = cell_box(12, 2.5, 14, 60.5)
    slope = zonal_statistics(site, geographic)["terrain"]["slope"]
    strips = {row: geodesic_area(site.intersection(cell_box(12, row, 14, row + 1)), RES / 50) for row in range(2, 61)}
    expected = sum(row * area for row, area in strips.items()) / sum(strips.values())
    assert slope["raster"] == "slope" and slope["max"] == 60.0 and "min" not in slope
    assert slope["mean"] == pytest.approx(expected, abs=0.005)
    assert slope["mean"] != pytest.approx(31.5, abs=0.005)  # an unweighted mean would be 31.5


def test_projected_raster_uses_the_areal_scale_factor(tmp_path: Path) -> None:
    # UTM 50N, 30 m cells, about 200 km east of the central meridian (scale factor ≈ 0.99995).
    transform = from_origin(700_000, 2_720_000, 30, 30)
    classes = np.full((200, 200), 40, dtype=np.uint8)
    classes[:, 120:] = 80
    write_raster(tmp_path / "lc.tif", classes, "EPSG:32650", transform, 0)
    rasters = ZonalRasters(land_cover_layer("lc.tif"), None, None, data_dir=tmp_path)
    site_utm = Polygon([(700_317, 2_717_911), (705_555, 2_718_777), (704_401, 2_714_483), (701_119, 2_715_207)])
    to_wgs84 = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)

    def wgs84(geometry: shapely.Geometry) -> shapely.Geometry:
        dense = shapely.segmentize(geometry, 1.0)
        return shapely.transform(dense, lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))

    result = zonal_statistics(wgs84(site_utm), rasters)["land_cover"]
    east = box(700_000 + 120 * 30, 2_714_000, 706_000, 2_720_000)
    expected = {
        80: geodesic_area(wgs84(site_utm.intersection(east)), 1e-4),
        40: geodesic_area(wgs84(site_utm.difference(east)), 1e-4),
    }
    assert {c["value"]: c["area_km2"] * 1e6 for c in result["classes"]} == {
        value: pytest.approx(area, rel=1e-6) for value, area in expected.items()
    }
    planar = site_utm.area
    assert abs(result["area_km2"] * 1e6 - planar) > 100  # the projection's scale is not ignored


def test_points_report_the_cell_under_them(geographic: ZonalRasters) -> None:
    inside = cell_box(75, 20, 76, 21).centroid
    result = zonal_statistics(MultiPoint([inside, cell_box(5, 5, 6, 6).centroid, Point(119, 25)]), geographic)
    land_cover = result["land_cover"]
    assert land_cover["area_km2"] == 0
    assert [(c["value"], c["points"]) for c in land_cover["classes"]] == [(10, 1), (80, 1)]
    assert sum(c["percent"] for c in land_cover["classes"]) == pytest.approx(200 / 3, abs=1e-3)
    one = zonal_statistics(inside, geographic)
    assert [c["value"] for c in one["land_cover"]["classes"]] == [80]
    assert one["terrain"]["elevation"]["mean"] == 100 + 2 * 75
    assert one["terrain"]["slope"] == {"raster": "slope", "mean": 20.0, "max": 20.0, "unit": "°"}


def test_lines_are_weighted_by_length(geographic: ZonalRasters) -> None:
    x0, y0 = ORIGIN
    line = LineString([(x0 + 0.0301, y0 - 0.0505), (x0 + 0.0801, y0 - 0.0505)])  # columns 30.1–80.1
    land_cover = zonal_statistics(line, geographic)["land_cover"]
    shares = {c["value"]: c["percent"] for c in land_cover["classes"]}
    assert shares == {
        10: pytest.approx(100 * 9.9 / 50, abs=0.2),
        40: pytest.approx(100 * 30 / 50, abs=0.2),
        80: pytest.approx(100 * 10.1 / 50, abs=0.2),
    }
    length = sum(c["length_m"] for c in land_cover["classes"])
    assert length == pytest.approx(GEOD.geometry_length(line), rel=1e-6)


def test_a_zone_off_the_raster_is_all_nodata(geographic: ZonalRasters) -> None:
    result = zonal_statistics(box(119.0, 25.0, 119.01, 25.01), geographic)
    assert result["land_cover"]["classes"] == []
    assert result["land_cover"]["nodata_km2"] == result["land_cover"]["area_km2"] > 1
    assert result["terrain"]["elevation"] == {
        "raster": "elevation",
        "min": None,
        "mean": None,
        "max": None,
        "unit": "m",
    }


def test_missing_or_unusable_rasters_give_null(tmp_path: Path, geographic: ZonalRasters) -> None:
    ones = np.ones((10, 10), np.uint8)
    write_raster(tmp_path / "nocrs.tif", ones, None, from_origin(*ORIGIN, RES, RES), 0)
    write_raster(tmp_path / "rotated.tif", ones, "EPSG:4326", Affine(RES, RES / 10, ORIGIN[0], 0, -RES, ORIGIN[1]), 0)
    for name in ("nocrs.tif", "rotated.tif"):
        unusable = ZonalRasters(land_cover_layer(name), None, None, data_dir=tmp_path)
        assert zonal_statistics(cell_box(1, 1, 2, 2), unusable)["land_cover"] is None
    missing = ZonalRasters(land_cover_layer("absent.tif"), None, None, data_dir=tmp_path)
    assert zonal_statistics(cell_box(1, 1, 2, 2), missing) == {"measure": "area", "land_cover": None, "terrain": None}


def test_a_zone_spanning_too_many_cells_is_refused(tmp_path: Path) -> None:
    side = math.isqrt(raster_stats.MAX_WINDOW_CELLS) + 10
    write_raster(
        tmp_path / "big.tif", np.ones((side, side), np.uint8), "EPSG:4326", from_origin(118, 24.6, 1e-5, 1e-5), 0
    )
    rasters = ZonalRasters(land_cover_layer("big.tif"), None, None, data_dir=tmp_path)
    with pytest.raises(PayloadTooLarge, match="cells of raster 'lc'"):
        zonal_statistics(box(118.0, 24.6 - side * 1e-5, 118 + side * 1e-5, 24.6), rasters)


# --- the demo rasters through the API -------------------------------------------------


def zone_check(client, geometry: dict, **options: object) -> dict:
    response = client.post("/api/zone-check", json={"geometry": geometry, **options})
    assert response.status_code == 200, response.text
    return response.json()


def wavy_polygon(lon0: float, lat0: float, vertices: int, radius_m: float) -> Polygon:
    angles = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    radius = radius_m * (1 + 0.1 * np.sin(7 * angles))
    return Polygon(
        np.column_stack(
            [
                lon0 + radius * np.cos(angles) / (111_320 * math.cos(math.radians(lat0))),
                lat0 + radius * np.sin(angles) / 110_574,
            ]
        )
    )


def test_zone_check_land_cover_adds_up_to_the_site(client) -> None:
    site = wavy_polygon(118.02, 24.75, 1_000, 3_000)  # 同安/集美 hills
    result = zone_check(client, shapely.geometry.mapping(site), buffer_m=200)
    rasters = result["rasters"]
    assert rasters["zone"] == {"basis": "site", "buffer_m": 0.0, "measure": "area"}
    land_cover = rasters["land_cover"]
    area_km2 = result["input"]["area_m2"] / 1e6
    assert land_cover["raster"] == "landcover"
    assert land_cover["area_km2"] == pytest.approx(area_km2, rel=0.01)
    assert sum(c["area_km2"] for c in land_cover["classes"]) + land_cover["nodata_km2"] == pytest.approx(
        land_cover["area_km2"], abs=1e-5
    )
    assert sum(c["percent"] for c in land_cover["classes"]) == pytest.approx(100, abs=0.01)
    areas = [c["area_km2"] for c in land_cover["classes"]]
    assert areas == sorted(areas, reverse=True) and all(a > 0 for a in areas)
    assert {"name", "color", "value", "percent"} <= set(land_cover["classes"][0])
    elevation, slope = rasters["terrain"]["elevation"], rasters["terrain"]["slope"]
    assert elevation["raster"] == "dem" and elevation["unit"] == "m"
    assert 0 <= elevation["min"] <= elevation["mean"] <= elevation["max"] <= 1000
    assert slope["raster"] == "slope" and slope["unit"] == "°" and 0 <= slope["mean"] <= slope["max"] < 90


def test_a_point_in_a_bay_is_water(client, db) -> None:
    row = db.execute("SELECT ST_AsBinary(geom) FROM bay ORDER BY ST_Area(geom) DESC LIMIT 1").fetchone()
    centre = shapely.maximum_inscribed_circle(shapely.from_wkb(row[0])).coords[0]
    result = zone_check(client, {"type": "Point", "coordinates": list(centre)})
    rasters = result["rasters"]
    assert rasters["zone"] == {"basis": "site", "buffer_m": 0.0, "measure": "count"}
    assert [(c["value"], c["name"]["en"], c["points"], c["percent"]) for c in rasters["land_cover"]["classes"]] == [
        (80, "Water", 1, 100.0)
    ]
    assert rasters["land_cover"]["area_km2"] == 0
    assert rasters["terrain"]["elevation"]["mean"] is None  # the sea is nodata in the DEM


def test_a_point_with_a_buffer_is_measured_over_the_circle(client) -> None:
    result = zone_check(client, {"type": "Point", "coordinates": [118.02, 24.75]}, buffer_m=500)
    rasters = result["rasters"]
    assert rasters["zone"] == {"basis": "buffer", "buffer_m": 500.0, "measure": "area"}
    assert rasters["land_cover"]["area_km2"] == pytest.approx(math.pi * 0.5**2, rel=0.01)


def test_the_report_shows_land_cover_and_terrain(client) -> None:
    site = wavy_polygon(118.02, 24.75, 100, 1_000)
    response = client.post("/api/zone-check/report", json={"geometry": shapely.geometry.mapping(site)})
    assert response.status_code == 200, response.text
    page = response.text
    assert "土地覆被与地形" in page and "Land-cover class" in page and "Measured over the site itself" in page
    result = zone_check(client, shapely.geometry.mapping(site))
    for entry in result["rasters"]["land_cover"]["classes"]:
        assert entry["name"]["zh"] in page and "{:,.4f}".format(entry["area_km2"]) in page
    assert "高程 Elevation (m)" in page and "坡度 Slope (°)" in page


def test_red_line_statistics(client, db) -> None:
    feature_id, name, wkb = db.execute(
        "SELECT id, name, ST_AsBinary(geom) FROM redline WHERE domain = '陆域' ORDER BY ST_Area(geom) DESC LIMIT 1"
    ).fetchone()
    response = client.get(f"/api/layers/redline/{feature_id}/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert {k: stats[k] for k in ("layer", "id", "name")} == {"layer": "redline", "id": feature_id, "name": name}
    assert stats["zone"] == {"basis": "feature", "buffer_m": 0.0, "measure": "area"}
    expected_km2 = geodesic_area(shapely.from_wkb(wkb), 1 / 3600) / 1e6
    assert stats["land_cover"]["area_km2"] == pytest.approx(expected_km2, rel=1e-4)
    assert stats["land_cover"]["classes"][0]["value"] == 10  # land red lines are forested in the demo
    assert stats["terrain"]["elevation"]["max"] > stats["terrain"]["elevation"]["min"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/layers/redline/999999/stats", 404, "redline 999999 does not exist"),
        ("/api/layers/nosuch/1/stats", 404, "'nosuch' does not exist; statistics exist for the polygon layers"),
        ("/api/layers/station/1/stats", 404, "'station' is not a polygon layer"),
        ("/api/layers/redline/abc/stats", 400, "feature_id"),
    ],
)
def test_red_line_statistics_errors(client, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_stats_endpoint_is_documented(client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/layers/{layer}/{feature_id}/stats"]["get"]
    assert "exactextract" in operation["description"] and "404" in operation["responses"]
