"""Basemaps in Chromium: the deployment's own PMTiles vector basemap drawn with every request
outside the service refused, the offline default (sea from the bay units, hillshade from the DEM,
a neutral background, translucent districts), and a visible, translated notice when an online basemap cannot load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.basemap_archive import TOWN_NAME, write_basemap_archive
from tests.browser.conftest import DESKTOP, MapPage, _new_map_page, refuse_outside
from tests.conftest import serving


@pytest.fixture(scope="module")
def basemap_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service whose vector basemap is a PMTiles archive the suite wrote, opening with it."""
    directory = tmp_path_factory.mktemp("archives")
    write_basemap_archive(directory / "basemap.pmtiles")
    env = {
        "ECOMAP_TILES__ARCHIVE_DIR": str(directory),
        "ECOMAP_BASEMAP__PMTILES_ARCHIVE": "basemap",
        "ECOMAP_BASEMAP__DEFAULT": "vector",
    }
    with serving(database_url, directory / "server.log", **env) as base:
        yield base


def offline_page(browser: Browser, base: str, locale: str = "zh-CN") -> tuple[MapPage, list[str]]:
    """A desktop tab on `base` where every request elsewhere is refused, and the list of those."""
    context = browser.new_context(viewport=DESKTOP, locale=locale)
    map_page = _new_map_page(context, base)
    return map_page, refuse_outside(map_page.page, base)


def rendered(map_page: MapPage, style_layer: str) -> list[dict]:
    return map_page.js(
        "(id) => window.ecomapMap.queryRenderedFeatures({layers: [id]}).map((f) => ({...f.properties}))",
        style_layer,
    )


def test_the_pmtiles_basemap_is_drawn_offline(browser: Browser, basemap_server: str) -> None:
    map_page, outside = offline_page(browser, basemap_server)
    try:
        map_page.open("#map=12.5/24.55/118.1")
        assert map_page.js("window.ecomapMap.getSource('basemap-pm').url").endswith("/archives/basemap.pmtiles")
        water = rendered(map_page, "basemap-pm-water")
        assert water and water[0]["name"] == "测试湖"
        assert rendered(map_page, "basemap-pm-earth")
        # (a feature crossing tiles comes once per tile)
        assert {r["name"] for r in rendered(map_page, "basemap-pm-roads_major")} == {"测试路"}
        # The town's label, with the catalog layers (and their labels, which take precedence) hidden.
        map_page.js("window.ecomap.control.setVisibleIds([])")
        map_page.wait_idle()
        assert {t["name"] for t in rendered(map_page, "basemap-pm-places_locality")} == {TOWN_NAME}
        # The archive is read in parts (range requests to the app), nothing from elsewhere.
        assert any("/archives/basemap.pmtiles" in url for url in map_page.requests)
        assert outside == []
        assert map_page.page.locator("#basemap-vector").is_checked()
        assert map_page.js("document.getElementById('basemap-error').hidden") is True
        map_page.screenshot("basemap-pmtiles")
        assert map_page.errors == []
    finally:
        map_page.page.context.close()


def test_the_offline_default_draws_the_sea_and_leaves_other_land_neutral(browser: Browser, live_server: str) -> None:
    map_page, outside = offline_page(browser, live_server)
    try:
        map_page.open("#map=11/24.5/118.1")
        style = map_page.js("window.ecomapMap.getStyle()")
        background = next(layer for layer in style["layers"] if layer["id"] == "background")
        # Not sea-blue: land outside Xiamen (Zhangzhou, Quanzhou) may lie under it.
        red, green, blue = (int(background["paint"]["background-color"][i : i + 2], 16) for i in (1, 3, 5))
        assert blue <= red + 8 and blue <= green + 8
        assert rendered(map_page, "basemap-local-sea"), "the sea is drawn from the bay units"
        # Hillshade from the DEM: the service's hillshade tiles of the elevation raster, drawn.
        hillshade = next(layer for layer in style["layers"] if layer["id"] == "basemap-hillshade")
        assert hillshade["type"] == "raster"
        assert style["sources"]["basemap-hillshade"]["tiles"][0].endswith("/tiles/raster/dem/{z}/{x}/{y}.hillshade")
        assert any(url.endswith(".hillshade") and "/tiles/raster/dem/" in url for url in map_page.requests)
        assert map_page.js("window.ecomapMap.isSourceLoaded('basemap-hillshade')")
        district_fill = next(layer for layer in style["layers"] if layer["id"] == "district-fill")
        opacity = district_fill["paint"]["fill-opacity"]
        assert max(v for v in opacity if isinstance(v, float)) < 1
        assert map_page.page.locator("#basemap-none").is_checked()
        assert outside == []
        map_page.screenshot("basemap-offline-default")
    finally:
        map_page.page.context.close()


@pytest.mark.parametrize(
    ("locale", "lang", "expected"), [("zh-CN", "", "加载失败"), ("en-US", "&lang=en", "failed to load")]
)
def test_a_basemap_that_cannot_load_says_so(
    browser: Browser, live_server: str, locale: str, lang: str, expected: str
) -> None:
    map_page, outside = offline_page(browser, live_server, locale)
    try:
        map_page.open(f"#map=11/24.5/118.1&basemap=osm{lang}")
        banner = map_page.page.locator("#basemap-error")
        banner.wait_for(state="visible")
        assert expected in banner.inner_text()
        assert "OpenStreetMap" in banner.inner_text()
        assert any("tile.openstreetmap.org" in url for url in outside)
        map_page.screenshot(f"basemap-failed-{locale}")
        # Choosing the local basemap takes the notice away.
        map_page.page.locator("label[for='basemap-none']").click()
        assert map_page.js("document.getElementById('basemap-error').hidden") is True
    finally:
        map_page.page.context.close()
