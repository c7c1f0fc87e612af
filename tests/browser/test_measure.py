"""Measuring in Chromium: the site-check tool's line and area readouts are geodesics on GRS80
(CGCS2000's ellipsoid), compared with pyproj.Geod(ellps="GRS80") computed here from the same
coordinates; an uploaded site is measured the same way, and the service's own site measure agrees."""

from __future__ import annotations

import json
from pathlib import Path

from pyproj import Geod

from tests.browser.conftest import MapPage

GRS80 = Geod(ellps="GRS80")
CLICKS = [(380, 260), (560, 250), (600, 420), (420, 430)]


def click_corners(map_page: MapPage, points: list[tuple[int, int]]) -> list[list[float]]:
    """Clicks the canvas pixels and returns their lon/lat (as the map places them)."""
    page = map_page.page
    for cx, cy in points:
        x, y = map_page.canvas_point(cx, cy)
        page.mouse.click(x, y)
    return map_page.js("(pts) => pts.map(([x, y]) => window.ecomapMap.unproject([x, y]).toArray())", points)


def readout(map_page: MapPage) -> dict:
    box = map_page.page.locator("#measure-readout")
    box.wait_for(state="visible")
    return {
        "text": box.inner_text(),
        "kind": box.get_attribute("data-kind"),
        "value": float(box.get_attribute("data-value")),
        "perimeter": box.get_attribute("data-perimeter"),
    }


def test_measure_a_line_on_the_ellipsoid(map_page: MapPage) -> None:
    map_page.open("#map=12.00/24.55/118.10")
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="量距离").click()
    corners = click_corners(map_page, CLICKS[:3])
    live = readout(map_page)
    page.locator("#panel-zone button", has_text="完成").click()
    done = readout(map_page)
    lons, lats = zip(*corners, strict=True)
    expected = GRS80.line_length(lons, lats)
    assert done["kind"] == "length"
    assert abs(done["value"] - expected) < 1e-6 * expected
    assert live["value"] > 0
    assert "千米" in done["text"] and "CGCS2000" in done["text"]
    # The line is checked like any site (a line site: lengths, not areas).
    page.locator("#zone-verdict").wait_for(timeout=30_000)
    map_page.screenshot("measure-line")
    assert map_page.errors == []


def test_measure_an_area_in_english(map_page: MapPage) -> None:
    map_page.open("#map=12.00/24.55/118.10&lang=en")
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="Draw an area").click()
    corners = click_corners(map_page, CLICKS)
    page.locator("#panel-zone button", has_text="Finish").click()
    done = readout(map_page)
    lons, lats = zip(*corners, strict=True)
    area, perimeter = GRS80.polygon_area_perimeter(lons, lats)
    assert done["kind"] == "area"
    assert abs(done["value"] - abs(area)) < 1e-6 * abs(area)
    assert abs(float(done["perimeter"]) - perimeter) < 1e-6 * perimeter
    assert "km²" in done["text"] and "perimeter" in done["text"]
    assert map_page.errors == []


def test_an_uploaded_site_is_measured_like_the_service_measures_it(map_page: MapPage, tmp_path: Path) -> None:
    ring = [[118.05, 24.58], [118.08, 24.58], [118.08, 24.61], [118.05, 24.61], [118.05, 24.58]]
    site = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path = tmp_path / "site.geojson"
    path.write_text(json.dumps(site), encoding="utf-8")
    map_page.open()
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="上传文件").click()
    with page.expect_response(lambda r: "/api/zone-check" in r.url and r.request.method == "POST") as answer:
        page.locator("#zone-file").set_input_files(str(path))
    done = readout(map_page)
    lons, lats = zip(*ring, strict=True)
    expected = abs(GRS80.polygon_area_perimeter(lons, lats)[0])
    assert abs(done["value"] - expected) < 1e-6 * expected
    served = answer.value.json()["input"]["area_m2"]  # the service's pyproj (WGS84: the same to < 1 mm²/ha)
    assert abs(served - expected) < 1e-6 * expected
    assert map_page.errors == []
