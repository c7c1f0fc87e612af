"""Raster layers on the map (land cover, elevation, slope) and the land a site check reports.

End to end against the live service: the layer list comes from ``GET /api/rasters``, the tiles
from ``/tiles/raster/{id}/{z}/{x}/{y}.png`` and the statistics from the zone check's ``rasters``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Response, expect

from tests.browser.conftest import PHONE, MapPage

pytestmark = pytest.mark.browser

# A site in the hills of northern Jimei/Tong'an: forest, cropland, water and a little grassland.
SITE = [[117.96, 24.66], [118.02, 24.66], [118.02, 24.72], [117.96, 24.72], [117.96, 24.66]]
SITE_VIEW = "#map=11.50/24.69000/117.99000"
CITY = "#map=11.00/24.60000/118.10000"


@pytest.fixture(scope="module")
def rasters(live_server: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{live_server}/api/rasters", timeout=10)
    response.raise_for_status()
    answer = response.json()
    listed = answer if isinstance(answer, list) else answer["rasters"]
    by_id = {raster["id"]: raster for raster in listed}
    assert {"landcover", "dem", "slope"} <= set(by_id), f"the demo rasters are missing: {sorted(by_id)}"
    return by_id


def style_order(map_page: MapPage) -> list[str]:
    return map_page.js("() => window.ecomapMap.getStyle().layers.map((l) => l.id)")


def raster_tile_responses(map_page: MapPage, raster_id: str) -> list[Response]:
    """Starts recording the responses to the tiles of one raster; the list fills as they come."""
    seen: list[Response] = []
    marker = f"/tiles/raster/{raster_id}/"
    map_page.page.on("response", lambda response: seen.append(response) if marker in response.url else None)
    return seen


def class_names(raster: dict[str, Any], lang: str = "zh") -> list[str]:
    return [c["name"][lang] for c in raster["legend"]["classes"]]


def test_land_cover_switches_on_with_tiles_and_a_legend(map_page: MapPage, rasters: dict) -> None:
    tiles = raster_tile_responses(map_page, "landcover")
    map_page.open(CITY)
    page = map_page.page
    # Off by default: in the panel, in its group, but not on the map and not fetched.
    item = page.locator('.layer-item[data-layer="landcover"]')
    assert item.locator(".badge-sample").is_visible() == bool(rasters["landcover"]["is_sample"])
    group = page.locator('.layer-group:has(.layer-item[data-layer="landcover"])')
    assert "土地覆被与地形" in group.locator(".group-title").inner_text()
    assert not page.locator("#layer-toggle-landcover").is_checked()
    assert "raster-landcover" not in style_order(map_page)
    assert page.locator("#map-legend").is_hidden()
    assert tiles == []

    page.locator("#layer-toggle-landcover").check()
    map_page.wait_idle()
    order = style_order(map_page)
    assert "raster-landcover" in order
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('raster-landcover', 'visibility')") == "visible"
    # Above the land fill of the offline map (translucent districts), below every other vector layer.
    assert order.index("district-fill") < order.index("raster-landcover") < order.index("district-outline")
    assert order.index("raster-landcover") < order.index("redline-fill")
    # Its tiles load: PNG images from the service.
    ok = [r for r in tiles if r.status == 200]
    assert ok, f"no landcover tile answered 200 (statuses: {sorted({r.status for r in tiles})})"
    assert all(r.headers.get("content-type", "").startswith("image/png") for r in ok if r.url.endswith(".png"))
    assert not [r for r in tiles if r.status >= 400]
    # The legend names every class, in the panel and on the map.
    names = class_names(rasters["landcover"])
    panel_legend = item.locator(".raster-legend li").all_inner_texts()
    assert [text.strip() for text in panel_legend] == names
    map_legend = page.locator("#map-legend")
    assert map_legend.is_visible()
    for name in names:
        assert name in map_legend.inner_text()
    # The opacity slider drives raster-opacity.
    slider = page.locator("#layer-opacity-landcover")
    assert abs(int(slider.input_value()) / 100 - rasters["landcover"]["opacity"]) < 0.05
    slider.focus()
    page.keyboard.press("End")
    assert map_page.js("() => window.ecomapMap.getPaintProperty('raster-landcover', 'raster-opacity')") == 1
    # And into the shareable URL.
    assert "landcover" in page.url.split("layers=")[1].split("&")[0].split(",")
    map_page.screenshot("raster-landcover-desktop")
    page.locator("#layer-toggle-landcover").uncheck()
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('raster-landcover', 'visibility')") == "none"
    assert page.locator("#map-legend").is_hidden()
    assert "landcover" not in page.url.split("layers=")[1].split("&")[0].split(",")  # hidden; its opacity stays
    assert map_page.errors == []


def test_terrain_legend_and_url_state_round_trip(map_page: MapPage, rasters: dict) -> None:
    tiles = raster_tile_responses(map_page, "dem")
    map_page.open(f"{CITY}&layers=redline,river,landcover,dem&lang=en")
    page = map_page.page
    order = style_order(map_page)
    for raster_id in ("landcover", "dem"):
        assert page.locator(f"#layer-toggle-{raster_id}").is_checked()
        assert map_page.js(f"() => window.ecomapMap.getLayoutProperty('raster-{raster_id}', 'visibility')") == "visible"
    assert not page.locator("#layer-toggle-slope").is_checked()
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('station-circle', 'visibility')") == "none"
    # A raster with a higher catalog order is drawn above one with a lower order.
    low, high = sorted(("landcover", "dem"), key=lambda r: rasters[r]["order"])
    assert order.index(f"raster-{low}") < order.index(f"raster-{high}")
    assert [r for r in tiles if r.status == 200]
    # English labels; the continuous legend shows its range and unit.
    assert "Land cover and terrain" in page.locator('.layer-group:has([data-layer="dem"]) .group-title').inner_text()
    dem_legend = rasters["dem"]["legend"]
    ramp = page.locator('.layer-item[data-layer="dem"] .raster-legend-ramp')
    gradient = ramp.locator(".ramp-bar").evaluate("(el) => getComputedStyle(el).backgroundImage")
    assert gradient.startswith("linear-gradient")
    assert ramp.locator(".ramp-min").inner_text() == f"{dem_legend['min']:g} m"
    assert ramp.locator(".ramp-max").inner_text() == f"{dem_legend['max']:g} m"
    map_legend = page.locator("#map-legend").inner_text()
    assert all(name in map_legend for name in class_names(rasters["landcover"], "en"))
    assert f"{dem_legend['max']:g} m" in map_legend
    # Switching a raster off updates the hash; the hash restores the view in a new tab.
    page.locator("#layer-toggle-dem").uncheck()
    page.wait_for_function("() => !location.hash.includes('dem')")
    layers = page.url.split("layers=")[1].split("&")[0].split(",")
    assert set(layers) == {"redline", "river", "landcover"}
    url = page.url
    again = MapPage(page=page.context.new_page(), base_url=map_page.base_url)
    again.page.goto(url)
    again.page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    again.wait_idle()
    assert again.js("() => window.ecomap.rasterControl.visibleIds()") == ["landcover"]
    assert again.page.locator("#layer-toggle-landcover").is_checked()
    assert again.js("() => window.ecomapMap.getLayer('raster-dem') === undefined")
    assert "Land cover" in again.page.locator("#map-legend").inner_text()
    # Hash edits (back/forward, pasted links) switch rasters too.
    again.page.evaluate("() => { location.hash = location.hash.replace('landcover', 'slope'); }")
    again.page.wait_for_function("() => window.ecomap.rasterControl.visibleIds().join() === 'slope'")
    assert again.page.locator("#layer-toggle-slope").is_checked()
    assert map_page.errors == []


def draw_site(map_page: MapPage, ring: list[list[float]]) -> None:
    """Draws the polygon `ring` (lon/lat) with the site check's drawing tool."""
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="绘制范围").click()
    for lon, lat in ring[:-1]:
        point = map_page.js("(ll) => window.ecomapMap.project(ll)", [lon, lat])
        x, y = map_page.canvas_point(point["x"], point["y"])
        page.mouse.click(x, y)
    page.locator("#panel-zone button", has_text="完成").click()


