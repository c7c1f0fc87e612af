"""Place search, the attribute table (filter → map + table + export agree, selection both ways)
and the red-line timeline (map at a date, diff), in Chromium on desktop and phone, Chinese and
English, with every request outside the service refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import psycopg
import pytest

from tests.browser.conftest import MapPage

pytestmark = pytest.mark.browser


def offline(map_page: MapPage) -> list[str]:
    """Refuses every request that does not go to the service; returns the list of those refused."""
    refused: list[str] = []

    def handle(route, request) -> None:
        if request.url.startswith(map_page.base_url) or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(request.url)
            route.abort()

    map_page.page.context.route("**/*", handle)
    return refused


def to_english(map_page: MapPage) -> None:
    map_page.page.locator("#lang-toggle").click()
    map_page.page.wait_for_function("() => document.documentElement.lang === 'en'")


def choose_first_result(map_page: MapPage, query: str) -> str:
    page = map_page.page
    page.locator("#search-input").fill(query)
    option = page.locator(".search-option").first
    option.wait_for()
    text = option.inner_text()
    page.locator("#search-input").press("Enter")
    map_page.wait_idle()
    return text


def search_point(map_page: MapPage) -> list[float]:
    return map_page.js(
        "() => window.ecomapMap.getSource('search-point').serialize().data.features[0].geometry.coordinates"
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_search_finds_places_by_pinyin_and_coordinates(map_page: MapPage, db: psycopg.Connection, lang: str) -> None:
    offline(map_page)
    map_page.open()
    if lang == "en":
        to_english(map_page)
    lon, lat = db.execute("SELECT ST_X(geom), ST_Y(geom) FROM place WHERE name_zh = '筼筜湖'").fetchone()
    text = choose_first_result(map_page, "ydh")
    assert ("筼筜湖" in text and "湖泊" in text) if lang == "zh" else ("Yundang Lake" in text and "Lake" in text)
    assert search_point(map_page) == pytest.approx([lon, lat])
    center = map_page.js("() => window.ecomapMap.getCenter().toArray()")
    assert center == pytest.approx([lon, lat], abs=1e-3) and map_page.js("() => window.ecomapMap.getZoom()") >= 13
    map_page.screenshot(f"search-place-{lang}")
    text = choose_first_result(map_page, "24.5,118.1")
    assert ("坐标" in text and "纬度,经度" in text) if lang == "zh" else "latitude, longitude" in text
    assert search_point(map_page) == pytest.approx([118.1, 24.5])
    text = choose_first_result(map_page, "24°27′N 118°05′E")
    assert search_point(map_page) == pytest.approx([118 + 5 / 60, 24.45])
    assert map_page.errors == []


def open_table(map_page: MapPage, layer: str) -> None:
    page = map_page.page
    page.locator("#table-toggle").click()
    page.wait_for_function("() => document.getElementById('table-panel').dataset.loaded")
    page.locator("#table-layer").select_option(layer)
    page.wait_for_function(
        "(l) => (document.getElementById('table-panel').dataset.loaded || '').startsWith(l + ':')", arg=layer
    )


def table_state(map_page: MapPage) -> dict:
    return map_page.js("() => window.ecomap.workDock.table.state()")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_table_filter_drives_map_table_and_export(
    map_page: MapPage, db: psycopg.Connection, tmp_path: Path, lang: str
) -> None:
    refused = offline(map_page)
    map_page.open()
    if lang == "en":
        to_english(map_page)
    page = map_page.page
    open_table(map_page, "redline")
    all_ids = [r[0] for r in db.execute("SELECT id FROM redline ORDER BY id").fetchall()]
    assert sorted(table_state(map_page)["ids"]) == all_ids
    # sorting by a column: the table's order is that of the data
    page.locator(".table-head [data-property='area_km2']").click()
    by_area = [r[0] for r in db.execute("SELECT id FROM redline ORDER BY area_km2, id").fetchall()]
    assert table_state(map_page)["ids"] == by_area
    # the filter builder writes CQL2
    page.locator("#table-panel .table-filter .btn").first.click()
    row = page.locator("#table-panel .cql-row").first
    row.locator("select").nth(0).select_option("domain")
    row.locator("select").nth(2).select_option("陆域")
    assert page.locator("#table-cql").input_value() == "domain = '陆域'"
    page.locator("#table-apply").click()
    page.wait_for_function("() => window.ecomap.workDock.table.state().filter === \"domain = '陆域'\"")
    page.wait_for_function(
        "(n) => document.getElementById('table-panel').dataset.loaded === 'redline:' + n",
        arg=db.execute("SELECT count(*) FROM redline WHERE domain = '陆域'").fetchone()[0],
    )
    land = {r[0] for r in db.execute("SELECT id FROM redline WHERE domain = '陆域'").fetchall()}
    assert set(table_state(map_page)["ids"]) == land
    map_page.wait_idle()
    # the map draws the same filter: its own tiles, every drawn red line on land
    tiles = map_page.js("() => window.ecomapMap.getSource('override-redline').tiles[0]")
    assert "filter=domain" in tiles
    drawn = map_page.js(
        "() => window.ecomapMap.queryRenderedFeatures({layers: ['redline-fill--override']}).map((f) => f.id)"
    )
    assert drawn and set(drawn) <= land
    assert map_page.js("() => window.ecomapMap.queryRenderedFeatures({layers: ['redline-fill']}).length") == 0
    # the export of the filtered set holds the same features
    page.locator("#table-format").select_option("geojson")
    with page.expect_download() as download:
        page.locator("#table-export").click()
    path = tmp_path / "filtered.geojson"
    download.value.save_as(path)
    exported = {f["properties"]["id"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]}
    assert exported == land
    # selection: a row selects on the map, the map selects the row
    first_id = table_state(map_page)["ids"][0]
    page.locator(f".table-row[data-id='{first_id}']").click()
    assert map_page.js("() => window.ecomap.highlighter.get('selection')") == [{"layer": "redline", "id": first_id}]
    map_page.wait_idle()
    # framed by the bbox read with the rows: the table asks for no geometry (skipGeometry)
    box = db.execute(
        "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM redline WHERE id = %s", [first_id]
    ).fetchone()
    west, south, east, north = map_page.js("() => window.ecomapMap.getBounds().toArray().flat()")
    assert west <= box[0] and south <= box[1] and east >= box[2] and north >= box[3]
    assert (east - west) < 20 * (box[2] - box[0]) + 0.02  # zoomed to it, not just somewhere around
    requested = map_page.js(
        "() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/items?'))"
    )
    assert requested and all("skipGeometry=true" in url for url in requested)
    # the open and the filter were timed (the bench's ecomap:table measure), rows counted
    timed = map_page.js("() => performance.getEntriesByName('ecomap:table').map((m) => m.detail)")
    assert [(m["layer"], m["rows"]) for m in timed][-2:] == [("redline", len(all_ids)), ("redline", len(land))]
    with page.expect_download() as download:
        page.locator("#table-export-selection").click()
    download.value.save_as(tmp_path / "selected.geojson")
    selected = json.loads((tmp_path / "selected.geojson").read_text(encoding="utf-8"))["features"]
    assert [f["properties"]["id"] for f in selected] == [first_id]
    map_page.screenshot(f"table-filtered-{lang}")
    pixel = map_page.find_feature_pixel("redline-fill--override")
    assert pixel is not None
    page.mouse.click(*map_page.canvas_point(pixel["x"], pixel["y"]))
    page.wait_for_function("(id) => window.ecomap.workDock.table.state().selected[0] === id", arg=pixel["id"])
    assert page.locator(f".table-row.selected[data-id='{pixel['id']}']").count() == 1
    assert refused == [] and map_page.errors == []


def test_switching_the_table_to_another_layer_leaves_the_map_tiles_alone(map_page: MapPage) -> None:
    """A layer without a table filter has nothing to clear (switching away, *Clear*): the map's
    tiles are not reloaded (a reload of the shared source re-parses every layer's tiles while
    the rows load)."""
    offline(map_page)
    map_page.open()
    page = map_page.page
    page.locator("#table-toggle").click()
    page.wait_for_function("() => document.getElementById('table-panel').dataset.loaded")
    map_page.wait_idle()
    map_page.js(
        """() => {
          window.tilesReloaded = 0;
          window.ecomapMap.on('sourcedata', (e) => {
            if (e.sourceId === 'ecomap' && e.tile) window.tilesReloaded += 1;
          });
        }"""
    )
    page.locator("#table-layer").select_option("station")
    page.wait_for_function("() => (document.getElementById('table-panel').dataset.loaded || '').startsWith('station:')")
    map_page.next_frame()
    map_page.wait_idle()
    assert map_page.js("() => window.tilesReloaded") == 0
    # clearing when no filter is set: the rows are read again, the map left as it is
    before = len(map_page.js("() => performance.getEntriesByName('ecomap:table')"))
    page.locator("#table-clear").click()
    page.wait_for_function("(n) => performance.getEntriesByName('ecomap:table').length > n", arg=before)
    map_page.next_frame()
    map_page.wait_idle()
    assert map_page.js("() => window.tilesReloaded") == 0
    assert map_page.errors == []


def test_table_of_ten_thousand_rows_keeps_few_rows_in_the_page(map_page: MapPage) -> None:
    """Virtualised: the DOM holds only the rows in view (observation-free check with synthetic rows)."""
    offline(map_page)
    map_page.open()
    open_table(map_page, "station")
    rows = map_page.page.locator(".table-row").count()
    total = len(table_state(map_page)["ids"])
    assert 0 < rows <= min(total, 60)
    map_page.page.locator("#table-body").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    map_page.next_frame()
    last = table_state(map_page)["ids"][-1]
    assert map_page.page.locator(f".table-row[data-id='{last}']").count() == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_timeline_shows_red_lines_by_validity_and_a_diff(map_page: MapPage, db: psycopg.Connection, lang: str) -> None:
    refused = offline(map_page)
    map_page.open()
    if lang == "en":
        to_english(map_page)
    page = map_page.page
    page.locator("#timeline-toggle").click()
    page.wait_for_function("() => document.getElementById('timeline-panel').dataset.loaded === 'redline'")
    valid_from = db.execute("SELECT max(valid_from) FROM redline").fetchone()[0].isoformat()
    assert valid_from in page.locator("#timeline-list").inner_text()
    drawn = "() => window.ecomapMap.queryRenderedFeatures({layers: ['redline-fill--override']}).length"
    page.locator("#timeline-date").fill("2023-05-31")
    page.locator("#timeline-show").click()
    map_page.wait_idle()
    assert map_page.js(drawn) == 0, "no red line was in force before they took effect"
    page.locator("#timeline-date").fill("2024-01-01")
    page.locator("#timeline-show").click()
    map_page.wait_idle()
    assert map_page.js(drawn) > 0, "the red lines in force since 2023-06-01 are drawn on 2024-01-01"
    assert "2024-01-01" in page.locator("#timeline-status").inner_text()
    # diff of the first revision against the empty layer: every red line added, the area gained
    page.locator("#diff-from").select_option("0")
    page.locator("#diff-compare").click()
    page.wait_for_function("() => document.getElementById('timeline-panel').dataset.diff")
    count, area = db.execute("SELECT count(*), sum(ST_Area(geom::geography)) / 1e6 FROM redline").fetchone()
    summary = page.locator("#diff-summary").inner_text()
    assert str(count) in summary
    gained = float(page.locator("#diff-gained").inner_text().replace(",", "").split()[0])
    assert math.isclose(gained, area, rel_tol=1e-3)
    map_page.wait_idle()
    assert map_page.js("() => window.ecomapMap.queryRenderedFeatures({layers: ['revision-diff-fill']}).length") > 0
    map_page.screenshot(f"timeline-diff-{lang}")
    assert refused == [] and map_page.errors == []


def test_table_and_timeline_on_a_phone(phone_page: MapPage) -> None:
    refused = offline(phone_page)
    phone_page.open()
    page = phone_page.page
    page.locator("#table-toggle").click()
    page.wait_for_function("() => document.getElementById('table-panel').dataset.loaded")
    box = page.locator("#work-dock").bounding_box()
    canvas = page.locator(".maplibregl-canvas").bounding_box()
    assert box and canvas and canvas["height"] > 200, "the map stays visible above the dock"
    assert box["width"] <= 390
    phone_page.screenshot("phone-table")
    page.locator("#timeline-toggle").click()
    page.wait_for_function("() => document.getElementById('timeline-panel').dataset.loaded === 'redline'")
    phone_page.screenshot("phone-timeline")
    assert refused == [] and phone_page.errors == []
