"""Search, the site check (zone check) and the chief view, end to end against the live service."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import ARTIFACTS, MapPage, refuse_outside

pytestmark = pytest.mark.browser

VERDICTS = {"prohibited", "restricted", "caution", "clear"}


def map_view(map_page: MapPage) -> dict:
    return map_page.js(
        "() => { const m = window.ecomapMap; const b = m.getBounds();"
        " return {zoom: m.getZoom(), west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth()}; }"
    )


def contains(view: dict, lon: float, lat: float) -> bool:
    return view["west"] <= lon <= view["east"] and view["south"] <= lat <= view["north"]


def test_search_flies_to_a_feature_and_highlights_it(map_page: MapPage, live_server: str) -> None:
    map_page.open()
    # Search for a station by the name the map itself shows.
    station_id = map_page.js("() => window.ecomapMap.queryRenderedFeatures({layers: ['station-circle']})[0]?.id")
    assert station_id is not None, "no station rendered to search for"
    station = httpx.get(f"{live_server}/ogc/collections/station/items/{station_id}", timeout=10).json()["properties"][
        "name"
    ]
    page = map_page.page
    zoom_before = map_page.js("() => window.ecomapMap.getZoom()")
    page.locator("#search-input").fill(station)
    option = page.locator(".search-option").first
    option.wait_for()
    assert station in page.locator("#search-results").inner_text()
    answer = httpx.get(f"{live_server}/api/search", params={"q": station, "limit": 10}, timeout=10).json()
    first = answer["results"][0]
    page.locator("#search-input").press("Enter")
    page.wait_for_function("() => window.ecomapMap.isMoving()", timeout=5_000)
    map_page.wait_idle()
    view = map_view(map_page)
    minx, miny, maxx, maxy = first["bbox"]
    assert contains(view, (minx + maxx) / 2, (miny + maxy) / 2)
    assert view["zoom"] > zoom_before
    highlighted = map_page.js("() => window.ecomap.highlighter.get('selection')")
    assert highlighted == [{"layer": first["layer"], "id": first["id"]}]
    rendered = map_page.js(
        "(id) => window.ecomapMap.getLayer(id) ? window.ecomapMap.queryRenderedFeatures({layers: [id]}).length : 0",
        f"hl-selection-{first['layer']}-{'circle' if first['layer'] == 'station' else 'line'}",
    )
    assert rendered >= 1, "the chosen feature is not highlighted on the map"
    map_page.screenshot("search-result")
    assert map_page.errors == []


def test_zone_check_by_clicking_a_point_in_a_red_line(map_page: MapPage) -> None:
    map_page.open("#map=11.00/24.60000/118.10000")
    hit = map_page.find_feature_pixel("redline-fill", clear_of=["station-circle"])
    assert hit, "no red line on screen"
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="点选位置").click()
    x, y = map_page.canvas_point(hit["x"], hit["y"])
    page.mouse.click(x, y)
    verdict = page.locator("#zone-verdict")
    verdict.wait_for(timeout=30_000)
    assert verdict.get_attribute("data-verdict") in {"prohibited", "restricted"}
    rows = page.locator('#zone-overlaps tr[data-layer="redline"]')
    assert rows.count() >= 1
    assert hit["id"] in [int(v) for v in rows.evaluate_all("(rs) => rs.map((r) => r.dataset.id)")]
    # Overlapped zones are highlighted on the map.
    assert {"layer": "redline", "id": hit["id"]} in map_page.js("() => window.ecomap.highlighter.get('zone')")
    map_page.wait_idle()
    map_page.screenshot("zone-check-point")
    # The printable report opens in a new tab.
    with page.context.expect_page() as new_page:
        page.locator("#zone-report").click()
    report = new_page.value
    report.wait_for_load_state()
    report.wait_for_function("() => document.body && document.body.innerText.length > 50", timeout=30_000)
    assert "<html" in report.content().lower()
    ARTIFACTS.mkdir(exist_ok=True)
    report.screenshot(path=str(ARTIFACTS / "zone-check-report.png"), full_page=True)
    assert map_page.errors == []


def test_zone_check_by_drawing_a_polygon(map_page: MapPage) -> None:
    map_page.open("#map=12.00/24.50000/118.10000")
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="绘制范围").click()
    for cx, cy in [(380, 260), (520, 250), (540, 380), (400, 400)]:
        x, y = map_page.canvas_point(cx, cy)
        page.mouse.click(x, y)
    page.locator("#panel-zone button", has_text="完成").click()
    verdict = page.locator("#zone-verdict")
    verdict.wait_for(timeout=30_000)
    assert verdict.get_attribute("data-verdict") in VERDICTS
    area = page.locator("#panel-zone").inner_text()
    assert "m²" in area
    drawn = map_page.js("() => window.ecomapMap.querySourceFeatures('zone-input').map((f) => f.geometry.type)")
    assert "Polygon" in drawn
    map_page.wait_idle()
    map_page.screenshot("zone-check-polygon")
    assert map_page.errors == []


def test_zone_check_by_uploading_a_geojson_file(map_page: MapPage, tmp_path: Path) -> None:
    site = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "拟建项目"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[118.05, 24.58], [118.08, 24.58], [118.08, 24.61], [118.05, 24.61], [118.05, 24.58]]
                    ],
                },
            }
        ],
    }
    path = tmp_path / "site.geojson"
    path.write_text(json.dumps(site, ensure_ascii=False), encoding="utf-8")
    map_page.open()
    page = map_page.page
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="上传文件").click()
    page.locator("#zone-file").set_input_files(str(path))
    verdict = page.locator("#zone-verdict")
    verdict.wait_for(timeout=30_000)
    assert verdict.get_attribute("data-verdict") in VERDICTS
    assert map_page.errors == []


def test_chief_deep_link_frames_the_jurisdiction(map_page: MapPage, live_server: str) -> None:
    chiefs = httpx.get(f"{live_server}/api/chiefs", params={"role": "river"}, timeout=10).json()["chiefs"]
    assert chiefs, "the demo data has no river chief"
    chief_id = chiefs[0]["id"]
    detail = httpx.get(f"{live_server}/api/chiefs/{chief_id}", timeout=10).json()
    map_page.open(f"#chief={chief_id}")
    page = map_page.page
    page.locator("#chief-detail").wait_for(timeout=30_000)
    assert page.locator("#tab-chief").get_attribute("aria-selected") == "true"
    assert detail["chief"]["name"] in page.locator("#panel-chief").inner_text()
    # The fit animation: over once the map rests framing the jurisdiction (as asserted below).
    page.wait_for_function(
        """([minx, miny, maxx, maxy]) => {
             const m = window.ecomapMap, b = m.getBounds(), tol = 0.002;
             const span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
             return !m.isMoving() && b.getWest() - tol <= minx && b.getEast() + tol >= maxx
               && b.getSouth() - tol <= miny && b.getNorth() + tol >= maxy
               && (span < Math.max(maxx - minx, maxy - miny) * 8 || m.getZoom() >= 13.9);
           }""",
        arg=detail["bbox"],
        timeout=30_000,
    )
    map_page.wait_idle()
    view = map_view(map_page)
    minx, miny, maxx, maxy = detail["bbox"]
    assert contains(view, (minx + maxx) / 2, (miny + maxy) / 2)
    # Framed: the jurisdiction is in view (small tolerance) and fills a fair part of it.
    tol = 0.002
    assert view["west"] - tol <= minx and view["east"] + tol >= maxx
    assert view["south"] - tol <= miny and view["north"] + tol >= maxy
    view_span = max(view["east"] - view["west"], view["north"] - view["south"])
    box_span = max(maxx - minx, maxy - miny)
    assert box_span == 0 or view_span < box_span * 8 or view["zoom"] >= 13.9
    highlighted = map_page.js("() => window.ecomap.highlighter.get('chief')")
    assert {(j["layer"], j["id"]) for j in detail["jurisdiction"]} == {(h["layer"], h["id"]) for h in highlighted}
    map_page.screenshot("chief-view")
    # Upstream tracing from one of the chief's river segments.
    upstream_button = page.locator("[data-upstream]").first
    if upstream_button.count():
        upstream_button.click()
        page.locator("#chief-upstream").wait_for(timeout=30_000)
        assert page.locator("#chief-upstream .notice-error").count() == 0
    assert map_page.errors == []


def test_chief_list_opens_a_chief(map_page: MapPage) -> None:
    map_page.open()
    page = map_page.page
    page.locator("#tab-chief").click()
    first = page.locator(".chief-list [data-chief]").first
    first.wait_for(timeout=30_000)
    chief_id = first.get_attribute("data-chief")
    first.click()
    page.locator("#chief-detail").wait_for(timeout=30_000)
    assert f"chief={chief_id}" in page.url
    page.locator("#chief-back").click()
    page.locator(".chief-list").wait_for()
    assert "chief=" not in page.url
    assert map_page.errors == []


@pytest.mark.parametrize("page_kind", ["zone-check report", "chief map"])
def test_standalone_maps_draw_without_the_internet(browser: Browser, live_server: str, page_kind: str) -> None:
    """The printable zone-check report and a chief's map draw their Leaflet map with every
    request outside the service refused (an intranet without internet): Leaflet is inlined;
    only the OpenStreetMap basemap tiles are missing."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    outside = refuse_outside(page, live_server)
    try:
        if page_kind == "chief map":
            page.goto(f"{live_server}/api/chiefs/1/map", wait_until="load")
        else:
            site = {
                "type": "Polygon",
                "coordinates": [[[118.05, 24.62], [118.07, 24.62], [118.07, 24.64], [118.05, 24.62]]],
            }
            html = httpx.post(f"{live_server}/api/zone-check/report", json={"geometry": site}, timeout=60)
            assert html.status_code == 200, html.text
            page.set_content(html.text, wait_until="load")
        page.locator(".leaflet-container").wait_for()
        assert page.evaluate("typeof L") == "object", "Leaflet did not load"
        assert page.locator(".leaflet-overlay-pane canvas, .leaflet-overlay-pane path").count() > 0
        assert page.locator(".leaflet-control-layers").count() == 1
        if page_kind == "zone-check report":
            # The grey map says why, and points to the sketch map and the printed report.
            page.locator("#basemap-failed").wait_for(state="visible", timeout=20_000)
            assert "OpenStreetMap" in page.locator("#basemap-failed").inner_text()
        assert not errors, errors
        assert all("tile.openstreetmap.org" in url for url in outside), outside
    finally:
        context.close()
