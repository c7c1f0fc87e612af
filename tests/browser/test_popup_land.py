"""The land a polygon covers, in its popup: top land-cover classes and mean terrain.

End to end against the live service: the popup fetches ``GET /api/layers/{layer}/{id}/stats``
after it opens and shows what that answer says.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.browser.conftest import ARTIFACTS, PHONE, MapPage

pytestmark = pytest.mark.browser

CITY = "#map=11.00/24.60000/118.10000"
# Layers drawn over polygons whose popups would list them too: keep the click clear of them.
NOT_UNDER = ["station-circle", "river-line", "watershed-line", "water_source_zone-fill"]
TOP = 4


def feature_stats(live_server: str, layer: str, feature_id: int) -> dict[str, Any]:
    response = httpx.get(f"{live_server}/api/layers/{layer}/{feature_id}/stats", timeout=30)
    response.raise_for_status()
    return response.json()


def click_feature(map_page: MapPage, style_layer: str, clear_of: list[str]) -> dict[str, Any]:
    """Clicks a feature of ``style_layer`` clear of ``clear_of``; returns the hit (id, pixel)."""
    hit = map_page.find_feature_pixel(style_layer, clear_of=clear_of)
    assert hit, f"no {style_layer} feature on screen to click"
    x, y = map_page.canvas_point(hit["x"], hit["y"])
    map_page.page.mouse.click(x, y)
    return hit


def shown_classes(section: Any) -> list[tuple[str, str, float]]:
    """(name, percent text, data-percent) of each class row of a popup's land section."""
    return section.locator(".popup-land-classes li").evaluate_all(
        "(rows) => rows.map((r) => [r.querySelector('.class-name').textContent,"
        " r.querySelector('.popup-land-percent').textContent, Number(r.dataset.percent)])"
    )


def scroll_popup_to_land(map_page: MapPage) -> None:
    """Scrolls the popup (at most half the screen high) down to its land section."""
    map_page.js(
        "() => { const c = document.querySelector('.maplibregl-popup .popup-body'); c.scrollTop = c.scrollHeight; }"
    )
    map_page.next_frame()


def assert_matches_stats(section: Any, stats: dict[str, Any], lang: str) -> None:
    classes = stats["land_cover"]["classes"][:TOP]
    shown = shown_classes(section)
    assert [name for name, _, _ in shown] == [c["name"][lang] for c in classes]
    for (_, text, value), expected in zip(shown, classes, strict=True):
        assert value == pytest.approx(expected["percent"])
        if 0 < expected["percent"] < 0.05:  # too small for one decimal: not "0.0%"
            assert text == "<0.1%", text
        else:
            assert float(text.rstrip("%")) == pytest.approx(expected["percent"], abs=0.051), text
    # Each class has its swatch in the class colour.
    colours = section.locator(".popup-land-classes .class-swatch").evaluate_all(
        "(els) => els.map((e) => getComputedStyle(e).backgroundColor)"
    )
    assert len(colours) == len(classes) and all(c not in ("", "rgba(0, 0, 0, 0)") for c in colours)


def test_red_line_popup_shows_the_land_it_covers(map_page: MapPage, live_server: str) -> None:
    held: list[Route] = []
    # Hold the statistics back: the popup must open with the attributes without waiting for them.
    map_page.page.route("**/api/layers/*/*/stats", lambda route: held.append(route))
    map_page.open(f"{CITY}&layers=district,redline,river,station")
    page = map_page.page
    with page.expect_request(lambda request: request.url.endswith("/stats"), timeout=30_000):
        hit = click_feature(map_page, "redline-fill", [*NOT_UNDER, "protected_area-fill"])
    popup = page.locator(".maplibregl-popup")
    popup.wait_for()
    expect(popup.locator(".attr-table")).to_be_visible()
    assert held, "the popup did not ask for the feature's statistics"
    assert held[0].request.url.endswith(f"/api/layers/redline/{hit['id']}/stats")
    assert popup.locator(".popup-land").count() == 0
    for route in held:
        route.continue_()
    page.unroute("**/api/layers/*/*/stats")

    stats = feature_stats(live_server, "redline", hit["id"])
    assert stats["land_cover"] and stats["land_cover"]["classes"], "the demo red line has no land-cover statistics"
    section = popup.locator(f'.popup-feature[data-id="{hit["id"]}"] .popup-land')
    section.wait_for(timeout=30_000)
    assert "土地覆被与地形" in section.inner_text()
    assert_matches_stats(section, stats, "zh")
    # One line of terrain: mean elevation in m, mean slope in °.
    terrain = section.locator(".popup-terrain").inner_text()
    elevation = float(re.search(r"平均高程 (-?[\d,.]+) m", terrain).group(1).replace(",", ""))
    slope = float(re.search(r"平均坡度 ([\d.]+)°", terrain).group(1))
    assert elevation == pytest.approx(stats["terrain"]["elevation"]["mean"], abs=0.5)
    assert slope == pytest.approx(stats["terrain"]["slope"]["mean"], abs=0.05)
    # The section sits under the attribute table, inside the popup's width.
    table_box = popup.locator(".attr-table").bounding_box()
    section_box = section.bounding_box()
    popup_box = popup.locator(".maplibregl-popup-content").bounding_box()
    assert section_box["y"] >= table_box["y"] + table_box["height"] - 1
    assert section_box["x"] + section_box["width"] <= popup_box["x"] + popup_box["width"] + 1
    ARTIFACTS.mkdir(exist_ok=True)
    scroll_popup_to_land(map_page)
    popup.screenshot(path=str(ARTIFACTS / "popup-land-zh.png"))
    map_page.screenshot("popup-land-desktop")
    # In English too, without asking the service again.
    asked = len([u for u in map_page.requests if "/stats" in u])
    page.locator("#lang-toggle").click()
    assert "Land cover and terrain" in section.inner_text()
    assert_matches_stats(section, stats, "en")
    assert "Mean elevation" in section.inner_text() and "Mean slope" in section.inner_text()
    scroll_popup_to_land(map_page)
    popup.screenshot(path=str(ARTIFACTS / "popup-land-en.png"))
    assert len([u for u in map_page.requests if "/stats" in u]) == asked
    assert map_page.errors == []