def test_zone_check_reports_land_cover_and_slope(map_page: MapPage, rasters: dict) -> None:
    map_page.open(f"{SITE_VIEW}&layers=district,redline,river,landcover")
    page = map_page.page
    with page.expect_response("**/api/zone-check") as answer:
        draw_site(map_page, SITE)
    expected = answer.value.json()["rasters"]
    assert expected and expected["land_cover"] and expected["terrain"], "the zone check reports no raster statistics"
    page.locator("#zone-verdict").wait_for(timeout=30_000)
    table = page.locator("#zone-landcover")
    table.wait_for()
    rows = table.locator("tbody tr:not(.nodata-row)")
    assert rows.count() == len(expected["land_cover"]["classes"])
    # Shares of the site: the classes and the part without data add up to 100 %.
    assert table.locator("tbody tr.nodata-row").count() == (1 if expected["land_cover"]["nodata_km2"] > 0 else 0)
    all_rows = table.locator("tbody tr")
    percents = [float(p) for p in all_rows.evaluate_all("(rs) => rs.map((r) => r.dataset.percent)")]
    assert abs(sum(percents) - 100) < 0.5, percents
    assert table.locator("tfoot").inner_text().strip().endswith("100%")
    shown = [name.strip() for name in table.locator("tbody .class-name").all_inner_texts()]
    assert shown == [c["name"]["zh"] for c in expected["land_cover"]["classes"]]
    assert set(shown) <= set(class_names(rasters["landcover"]))
    # Each class has its colour swatch and a share bar.
    assert table.locator("tbody .class-swatch").count() == all_rows.count()
    assert table.locator("tbody .share-bar").count() == all_rows.count()
    # Terrain: elevation min/mean/max and the mean slope, in numbers and in words.
    terrain = expected["terrain"]
    slope = page.locator("#zone-slope").inner_text()
    assert "平均坡度" in slope and "°" in slope
    shown_slope = float(re.search(r"[\d.]+(?=°)", slope).group())
    assert abs(shown_slope - terrain["slope"]["mean"]) <= 0.05
    elevation_row = page.locator('#zone-terrain tr[data-stat="elevation"] td').all_inner_texts()
    shown_elevation = [float(v.replace(",", "")) for v in elevation_row]
    stats = terrain["elevation"]
    wanted = [stats["min"], stats["mean"], stats["max"]]
    assert all(abs(a - b) <= 0.5 for a, b in zip(shown_elevation, wanted, strict=True)), shown_elevation
    page.locator("#zone-rasters").scroll_into_view_if_needed()
    map_page.wait_idle()
    map_page.screenshot("zone-check-landcover-desktop")
    # In English too.
    page.locator("#lang-toggle").click()
    assert "Land-cover composition" in page.locator("#zone-rasters").inner_text()
    english = [name.strip() for name in table.locator("tbody .class-name").all_inner_texts()]
    assert english == [c["name"]["en"] for c in expected["land_cover"]["classes"]]
    assert "Mean slope" in page.locator("#zone-slope").inner_text()
    assert map_page.errors == []


