"""Details a person meets on the desktop map: the whole region at first, a coordinate box that
follows the map, popups over the controls with a count and names instead of ids, zone colours
told apart, the real districts not badged as sample data."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.browser.conftest import MapPage

pytestmark = pytest.mark.browser


def test_default_view_shows_the_whole_region(map_page: MapPage, database_url: str) -> None:
    """Opened without a place in the link, the map frames every district (northern 同安 too)."""
    with psycopg.connect(database_url) as conn:
        x0, y0, x1, y1 = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
            " FROM (SELECT ST_Extent(geom) AS e FROM district) AS d"
        ).fetchone()
    map_page.open()
    west, south, east, north = map_page.js("() => window.ecomapMap.getBounds().toArray().flat()")
    assert west <= x0 and south <= y0 and east >= x1 and north >= y1, "a district is cut off"
    map_page.screenshot("details-default-view")


def test_coordinates_follow_the_map_and_show_the_exact_zoom(map_page: MapPage) -> None:
    map_page.open("#map=11.37/24.60000/118.10000")
    page = map_page.page
    box = page.locator(".maplibregl-canvas").bounding_box()
    assert box
    x, y = box["x"] + 300, box["y"] + 200
    page.mouse.move(x, y)

    def shown() -> tuple[float, float, str]:
        text = page.locator("#coords").inner_text()
        match = re.search(r"([\d.]+)°E, ([\d.]+)°N .* ([\d.]+)$", text)
        assert match, text
        return float(match.group(1)), float(match.group(2)), match.group(3)

    def under_pointer() -> tuple[float, float, float]:
        return map_page.js(
            "() => { const p = window.ecomapMap.unproject([300, 200]);"
            " return [p.lng, p.lat, window.ecomapMap.getZoom()]; }"
        )

    lon, lat, zoom_text = shown()
    expected = under_pointer()
    assert (lon, lat) == pytest.approx(expected[:2], abs=2e-5)
    assert zoom_text == f"{expected[2]:.2f}" == "11.37"
    # Fly elsewhere with the pointer resting: the box follows (it once kept the old position).
    map_page.js("() => window.ecomapMap.flyTo({center: [118.0, 24.7], zoom: 12.5, duration: 300})")
    map_page.wait_idle()
    lon, lat, zoom_text = shown()
    expected = under_pointer()
    assert (lon, lat) == pytest.approx(expected[:2], abs=2e-5)
    assert zoom_text == f"{expected[2]:.2f}" == "12.50"


def test_popups_lie_over_the_coordinate_box_and_attribution_button(map_page: MapPage) -> None:
    """A popup reaching the map's corner covers the coordinate box and the ⓘ button, not the other way round."""
    map_page.open("#map=11.00/24.60000/118.10000")
    page = map_page.page
    map_page.js(
        """() => {
          const map = window.ecomapMap;
          const f = map.queryRenderedFeatures().find((f) => f.layer.metadata?.['ecomap:layer']);
          window.ecomap.popups.showAt(map.getCenter(),
            [{layerId: f.layer.metadata['ecomap:layer'], id: f.id, sourceLayer: f.sourceLayer,
              properties: f.properties}], []);
        }"""
    )
    page.locator(".maplibregl-popup").wait_for()
    map_page.wait_idle()
    for control in ("#coords", ".maplibregl-ctrl-attrib"):
        # Lay the resting popup over the control (as when it opens at the map's corner).
        on_top = map_page.js(
            """(selector) => {
              const popup = document.querySelector('.maplibregl-popup');
              const target = document.querySelector(selector).getBoundingClientRect();
              const map = document.getElementById('map').getBoundingClientRect();
              popup.style.transform = `translate(${target.left - map.left - 10}px, ${target.top - map.top - 10}px)`;
              const x = target.left + Math.min(8, target.width / 2), y = target.top + target.height / 2;
              return !!document.elementFromPoint(x, y).closest('.maplibregl-popup');
            }""",
            control,
        )
        assert on_top, f"{control} covers the popup"
    map_page.screenshot("details-popup-over-controls")


