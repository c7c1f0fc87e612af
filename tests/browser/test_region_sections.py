"""The cross-boundary sections on the map: the toggle draws them from /api/region/sections,
coloured by last month's class, and a click tells the city pair and the state."""

from __future__ import annotations

import httpx

from tests.browser.conftest import MapPage


def test_boundary_sections_toggle_and_popup(map_page: MapPage, live_server: str) -> None:
    expected = httpx.get(f"{live_server}/api/region/sections").json()["features"]
    assert len(expected) >= 2
    map_page.open()
    assert not any("api/region/sections" in url for url in map_page.requests)  # fetched only when asked for
    toggle = map_page.page.get_by_role("button", name="显示或隐藏地市交接断面及上月考核状态")
    toggle.click()
    map_page.page.wait_for_function("() => !!window.ecomapMap.getLayer('region-sections-circle')")
    assert toggle.get_attribute("aria-pressed") == "true"
    # Frame the sections (they lie upstream of Xiamen) and find them drawn.
    lons = [f["geometry"]["coordinates"][0] for f in expected]
    lats = [f["geometry"]["coordinates"][1] for f in expected]
    map_page.js(
        "([w, s, e, n]) => window.ecomapMap.fitBounds([[w, s], [e, n]], {padding: 80, duration: 0})",
        [min(lons), min(lats), max(lons), max(lats)],
    )
    map_page.wait_idle()
    drawn = map_page.js(
        "() => window.ecomapMap.queryRenderedFeatures({layers: ['region-sections-circle']})"
        ".map((f) => f.properties.code)"
    )
    assert set(drawn) == {f["properties"]["code"] for f in expected}
    first = expected[0]
    x, y = map_page.js(
        "([lon, lat]) => { const p = window.ecomapMap.project([lon, lat]); return [p.x, p.y]; }",
        first["geometry"]["coordinates"],
    )
    map_page.page.mouse.click(*map_page.canvas_point(x, y))
    popup = map_page.page.locator(".region-section-popup")
    popup.wait_for()
    text = popup.inner_text()
    up, down = first["properties"]["upstream_name"]["zh"], first["properties"]["downstream_name"]["zh"]
    assert first["properties"]["name"] in text and f"{up} → {down}" in text
    assert ("未考核" in text) == (first["properties"]["water_class"] is None)
    toggle.click()
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('region-sections-circle', 'visibility')") == "none"
    assert map_page.errors == []
