"""GCJ-02 <-> WGS84 conversion: reference values, offsets near Xiamen, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from layers.gcj02 import gcj02_to_wgs84, geometry_gcj02_to_wgs84, out_of_china, wgs84_to_gcj02

GEOD = Geod(ellps="WGS84")


def xiamen_grid(n: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """A grid over Xiamen and its surroundings (117.8–118.5 E, 24.3–25.0 N)."""
    lon, lat = np.meshgrid(np.linspace(117.8, 118.5, n), np.linspace(24.3, 25.0, n))
    return lon.ravel(), lat.ravel()


def test_forward_matches_published_reference_pair() -> None:
    # wandergis/coordtransform README: wgs84togcj02(116.404, 39.915).
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-12)
    assert lat == pytest.approx(39.91640428150164, abs=1e-12)


def test_forward_pair_near_xiamen() -> None:
    # Derived once from the forward transform; pins the behaviour near Xiamen.
    lon, lat = wgs84_to_gcj02(118.1, 24.6)
    assert lon == pytest.approx(118.10498251989338, abs=1e-12)
    assert lat == pytest.approx(24.59734264444076, abs=1e-12)
    back_lon, back_lat = gcj02_to_wgs84(118.10498251989338, 24.59734264444076)
    assert back_lon == pytest.approx(118.1, abs=1e-8)
    assert back_lat == pytest.approx(24.6, abs=1e-8)


def test_offset_near_xiamen_is_a_few_hundred_metres() -> None:
    lon, lat = xiamen_grid()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    _, _, offset_m = GEOD.inv(lon, lat, gcj_lon, gcj_lat)
    assert offset_m.min() > 300.0
    assert offset_m.max() < 600.0
    # GCJ-02 is shifted east and south of WGS84 around Xiamen.
    assert (gcj_lon > lon).all() and (gcj_lat < lat).all()


def test_round_trip_error_below_half_a_metre() -> None:
    lon, lat = xiamen_grid()
    wgs_lon, wgs_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    _, _, error_m = GEOD.inv(lon, lat, wgs_lon, wgs_lat)
    assert error_m.max() < 0.5
    # The iteration converges far beyond the requirement.
    assert error_m.max() < 0.01


def test_inverse_reproduces_the_gcj02_input() -> None:
    gcj_lon, gcj_lat = xiamen_grid()
    fwd_lon, fwd_lat = wgs84_to_gcj02(*gcj02_to_wgs84(gcj_lon, gcj_lat))
    assert np.abs(fwd_lon - gcj_lon).max() < 1e-8
    assert np.abs(fwd_lat - gcj_lat).max() < 1e-8


@pytest.mark.parametrize(("lon", "lat"), [(0.0, 0.0), (-74.006, 40.713), (139.767, 35.681), (2.35, 48.86)])
def test_points_outside_china_are_unchanged(lon: float, lat: float) -> None:
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_mixed_arrays_keep_shape_and_only_shift_points_in_china() -> None:
    lon = np.array([[118.1, 0.0], [116.404, -74.0]])
    lat = np.array([[24.6, 0.0], [39.915, 40.7]])
    out_lon, out_lat = wgs84_to_gcj02(lon, lat)
    assert out_lon.shape == lon.shape and out_lat.shape == lat.shape
    assert out_lon[0, 1] == 0.0 and out_lat[1, 1] == 40.7
    assert out_lon[0, 0] != 118.1


def test_geometry_conversion_moves_every_vertex_and_keeps_the_type() -> None:
    ring = [(118.05, 24.45), (118.20, 24.45), (118.20, 24.56), (118.05, 24.56)]
    hole = [(118.10, 24.48), (118.12, 24.48), (118.12, 24.50)]
    polygon = MultiPolygon([Polygon(ring, [hole])])
    converted = geometry_gcj02_to_wgs84(polygon)
    assert converted.geom_type == "MultiPolygon" and shapely.is_valid(converted)
    expected_lon, expected_lat = gcj02_to_wgs84(*np.asarray(shapely.get_coordinates(polygon)).T)
    np.testing.assert_allclose(shapely.get_coordinates(converted), np.column_stack([expected_lon, expected_lat]))
    assert geometry_gcj02_to_wgs84(Point(118.1, 24.6)).geom_type == "Point"
    assert len(geometry_gcj02_to_wgs84(LineString(ring)).coords) == len(ring)


def test_geometry_conversion_accepts_arrays() -> None:
    points = np.array([Point(118.1, 24.6), Point(0.0, 0.0)])
    converted = geometry_gcj02_to_wgs84(points)
    assert converted[1].equals(Point(0.0, 0.0))
    lon, lat = gcj02_to_wgs84(118.1, 24.6)
    assert converted[0].x == pytest.approx(lon) and converted[0].y == pytest.approx(lat)