def test_a_popup_of_several_features_says_how_many(map_page: MapPage) -> None:
    map_page.open("#map=12.00/24.61000/117.95000")
    hit = map_page.js(
        """() => {
          const map = window.ecomapMap, w = map.getCanvas().clientWidth, h = map.getCanvas().clientHeight;
          const layers = ['redline-fill', 'watershed-line', 'protected_area-fill', 'water_source_zone-fill',
                          'river-line']
            .filter((l) => map.getLayer(l));
          for (let y = 40; y < h - 40; y += 20) for (let x = 40; x < w - 40; x += 20) {
            const ids = new Set(map.queryRenderedFeatures([[x - 4, y - 4], [x + 4, y + 4]], {layers})
              .map((f) => f.layer.metadata['ecomap:layer'] + '/' + f.id));
            if (ids.size >= 3) return {x, y, n: ids.size};
          }
          return null;
        }"""
    )
    assert hit, "no spot with three features"
    x, y = map_page.canvas_point(hit["x"], hit["y"])
    map_page.page.mouse.click(x, y)
    count = map_page.page.locator("#popup-count")
    count.wait_for()
    sections = map_page.page.locator(".maplibregl-popup .popup-feature").count()
    assert sections >= 2
    assert count.inner_text() == f"此处有 {sections} 个要素"
    assert map_page.page.locator(".popup-index").first.inner_text().startswith(f"1/{sections}")
    map_page.screenshot("details-popup-count")


def test_popups_name_the_features_ids_refer_to(map_page: MapPage, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        river = conn.execute(
            "SELECT r.id, d.name || ' ' || d.segment, w.name FROM river AS r JOIN river AS d ON d.id = r.downstream_id"
            " JOIN watershed AS w ON w.id = r.watershed_id ORDER BY r.id LIMIT 1"
        ).fetchone()
        station = conn.execute(
            "SELECT s.id, r.name || ' ' || r.segment FROM station AS s JOIN river AS r ON r.id = s.river_id"
            " ORDER BY s.id LIMIT 1"
        ).fetchone()
    map_page.open("#map=11.00/24.60000/118.10000")
    for layer, fid in (("river", river[0]), ("station", station[0])):
        map_page.js(
            "([layer, id]) => window.ecomap.popups.showAt(window.ecomapMap.getCenter(),"
            " [{layerId: layer, id, properties: {}}], [])",
            [layer, fid],
        )
        section = map_page.page.locator(f'.popup-feature[data-layer="{layer}"]')
        section.wait_for()
        map_page.page.wait_for_function(
            "() => ![...document.querySelectorAll('.popup-feature td')].some((td) => td.textContent === '…')"
            " && document.querySelectorAll('.popup-feature td').length > 3"
        )
        rows = dict(
            map_page.page.locator(".popup-feature tr").evaluate_all(
                "(trs) => trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])"
            )
        )
        if layer == "river":
            assert rows["下游河段"] == river[1]
            assert rows["所属流域"] == river[2]
        else:
            assert rows["所在河段"] == station[1]
        assert not [v for v in rows.values() if v.strip().isdigit() and len(v) < 4], f"a raw id in {rows}"
    map_page.screenshot("details-popup-names")


def test_zone_colours_differ_and_real_districts_are_not_sample(map_page: MapPage) -> None:
    map_page.open()
    colours = map_page.page.locator('.layer-item[data-layer="protected_area"] .legend rect').evaluate_all(
        "(rects) => rects.map((r) => r.getAttribute('fill'))"
    )
    assert len(colours) == len(set(colours)) == 5
    assert not map_page.page.locator('.layer-item[data-layer="district"] .badge-sample').count()
    assert map_page.page.locator('.layer-item[data-layer="redline"] .badge-sample').is_visible()
    assert map_page.errors == []
