"""The map page: loads cleanly, renders every catalog layer, popups, hover, URL state, a11y."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MapPage

pytestmark = pytest.mark.browser

GROUP_ORDER = ["redline", "protected", "water", "rivers_bays", "monitoring", "admin", "land"]
LAYER_IDS = {"district", "bay", "watershed", "protected_area", "water_source_zone", "redline", "river", "station"}


@pytest.fixture(scope="module")
def layers_doc(live_server: str) -> dict:
    response = httpx.get(f"{live_server}/api/layers", timeout=10)
    response.raise_for_status()
    return response.json()


def style_layer_ids(map_page: MapPage, layer: str) -> list[str]:
    return map_page.js(
        "(id) => window.ecomapMap.getStyle().layers"
        ".filter((l) => l.metadata && l.metadata['ecomap:layer'] === id && l.type !== 'symbol').map((l) => l.id)",
        layer,
    )


def test_page_loads_without_console_errors(map_page: MapPage, layers_doc: dict) -> None:
    map_page.open()
    page = map_page.page
    assert "厦门生态环境一张图" in page.title()
    assert page.locator(".app-title").inner_text() == "厦门生态环境一张图"
    # Groups in the service's order, one list item per catalog layer.
    groups = page.locator(".layer-group").evaluate_all("(els) => els.map((e) => e.dataset.group)")
    assert [g for g in groups if g in GROUP_ORDER] == [g for g in GROUP_ORDER if g in groups]
    vector_items = page.locator('.layer-item:not([data-kind="raster"])')
    assert set(vector_items.evaluate_all("(els) => els.map((e) => e.dataset.layer)")) == LAYER_IDS
    # Raster layers (land cover, terrain) are listed too, all off at first.
    raster_items = page.locator('.layer-item[data-kind="raster"]')
    assert raster_items.count() >= 1
    assert page.locator('.layer-item[data-kind="raster"] input[type="checkbox"]:checked').count() == 0
    # Sample data is labelled as such, per layer and in the header.
    sample_layers = {layer["id"] for layer in layers_doc["layers"] if layer["sample_data"]}
    for layer_id in sample_layers:
        assert page.locator(f'.layer-item[data-layer="{layer_id}"] .badge-sample').is_visible()
    assert page.locator("#sample-banner").is_visible() == bool(sample_layers)
    # Categorised styles get one legend swatch per category.
    for layer in layers_doc["layers"]:
        categories = (layer["style"].get("categories") or {}).get("colors") or {}
        swatches = page.locator(f'.layer-item[data-layer="{layer["id"]}"] .legend li').count()
        assert swatches == max(1, len(categories)), layer["id"]
    assert page.locator(".maplibregl-ctrl-scale").is_visible()
    assert "°E" in page.locator("#coords").inner_text()
    map_page.screenshot("desktop-default")
    assert map_page.errors == []


def test_default_basemap_makes_no_external_request(map_page: MapPage) -> None:
    map_page.open()
    origin = urlsplit(map_page.base_url).netloc
    web = [urlsplit(u) for u in map_page.requests if urlsplit(u).scheme in ("http", "https")]
    external = [u.geturl() for u in web if u.netloc != origin]
    assert external == []


def test_every_layer_renders_features(map_page: MapPage, layers_doc: dict) -> None:
    map_page.open()
    # Frame the city so that every layer's features are on screen at a zoom where all show.
    map_page.js("() => window.ecomapMap.jumpTo({center: [118.1, 24.6], zoom: 10})")
    map_page.wait_idle()
    counts = {}
    for layer in layers_doc["layers"]:
        ids = style_layer_ids(map_page, layer["id"])
        assert ids, f"the style has no layers for {layer['id']}"
        features = map_page.js(
            "(ids) => window.ecomapMap.queryRenderedFeatures({layers: ids}).map((f) => f.id)",
            ids,
        )
        counts[layer["id"]] = len(features)
        assert features, f"no rendered feature of {layer['id']} at zoom 10"
        assert all(fid is not None for fid in features), f"{layer['id']} features carry no id (hover needs it)"
    map_page.screenshot("all-layers-z10")
    assert map_page.errors == []


def test_click_shows_popup_with_attributes_and_hover_highlights(map_page: MapPage, live_server: str) -> None:
    map_page.open()
    map_page.js("() => window.ecomapMap.jumpTo({center: [118.1, 24.6], zoom: 11})")
    map_page.wait_idle()
    hit = map_page.find_feature_pixel(
        "redline-fill",
        clear_of=["station-circle", "river-line", "watershed-line", "water_source_zone-fill", "protected_area-fill"],
    )
    assert hit, "no red-line polygon on screen to click"
    x, y = map_page.canvas_point(hit["x"], hit["y"])
    map_page.page.mouse.move(x, y)
    hovered = map_page.js(
        "(id) => window.ecomapMap.getFeatureState({source: 'ecomap', sourceLayer: 'redline', id}).hover",
        hit["id"],
    )
    assert hovered is True
    map_page.page.mouse.click(x, y)
    popup = map_page.page.locator(".maplibregl-popup")
    popup.wait_for()
    # Low-zoom tiles carry only what styling needs: the popup fetches the rest by feature id.
    assert "code" not in hit["properties"]
    full = httpx.get(f"{live_server}/ogc/collections/redline/items/{hit['id']}", timeout=10).json()
    expect(popup).to_contain_text(full["properties"]["code"])
    text = popup.inner_text()
    assert "生态保护红线" in text
    assert "生态功能类型" in text and "编号" in text
    map_page.screenshot("popup-zh")
    # Switching language re-labels the popup.
    map_page.page.locator("#lang-toggle").click()
    assert "Ecological function" in popup.inner_text()
    assert map_page.page.locator("#tab-layers").inner_text() == "Layers"
    assert "lang=en" in map_page.page.url
    assert map_page.errors == []


def test_layer_toggle_and_opacity(map_page: MapPage) -> None:
    map_page.open()
    page = map_page.page
    page.locator("#layer-toggle-redline").uncheck()
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('redline-fill', 'visibility')") == "none"
    assert "layers=" in page.url and "redline" not in page.url.split("layers=")[1].split("&")[0]
    page.locator("#layer-toggle-redline").check()
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('redline-fill', 'visibility')") == "visible"
    slider = page.locator("#layer-opacity-protected_area")
    slider.focus()
    page.keyboard.press("Home")
    opacity = map_page.js(
        "() => JSON.stringify(window.ecomapMap.getPaintProperty('protected_area-fill', 'fill-opacity'))"
    )
    assert opacity == "0" or opacity.startswith('["*",0,')
    assert map_page.errors == []


def test_url_hash_restores_the_view(map_page: MapPage) -> None:
    map_page.open("#map=12.00/24.48000/118.08000&layers=redline,river&lang=en")
    state = map_page.js(
        "() => { const m = window.ecomapMap; const c = m.getCenter();"
        " return {zoom: m.getZoom(), lng: c.lng, lat: c.lat,"
        " redline: m.getLayoutProperty('redline-fill', 'visibility'),"
        " station: m.getLayoutProperty('station-circle', 'visibility')}; }"
    )
    assert abs(state["zoom"] - 12) < 0.01
    assert abs(state["lng"] - 118.08) < 1e-3 and abs(state["lat"] - 24.48) < 1e-3
    assert state["redline"] != "none" and state["station"] == "none"
    assert map_page.page.locator("#tab-layers").inner_text() == "Layers"
    # Moving the map writes the new view back into the hash.
    map_page.js("() => window.ecomapMap.jumpTo({center: [118.0, 24.7], zoom: 11})")
    map_page.page.wait_for_function("() => location.hash.includes('map=11.00/24.70000/118.00000')")
    assert "layers=redline,river" in map_page.page.url


def test_controls_have_accessible_names_and_work_from_the_keyboard(map_page: MapPage) -> None:
    map_page.open()
    page = map_page.page
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, [role=tab], [role=combobox]')]
          .filter((el) => el.offsetParent !== null)
          .filter((el) => {
            const labelled = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
              || (el.labels && el.labels.length) || el.textContent.trim();
            return !labelled;
          })
          .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []
    # Tabs: arrow keys move between them.
    page.locator("#tab-layers").focus()
    page.keyboard.press("ArrowRight")
    assert page.locator("#tab-zone").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-zone").is_visible()
    page.keyboard.press("ArrowRight")
    assert page.locator("#tab-chief").get_attribute("aria-selected") == "true"
    # A layer checkbox toggles with the space bar.
    page.locator("#tab-layers").click()
    page.locator("#layer-toggle-river").focus()
    page.keyboard.press("Space")
    assert map_page.js("() => window.ecomapMap.getLayoutProperty('river-line', 'visibility')") == "none"


def test_missing_service_endpoints_show_a_message(map_page: MapPage) -> None:
    """Search and site check say clearly when the service lacks the endpoint, and nothing crashes."""
    not_found = {"status": 404, "json": {"detail": "Not Found"}}
    map_page.page.route("**/api/search*", lambda route: route.fulfill(**not_found))
    map_page.page.route("**/api/zone-check", lambda route: route.fulfill(**not_found))
    map_page.open()
    page = map_page.page
    page.locator("#search-input").fill("红线")
    message = page.locator(".search-message")
    message.wait_for()
    page.wait_for_function("() => document.querySelector('.search-message').textContent.includes('不可用')")
    page.locator("#tab-zone").click()
    page.locator("#panel-zone button", has_text="点选位置").click()
    x, y = map_page.canvas_point(400, 300)
    page.mouse.click(x, y)
    page.locator("#panel-zone .notice-error").wait_for()
    assert "暂不可用" in page.locator("#panel-zone .notice-error").inner_text()
    assert not [e for e in map_page.errors if e.startswith("uncaught")]


# A 1x1 transparent PNG standing in for internet basemap tiles (tests run offline).
BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_basemap_choice_goes_below_the_catalog_layers(map_page: MapPage) -> None:
    map_page.page.route(
        lambda url: urlsplit(url).netloc != urlsplit(map_page.base_url).netloc,
        lambda route: route.fulfill(status=200, content_type="image/png", body=BLANK_PNG),
    )
    map_page.open()
    page = map_page.page
    # Without a Tianditu key its basemaps cannot be chosen.
    assert page.locator("#basemap-tianditu-vec").is_disabled()
    page.locator('label[for="basemap-amap"]').click()
    order = map_page.js("() => window.ecomapMap.getStyle().layers.map((l) => l.id)")
    assert "basemap-amap" in order
    first_catalog = min(i for i, layer_id in enumerate(order) if layer_id.startswith("district-"))
    assert order.index("basemap-amap") < first_catalog
    # AMap tiles are GCJ-02: the offset warning is shown while it is on.
    assert "500" in page.locator(".basemaps .notice-warn").inner_text()
    assert "basemap=amap" in page.url
    page.locator('label[for="basemap-none"]').click()
    assert "basemap-amap" not in map_page.js("() => window.ecomapMap.getStyle().layers.map((l) => l.id)")
    assert page.locator(".basemaps .notice-warn").count() == 0
    assert "basemap=" not in page.url
