"""A river chief on a phone: the panel is a bottom sheet that leaves their waters in view, a
banner says whose view it is, targets are finger-sized, point picking says what it waits for,
upstream segments can be tapped, and the figures add up."""

from __future__ import annotations

import psycopg
import pytest

from tests.browser.conftest import PHONE, MapPage

pytestmark = pytest.mark.browser
MIN_TARGET = 44


@pytest.fixture(scope="module")
def city_chief(database_url: str) -> dict:
    """A city-level chief holding watersheds only (the demo's 蔡杰强), with what they hold."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT c.id, c.name, count(*) FILTER (WHERE a.layer = 'watershed'),"
            " count(*) FILTER (WHERE a.layer = 'river'), count(*) FILTER (WHERE a.layer = 'bay')"
            " FROM chief AS c JOIN chief_assignment AS a ON a.chief_id = c.id WHERE c.level = 'city'"
            " GROUP BY c.id HAVING count(*) FILTER (WHERE a.layer = 'watershed') > 0 ORDER BY c.id LIMIT 1"
        ).fetchone()
    assert row, "the demo data should have a city chief with watersheds"
    return {"id": row[0], "name": row[1], "watersheds": row[2], "rivers": row[3], "bays": row[4]}


@pytest.fixture(scope="module")
def river_chief(database_url: str) -> dict:
    """A chief of a river segment that has segments upstream of it."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT c.id, c.name, a.feature_id FROM chief AS c JOIN chief_assignment AS a ON a.chief_id = c.id"
            " WHERE a.layer = 'river' AND c.level = 'town'"
            " AND EXISTS (SELECT FROM river AS u WHERE u.downstream_id = a.feature_id)"
            " ORDER BY c.id, a.feature_id LIMIT 1"
        ).fetchone()
    assert row
    return {"id": row[0], "name": row[1], "segment": row[2]}


def visible_map_height(phone: MapPage) -> float:
    """Pixels of the map above the bottom sheet."""
    return phone.js(
        "() => { const map = document.getElementById('map').getBoundingClientRect();"
        " const sheet = document.getElementById('sidebar').getBoundingClientRect();"
        " return Math.min(map.bottom, sheet.top) - map.top; }"
    )


def test_the_chief_panel_is_a_bottom_sheet_that_leaves_the_waters_in_view(
    phone_page: MapPage, city_chief: dict
) -> None:
    phone_page.open(f"#chief={city_chief['id']}")
    page = phone_page.page
    page.locator("#chief-detail").wait_for()
    phone_page.wait_for_animations()
    phone_page.wait_idle()
    sheet = page.locator("#sidebar")
    assert sheet.get_attribute("data-sheet") == "half"
    map_box = page.locator("#map").bounding_box()
    assert map_box
    assert visible_map_height(phone_page) >= map_box["height"] * 0.5, "the sheet hides most of the map"
    # The jurisdiction is highlighted in the part of the map above the sheet.
    top = visible_map_height(phone_page)
    hits = phone_page.js(
        """(bottom) => {
          const map = window.ecomapMap;
          const layers = map.getStyle().layers
            .filter((l) => l.metadata?.['ecomap:highlight'] === 'chief').map((l) => l.id);
          return map.queryRenderedFeatures([[0, 0], [map.getCanvas().clientWidth, bottom]], {layers}).length;
        }""",
        top,
    )
    assert hits > 0, "the chief's waters are not in view above the sheet"
    # The banner says whose view it is.
    banner = page.locator("#chief-banner")
    assert banner.is_visible()
    assert city_chief["name"] in banner.inner_text() and "市级河长" in banner.inner_text()
    phone_page.screenshot("phone-chief-sheet-half-zh")
    # The step button goes on to full, then down to peek; dragging the handle snaps.
    page.locator("#sheet-step").tap()
    phone_page.wait_for_animations()
    assert sheet.get_attribute("data-sheet") == "full"
    page.locator("#sheet-step").tap()
    phone_page.wait_for_animations()
    assert sheet.get_attribute("data-sheet") == "peek"
    assert visible_map_height(phone_page) >= map_box["height"] - 140
    phone_page.screenshot("phone-chief-sheet-peek-zh")
    handle = page.locator("#sheet-handle").bounding_box()
    assert handle
    x, y = handle["x"] + 60, handle["y"] + handle["height"] / 2
    phone_page.js(
        """([x, y, to]) => {
          const el = document.getElementById('sheet-handle');
          const ev = (type, cy) => el.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 7,
            clientX: x, clientY: cy, pointerType: 'touch', isPrimary: true}));
          ev('pointerdown', y);
          for (let i = 1; i <= 8; i++) ev('pointermove', y + (to - y) * i / 8);
          ev('pointerup', to);
        }""",
        [x, y, PHONE["height"] * 0.55],
    )
    phone_page.wait_for_animations()
    assert sheet.get_attribute("data-sheet") == "half"
    # Closing the banner goes back to the whole map and the list.
    page.locator("#chief-banner .banner-close").tap()
    assert not banner.is_visible()
    assert "chief=" not in page.url
    assert phone_page.errors == []


