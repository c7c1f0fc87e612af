"""The map on a phone-sized touch screen: full-screen map, panels in a bottom sheet, big targets."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE, MapPage

pytestmark = pytest.mark.browser


def test_phone_layout_is_usable(phone_page: MapPage) -> None:
    phone_page.open()
    page = phone_page.page
    canvas = page.locator(".maplibregl-canvas").bounding_box()
    assert canvas and canvas["width"] >= PHONE["width"] - 1, "the map should span the phone's width"
    assert canvas["height"] >= PHONE["height"] * 0.8
    # The side panel is a closed bottom sheet until the menu button opens it.
    sidebar = page.locator("#sidebar")
    assert sidebar.get_attribute("data-sheet") == "closed"
    assert not sidebar.is_visible() or sidebar.bounding_box()["y"] >= PHONE["height"]
    menu = page.locator("#drawer-toggle")
    assert menu.is_visible()
    assert menu.get_attribute("aria-expanded") == "false"
    phone_page.screenshot("phone-map")
    menu.tap()
    page.wait_for_function("() => document.getElementById('sidebar').dataset.sheet === 'half'")
    phone_page.wait_for_animations()
    assert menu.get_attribute("aria-expanded") == "true"
    # Half the screen: the map stays in view above the sheet.
    assert sidebar.bounding_box()["y"] >= PHONE["height"] * 0.45
    phone_page.screenshot("phone-drawer")
    # Touch targets in the drawer are finger-sized.
    for selector in ["#tab-layers", "#tab-zone", "#tab-chief", "#drawer-toggle"]:
        box = page.locator(selector).bounding_box()
        assert box and box["height"] >= 40, selector
    # Tapping a layer's label toggles it.
    page.locator('label[for="layer-toggle-station"]').tap()
    assert phone_page.js("() => window.ecomapMap.getLayoutProperty('station-circle', 'visibility')") == "none"
    # Closing the drawer gives the map back.
    menu.tap()
    page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().top >= innerHeight")
    assert page.locator("#search-input").is_visible()
    assert page.locator(".maplibregl-ctrl-scale").is_visible()
    assert phone_page.errors == []


def test_phone_popup_fits_the_screen(phone_page: MapPage) -> None:
    phone_page.open("#map=11.00/24.60000/118.10000")
    hit = phone_page.find_feature_pixel("protected_area-fill", clear_of=["station-circle"])
    assert hit, "no protected area on screen"
    x, y = phone_page.canvas_point(hit["x"], hit["y"])
    phone_page.page.touchscreen.tap(x, y)
    popup = phone_page.page.locator(".maplibregl-popup")
    popup.wait_for()
    box = popup.bounding_box()
    assert box and box["width"] <= PHONE["width"]
    assert "自然保护地" in popup.inner_text()
    phone_page.screenshot("phone-popup")


def test_phone_popup_near_the_edge_is_panned_into_view(phone_page: MapPage) -> None:
    """A tap near the side of the screen opens a popup that would overflow it: the map pans
    so the whole popup is on screen."""
    phone_page.open("#map=11.00/24.60000/118.10000")
    hit = phone_page.find_feature_pixel("protected_area-fill", clear_of=["station-circle"])
    assert hit, "no protected area on screen"
    width = PHONE["width"]
    # Bring the feature's pixel 12 px from the right edge of the screen, then tap it there.
    phone_page.js(f"() => window.ecomapMap.panBy([{hit['x'] - (width - 12)}, 0], {{animate: false}})")
    phone_page.wait_idle()
    hits = phone_page.js(
        f"() => window.ecomapMap.queryRenderedFeatures([{width - 12}, {hit['y']}], "
        "{layers: ['protected_area-fill']}).length"
    )
    assert hits, "the protected area should now be under the tap"
    x, y = phone_page.canvas_point(width - 12, hit["y"])
    phone_page.page.touchscreen.tap(x, y)
    popup = phone_page.page.locator(".maplibregl-popup")
    popup.wait_for()
    phone_page.page.wait_for_function(
        f"""() => {{
          const box = document.querySelector('.maplibregl-popup').getBoundingClientRect();
          return box.left >= 0 && box.right <= {width};
        }}""",
        timeout=5_000,
    )
    assert "自然保护地" in popup.inner_text()
    phone_page.screenshot("phone-popup-edge")


def test_a_long_popup_scrolls_inside_and_leaves_the_map_around_it_untouched(phone_page: MapPage) -> None:
    """A popup taller than half the screen scrolls its body (the close button stays in view),
    and the map outside the popup looks exactly as without it (a scrolling content box once
    painted its overflow as a white band over the map)."""
    import io

    from PIL import Image, ImageChops

    phone_page.open("#map=12.00/24.61000/117.95000&layers=redline")
    page = phone_page.page
    page.touchscreen.tap(PHONE["width"] / 2, 450)
    body = page.locator(".maplibregl-popup .popup-body")
    body.wait_for()
    # The pan that keeps the popup in view: over once the popup is inside the screen and the map rests.
    page.wait_for_function(
        "() => { const r = document.querySelector('.maplibregl-popup').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight && !window.ecomapMap.isMoving(); }",
        timeout=30_000,
    )
    phone_page.wait_idle()
    scroller = ".maplibregl-popup .popup-body, .maplibregl-popup .maplibregl-popup-content"
    overflowing = page.locator(scroller).evaluate_all("(els) => els.some((el) => el.scrollHeight > el.clientHeight)")
    assert overflowing, "the red line's popup should need scrolling"
    box = page.locator(".maplibregl-popup").bounding_box()
    close = page.locator(".maplibregl-popup-close-button").bounding_box()
    page.locator(scroller).evaluate_all("(els) => els.forEach((el) => { el.scrollTop = el.scrollHeight; })")
    phone_page.next_frame()
    close_after = page.locator(".maplibregl-popup-close-button").bounding_box()
    with_popup = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    page.evaluate("() => { document.querySelector('.maplibregl-popup').style.visibility = 'hidden'; }")
    phone_page.next_frame()
    without = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    map_box = page.locator("#map").bounding_box()
    # The map above the popup (it opened below the tap), off the controls on the right.
    region = (
        int(map_box["x"]) + 2,
        int(map_box["y"]) + 60,
        int(map_box["x"] + map_box["width"]) - 60,
        int(box["y"]) - 4,
    )
    assert region[3] - region[1] > 100
    difference = ImageChops.difference(with_popup.crop(region), without.crop(region)).getbbox()
    assert difference is None, f"the popup changed the map outside it at {difference}"
    assert close_after == close, "the close button scrolled out of view"