def test_zone_check_without_raster_statistics_hides_the_section(map_page: MapPage) -> None:
    """A service (or a site) without raster statistics shows the rest of the check, no empty tables."""

    def without_rasters(route: Any) -> None:
        response = route.fetch()
        answer = response.json()
        answer["rasters"] = None
        route.fulfill(response=response, body=json.dumps(answer), content_type="application/json")

    map_page.page.route("**/api/zone-check", without_rasters)
    map_page.open(CITY)
    map_page.js("(ring) => window.ecomap.zoneCheck.checkGeometry({type: 'Polygon', coordinates: [ring]})", SITE)
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#zone-verdict").wait_for(timeout=30_000)
    assert page.locator("#zone-overlaps, #panel-zone .muted").count() >= 1
    assert page.locator("#zone-rasters").count() == 0
    assert map_page.errors == []


def test_raster_legend_and_land_cover_table_on_a_phone(phone_page: MapPage, rasters: dict) -> None:
    tiles = raster_tile_responses(phone_page, "landcover")
    phone_page.open(f"{SITE_VIEW}&layers=district,redline,river,station,landcover")
    page = phone_page.page
    assert [r for r in tiles if r.status == 200]
    # The map legend starts folded on a phone: a finger-sized button that opens it.
    legend = page.locator("#map-legend")
    summary = legend.locator("summary")
    assert summary.is_visible()
    assert summary.bounding_box()["height"] >= 40
    summary.tap()
    page.wait_for_function("() => document.getElementById('map-legend').open")
    for name in class_names(rasters["landcover"]):
        assert page.locator("#map-legend .map-legend-item", has_text=name).is_visible()
    box = legend.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= PHONE["height"]
    # It leaves most of the map free.
    assert box["width"] * box["height"] < PHONE["width"] * PHONE["height"] * 0.3
    phone_page.screenshot("raster-legend-phone")
    # The raster group in the drawer.
    page.locator("#drawer-toggle").tap()
    page.wait_for_function("() => document.getElementById('sidebar').dataset.sheet !== 'closed'")
    page.locator('.layer-item[data-layer="landcover"]').scroll_into_view_if_needed()
    phone_page.wait_for_animations()
    phone_page.next_frame()
    phone_page.screenshot("raster-panel-phone")
    page.locator("#drawer-toggle").tap()
    # A site check: the land-cover table fits the drawer.
    phone_page.js("(ring) => window.ecomap.zoneCheck.checkGeometry({type: 'Polygon', coordinates: [ring]})", SITE)
    page.locator("#tab-zone").tap()
    table = page.locator("#zone-landcover")
    table.wait_for(timeout=30_000)
    table.scroll_into_view_if_needed()
    phone_page.wait_for_animations()  # the drawer sliding in
    expect(table).to_be_in_viewport()
    table_box = table.bounding_box()
    sidebar_box = page.locator("#sidebar").bounding_box()
    assert table_box and sidebar_box
    assert table_box["x"] + table_box["width"] <= sidebar_box["x"] + sidebar_box["width"] + 1
    assert page.locator("#zone-slope").is_visible()
    phone_page.screenshot("zone-check-landcover-phone")
    assert phone_page.errors == []