def test_protected_area_popup_shows_its_land(map_page: MapPage, live_server: str) -> None:
    map_page.open(f"{CITY}&layers=district,protected_area")
    popup = map_page.page.locator(".maplibregl-popup")
    hit = click_feature(map_page, "protected_area-fill", NOT_UNDER)
    popup.wait_for()
    # Every polygon of the popup gets its own section; this one is the clicked area's.
    section = popup.locator(f'.popup-feature[data-layer="protected_area"][data-id="{hit["id"]}"] .popup-land')
    section.wait_for(timeout=30_000)
    assert_matches_stats(section, feature_stats(live_server, "protected_area", hit["id"]), "zh")
    asked = {u.split("/api/layers/")[1] for u in map_page.requests if u.endswith("/stats")}
    shown = popup.locator(".popup-feature").evaluate_all(
        "(els) => els.map((e) => `${e.dataset.layer}/${e.dataset.id}/stats`)"
    )
    assert asked == set(shown)
    assert map_page.errors == []


def test_no_section_without_statistics(map_page: MapPage) -> None:
    """A failed request or null statistics (no rasters) leave the popup as it was."""
    calls: list[str] = []

    def answer(route: Route) -> None:
        calls.append(route.request.url)
        if len(calls) == 1:
            route.fulfill(status=500, json={"detail": "boom"})
        else:
            route.fulfill(json={"layer": "redline", "id": 0, "land_cover": None, "terrain": None})

    map_page.page.route("**/api/layers/*/*/stats", answer)
    map_page.open(CITY)
    page = map_page.page
    popup = page.locator(".maplibregl-popup")
    for attempt in range(3):
        if attempt < 2:  # the failure and the null answer: wait until the popup has had them
            with page.expect_response(lambda response: response.url.endswith("/stats"), timeout=30_000):
                click_feature(map_page, "redline-fill", [*NOT_UNDER, "protected_area-fill"])
        else:  # remembered: no request at all
            click_feature(map_page, "redline-fill", [*NOT_UNDER, "protected_area-fill"])
        popup.wait_for()
        map_page.next_frame()
        expect(popup.locator(".attr-table")).to_be_visible()
        assert popup.locator(".popup-land").count() == 0
        page.locator(".maplibregl-popup-close-button").click()
        popup.wait_for(state="detached")
    # A failure is tried again on the next click; an answer (even null) is remembered.
    assert len(calls) == 2
    assert not [e for e in map_page.errors if "uncaught" in e]


def test_popup_land_on_a_phone(phone_page: MapPage, live_server: str) -> None:
    phone_page.open(f"{CITY}&layers=district,redline")
    page = phone_page.page
    hit = phone_page.find_feature_pixel("redline-fill", clear_of=[*NOT_UNDER, "protected_area-fill"])
    assert hit, "no red-line polygon on screen to tap"
    page.touchscreen.tap(*phone_page.canvas_point(hit["x"], hit["y"]))
    popup = page.locator(".maplibregl-popup")
    section = popup.locator(".popup-land").first
    section.wait_for(timeout=30_000)
    box = popup.bounding_box()
    # As wide as the popup allows and no wider (where MapLibre places it near an edge is its own).
    assert box["width"] <= min(340, PHONE["width"]) + 1
    # Class names never push the percentages out of the popup.
    content = popup.locator(".maplibregl-popup-content").bounding_box()
    for percent in section.locator(".popup-land-percent").all():
        p = percent.bounding_box()
        assert p["x"] + p["width"] <= content["x"] + content["width"] + 1
    # Centre the map on the tap so the whole popup is on screen for the screenshot.
    phone_page.js(
        "(p) => { const m = window.ecomapMap; m.jumpTo({center: m.unproject([p.x, p.y])}); }",
        {"x": hit["x"], "y": hit["y"] - 200},
    )
    phone_page.wait_idle()
    scroll_popup_to_land(phone_page)
    phone_page.screenshot("popup-land-phone")
    assert phone_page.errors == []