def test_the_city_chief_is_listed_with_what_he_holds(phone_page: MapPage, city_chief: dict) -> None:
    phone_page.open()
    page = phone_page.page
    page.locator("#drawer-toggle").tap()
    page.locator("#tab-chief").tap()
    item = page.locator(f'.chief-list [data-chief="{city_chief["id"]}"]')
    item.wait_for()
    counts = item.locator(".chief-counts").inner_text()
    assert f"流域 {city_chief['watersheds']}" in counts
    assert "河段 0" not in counts and "海湾 0" not in counts
    phone_page.screenshot("phone-chief-list-zh")


def test_touch_targets_are_at_least_44_px(phone_page: MapPage) -> None:
    phone_page.open()
    page = phone_page.page
    page.locator("#drawer-toggle").tap()
    page.locator("#sheet-step").tap()  # full: the whole layer list
    phone_page.wait_for_animations()
    small = phone_page.js(
        """(min) => [...document.querySelectorAll(
              '#panel-layers input[type=checkbox], #panel-layers input[type=range], .maplibregl-ctrl-group button,'
              + ' #sheet-step, #drawer-toggle, [role=tab]')]
          .filter((el) => el.offsetParent !== null)
          .map((el) => {
            const r = el.getBoundingClientRect();
            return [el.id || el.className || el.type, r.width, r.height];
          })
          .filter(([, w, h]) => Math.min(w, h) < min - 0.5)""",
        MIN_TARGET,
    )
    assert small == [], f"targets under {MIN_TARGET} px: {small[:8]}"
    # A checkbox still toggles its layer with a tap.
    page.locator("#layer-toggle-station").tap()
    assert phone_page.js("() => window.ecomapMap.getLayoutProperty('station-circle', 'visibility')") == "none"
    phone_page.screenshot("phone-layers-targets")
    # The chief list's entries too.
    page.locator("#tab-chief").tap()
    page.locator(".chief-list li").first.wait_for()
    heights = page.locator(".chief-list .link-btn").evaluate_all(
        "(els) => els.map((el) => el.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= MIN_TARGET


def test_point_picking_says_what_it_waits_for(phone_page: MapPage) -> None:
    phone_page.open("#map=12.00/24.50000/118.10000")
    page = phone_page.page
    page.locator("#drawer-toggle").tap()
    page.locator("#tab-zone").tap()
    page.get_by_role("button", name="点选位置").tap()
    phone_page.wait_for_animations()
    hint = page.locator("#tool-hint")
    assert hint.is_visible() and "点击拟选位置" in hint.inner_text()
    assert page.locator("#sidebar").get_attribute("data-sheet") == "peek", "the map is given back for the pick"
    phone_page.screenshot("phone-point-pick-hint")
    page.touchscreen.tap(PHONE["width"] / 2, 300)
    page.locator("#zone-verdict").wait_for(timeout=30_000)
    assert not hint.is_visible()
    # Cancelling from the banner stops picking.
    page.get_by_role("button", name="点选位置").tap()
    assert hint.is_visible()
    page.locator("#tool-hint-cancel").tap()
    assert not hint.is_visible()
    assert phone_page.errors == []


def test_upstream_segments_are_tappable_and_their_lengths_add_up(phone_page: MapPage, river_chief: dict) -> None:
    phone_page.open(f"#chief={river_chief['id']}")
    page = phone_page.page
    page.locator("#chief-detail").wait_for()
    page.locator(f'[data-upstream="{river_chief["segment"]}"]').tap()
    total = page.locator("#upstream-total")
    total.wait_for()
    figures = page.locator("#chief-upstream .upstream-figures")
    lengths = figures.evaluate_all("(els) => els.map((el) => Number(el.dataset.lengthKm))")
    distances = figures.evaluate_all("(els) => els.map((el) => Number(el.dataset.distanceKm))")
    assert lengths, "the segment has segments upstream"
    assert sum(lengths) == pytest.approx(float(total.get_attribute("data-km")), abs=0.002 * len(lengths))
    # Shown to 2 decimals, the listed lengths add up to the total shown (within rounding).
    shown = [float(t.split("河段长 ")[1].split(" km")[0]) for t in figures.all_inner_texts()]
    shown_total = float(total.inner_text().split("合计长 ")[1].split(" km")[0])
    assert sum(shown) == pytest.approx(shown_total, abs=0.005 * len(shown) + 0.005)
    assert all("距起点" in t and "河段长" in t for t in figures.all_inner_texts()), "each figure says what it is"
    # Distances along the river grow upstream; a segment's own length is not one of them.
    assert distances == sorted(distances)
    phone_page.screenshot("phone-upstream-zh")
    # Tapping a segment flies to it and highlights it, in view above the sheet.
    first = page.locator("#chief-upstream .plain-list .link-btn").first
    first.tap()
    phone_page.wait_for_animations()
    phone_page.wait_idle()
    selected = phone_page.js("() => window.ecomap.highlighter.get('selection')")
    assert len(selected) == 1 and selected[0]["layer"] == "river"
    bottom = visible_map_height(phone_page)
    shown_segment = phone_page.js(
        """([id, bottom]) => window.ecomapMap.queryRenderedFeatures(
             [[0, 0], [window.ecomapMap.getCanvas().clientWidth, bottom]], {layers: ['river-line']})
           .some((f) => f.id === id)""",
        [selected[0]["id"], bottom],
    )
    assert shown_segment, "the tapped segment is not in view above the sheet"
    phone_page.screenshot("phone-upstream-segment-tapped")
    assert phone_page.errors == []