def test_clicking_the_map_shows_the_raster_values_there(map_page: MapPage, live_server: str) -> None:
    """With land cover and elevation shown (and no vector layer), a click opens a popup with
    the class and the height of the clicked cell: what GET /api/rasters/values says there."""
    map_page.open("#map=13.00/24.61000/117.93000&layers=landcover,dem")
    page = map_page.page
    box = page.locator("#map canvas").bounding_box()
    assert box
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    section = page.locator(".maplibregl-popup .popup-here")
    section.wait_for()
    lng_lat = map_page.js(
        "([x, y]) => { const r = window.ecomapMap.getCanvas().getBoundingClientRect();"
        " const p = window.ecomapMap.unproject([x - r.left, y - r.top]); return [p.lng, p.lat]; }",
        [x, y],
    )
    answer = httpx.get(
        f"{live_server}/api/rasters/values",
        params={"lon": f"{lng_lat[0]:.6f}", "lat": f"{lng_lat[1]:.6f}", "rasters": "landcover,dem"},
        timeout=10,
    ).json()
    values = {v["raster"]: v for v in answer["values"]}
    land, height = values["landcover"], values["dem"]
    assert land["class"] is not None and height["value"] is not None, answer
    assert section.locator('tr[data-raster="landcover"] .class-name').text_content() == land["class"]["name"]["zh"]
    assert section.locator('tr[data-raster="dem"] td').text_content() == f"{height['value']:,} m"
    # In English the same rows follow the language.
    page.locator("#lang-toggle").click()
    expect_name = land["class"]["name"]["en"]
    page.locator(f'.popup-here tr[data-raster="landcover"] .class-name:text-is("{expect_name}")').wait_for()
    assert page.locator(".popup-here .popup-land-title").text_content() == "At this point"
    map_page.screenshot("raster-values-popup")


def test_opacity_is_kept_in_the_url(map_page: MapPage, rasters: dict) -> None:
    """Opacity of layers and rasters round-trips through the URL: a shared link shows the
    map as it was (only opacities off their default are written)."""
    map_page.open(f"{CITY}&layers=redline,landcover&opacity=redline:40,landcover:25")
    page = map_page.page
    assert map_page.js("() => window.ecomap.control.getOpacity('redline')") == pytest.approx(0.4)
    assert map_page.js("() => window.ecomapMap.getPaintProperty('raster-landcover', 'raster-opacity')") == 0.25
    assert page.locator("#layer-opacity-redline").input_value() == "40"
    assert page.locator("#layer-opacity-landcover").input_value() == "25"

    # Moving a slider rewrites the hash; back to the default, the layer leaves it.
    def slide(slider_id: str, steps: int) -> None:  # arrow keys: 5 % a step
        page.locator(f"#layer-opacity-{slider_id}").focus()
        for _ in range(abs(steps)):
            page.keyboard.press("ArrowRight" if steps > 0 else "ArrowLeft")

    slide("landcover", (round(rasters["landcover"]["opacity"] * 100) - 25) // 5)
    page.wait_for_function("() => !location.hash.includes('landcover:')")
    slide("redline", 6)
    page.wait_for_function("() => location.hash.includes('opacity=redline:70')")
    assert "layers=redline,landcover" in page.url
    assert map_page.errors == []
