"""The map in English: no Chinese in the interface except data names the data has only in
Chinese, scale bar and map controls in English, chiefs' posts as phrases, codes as words, map
labels from English names (or the documented fallback), a search placeholder that fits, and a
language switch that keeps the view, the open panel and the layers."""

from __future__ import annotations

import re

import psycopg
import pytest

from layers.catalog import load_catalog
from tests.browser.conftest import MapPage

pytestmark = pytest.mark.browser
CJK_RUN = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")

# Every text a person reads (text nodes, labels, titles, placeholders) of what is shown, outside
# elements marked as being in Chinese on purpose (lang="zh-CN": the language switch, the product's
# Chinese name).
CHROME_TEXTS_JS = """() => {
  const out = [];
  const shown = (el) => el && el.checkVisibility({visibilityProperty: true}) && !el.closest('[lang^="zh"]');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || ['SCRIPT', 'STYLE'].includes(el.tagName) || !node.textContent.trim()) continue;
    if (shown(el)) out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder]')) {
    if (!shown(el)) continue;
    for (const a of ['aria-label', 'title', 'placeholder']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
  }
  return out;
}"""


@pytest.fixture(scope="module")
def data_texts(database_url: str) -> str:
    """Every text value of the data (names, segments, titles, rules…), which may be Chinese only."""
    catalog = load_catalog()
    texts: list[str] = []
    with psycopg.connect(database_url) as conn:
        for layer in catalog:
            for prop in layer.properties:
                if prop.type == "string":
                    texts += [
                        r[0] for r in conn.execute(f'SELECT DISTINCT "{prop.name}"::text FROM "{layer.table}"') if r[0]
                    ]
        texts += [r[0] for r in conn.execute("SELECT name FROM chief UNION SELECT title FROM chief") if r[0]]
    return "\n".join(texts)


def untranslated(page: MapPage, data: str) -> list[str]:
    """Chinese runs in the interface that are not part of any data value."""
    found = []
    for text in page.js(CHROME_TEXTS_JS):
        found += [f"{run} (in {text[:60]!r})" for run in CJK_RUN.findall(text) if run not in data]
    return sorted(set(found))


def test_no_interface_string_is_left_in_chinese(map_page: MapPage, data_texts: str, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        chief_id, segment_id = conn.execute(
            "SELECT a.chief_id, a.feature_id FROM chief_assignment AS a WHERE a.layer = 'river'"
            " AND EXISTS (SELECT FROM river AS u WHERE u.downstream_id = a.feature_id) ORDER BY 1, 2 LIMIT 1"
        ).fetchone()
        features = conn.execute(
            "SELECT 'station', min(id) FROM station UNION ALL SELECT 'watershed', min(id) FROM watershed"
            " UNION ALL SELECT 'river', min(id) FROM river UNION ALL SELECT 'redline', min(id) FROM redline"
            " UNION ALL SELECT 'protected_area', min(id) FROM protected_area"
            " UNION ALL SELECT 'water_source_zone', min(id) FROM water_source_zone"
            " UNION ALL SELECT 'district', min(id) FROM district UNION ALL SELECT 'bay', min(id) FROM bay"
        ).fetchall()
    map_page.open("#map=11.00/24.60000/118.10000&lang=en")
    page = map_page.page
    problems = {"layers": untranslated(map_page, data_texts)}
    # Every layer's popup.
    for layer, fid in features:
        map_page.js(
            "([layer, id]) => window.ecomap.popups.showAt(window.ecomapMap.getCenter(),"
            " [{layerId: layer, id, properties: {}}], [])",
            [layer, fid],
        )
        page.locator(f'.popup-feature[data-layer="{layer}"]').wait_for()
        page.wait_for_function("() => !document.querySelector('.popup-feature').textContent.includes('…')")
        problems[f"popup {layer}"] = untranslated(map_page, data_texts)
    map_page.js("() => window.ecomap.popups.close()")
    # The site check with a result.
    page.locator("#tab-zone").click()
    map_page.js(
        "() => window.ecomap.zoneCheck.checkGeometry({type: 'Polygon', coordinates: [[[118.02, 24.74],"
        " [118.05, 24.74], [118.05, 24.77], [118.02, 24.77], [118.02, 24.74]]]}, 200)"
    )
    page.locator("#zone-verdict").wait_for()
    page.get_by_role("button", name="Pick a point").click()
    problems["site check"] = untranslated(map_page, data_texts)
    page.get_by_role("button", name="Pick a point").click()
    # The chiefs: list, one chief, an upstream trace.
    page.locator("#tab-chief").click()
    page.locator(".chief-list li").first.wait_for()
    problems["chief list"] = untranslated(map_page, data_texts)
    map_page.js(f"() => window.ecomap.chiefView.open({chief_id})")
    page.locator(f'[data-upstream="{segment_id}"]').click()
    page.locator("#upstream-total").wait_for()
    problems["chief"] = untranslated(map_page, data_texts)
    # The account panel.
    page.locator("#account-toggle").click()
    problems["account"] = untranslated(map_page, data_texts)
    map_page.screenshot("english-chief-desktop")
    assert {k: v for k, v in problems.items() if v} == {}
    assert map_page.errors == []


def test_phone_in_english_has_no_chinese_chrome(phone_page: MapPage, data_texts: str) -> None:
    phone_page.open("#lang=en")
    page = phone_page.page
    page.locator("#drawer-toggle").tap()
    phone_page.wait_for_animations()
    assert untranslated(phone_page, data_texts) == []
    phone_page.screenshot("english-phone-sheet")
    page.locator("#tab-chief").tap()
    page.locator(".chief-list li").first.wait_for()
    page.locator("#sheet-step").tap()
    phone_page.wait_for_animations()
    assert untranslated(phone_page, data_texts) == []
    phone_page.screenshot("english-phone-chiefs")


def test_scale_bar_and_map_controls_follow_the_language(map_page: MapPage) -> None:
    map_page.open("#map=13.00/24.48000/118.10000")
    page = map_page.page
    scale = page.locator(".maplibregl-ctrl-scale")
    assert re.fullmatch(r"[\d.]+\s(米|公里)", scale.inner_text())
    page.locator("#lang-toggle").click()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    map_page.next_frame()
    assert re.fullmatch(r"[\d.]+\s(m|km)", scale.inner_text()), scale.inner_text()
    assert page.locator(".maplibregl-ctrl-zoom-in").get_attribute("aria-label") == "Zoom in"
    assert re.fullmatch(r"Lon/Lat [\d.]+°E, [\d.]+°N · Zoom [\d.]+", page.locator("#coords").inner_text())
    page.locator("#lang-toggle").click()
    map_page.next_frame()
    assert re.fullmatch(r"[\d.]+\s(米|公里)", scale.inner_text())
    assert page.locator(".maplibregl-ctrl-zoom-in").get_attribute("aria-label") == "放大"


def test_chiefs_posts_are_phrases_and_codes_are_words(map_page: MapPage, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        chiefs = conn.execute("SELECT id, role, level FROM chief").fetchall()
        station = conn.execute("SELECT id, kind FROM station WHERE kind = 'water_auto' ORDER BY id LIMIT 1").fetchone()
        basin = conn.execute("SELECT id FROM watershed WHERE level = 'sub_basin' ORDER BY id LIMIT 1").fetchone()
    levels = {"city": "City", "district": "District", "town": "Town", "village": "Village"}
    map_page.open("#lang=en")
    page = map_page.page
    page.locator("#tab-chief").click()
    page.locator(".chief-list li").first.wait_for()
    for chief_id, role, level in chiefs:
        text = page.locator(f'.chief-list [data-chief="{chief_id}"]').inner_text()
        assert f"{levels[level]} {role} chief" in text, text
        assert not re.search(r"[a-z][A-Z]", text.split("·")[0]), f"run-together words in {text!r}"
    # Codes in popups are words.
    for layer, fid, row, expected in (
        ("station", station[0], "Kind", "Automatic water station"),
        ("watershed", basin[0], "Level", "Sub-basin"),
    ):
        map_page.js(
            "([layer, id]) => window.ecomap.popups.showAt(window.ecomapMap.getCenter(),"
            " [{layerId: layer, id, properties: {}}], [])",
            [layer, fid],
        )
        cell = page.locator(f'.popup-feature[data-layer="{layer}"] tr', has=page.locator(f'th:text-is("{row}")'))
        cell.wait_for()
        assert cell.locator("td").inner_text() == expected
    map_page.screenshot("english-popup-codes")


def test_labels_in_english_use_english_names_or_the_documented_fallback(map_page: MapPage) -> None:
    map_page.open("#lang=en")
    fields = map_page.js(
        "() => Object.fromEntries(window.ecomapMap.getStyle().layers.filter((l) => l.type === 'symbol'"
        " && l.metadata?.['ecomap:layer']).map((l) => [l.metadata['ecomap:layer'], l.layout['text-field']]))"
    )
    catalog = load_catalog()
    for layer_id, field in fields.items():
        layer = catalog.get(layer_id)
        text = repr(field)
        if layer.get_property("name_en") is not None:
            assert "name_en" in text, layer_id
        else:
            fallback = layer.style.label.property_en
            assert fallback and fallback in text, f"{layer_id} has no English label"
            for title in (layer.get_property(fallback).value_titles or {}).values():
                assert title.en in field, (layer_id, title.en)
    assert fields["station"] == ["to-string", ["get", "code"]]
    # Only English (or codes) can come out of the fallbacks.
    match = fields["water_source_zone"]
    outputs = match[3:-1:2] if match[0] == "match" else []  # ["match", input, code, title, ..., fallback]
    assert outputs and not [o for o in outputs if CJK_RUN.search(o)]
    map_page.js("() => window.ecomapMap.jumpTo({center: [118.06, 24.78], zoom: 14})")
    map_page.wait_idle()
    map_page.screenshot("english-labels-z14")


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_search_placeholder_fits(request: pytest.FixtureRequest, device: str, lang: str) -> None:
    tab: MapPage = request.getfixturevalue("map_page" if device == "desktop" else "phone_page")
    tab.open(f"#lang={lang}" if lang == "en" else "")
    room, needed = tab.js(
        """() => {
          const input = document.getElementById('search-input'), style = getComputedStyle(input);
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
          const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
          return [room, ctx.measureText(input.placeholder).width];
        }"""
    )
    assert needed <= room, f"the placeholder needs {needed:.0f} px, the box has {room:.0f}"


def test_switching_the_language_keeps_the_view_panel_and_layers(map_page: MapPage, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        chief_id = conn.execute("SELECT min(id) FROM chief WHERE level = 'town'").fetchone()[0]
    map_page.open("#map=12.30/24.55000/118.05000&layers=redline,river,station")
    page = map_page.page
    page.locator("#tab-chief").click()
    map_page.js(f"() => window.ecomap.chiefView.open({chief_id})")
    page.locator("#chief-detail").wait_for()
    map_page.wait_idle()
    map_page.js("() => window.ecomap.control.setVisible('station', false)")

    def state() -> dict:
        return map_page.js(
            """() => ({center: window.ecomapMap.getCenter().toArray(), zoom: window.ecomapMap.getZoom(),
                   layers: window.ecomap.control.visibleIds(),
                   tab: document.querySelector('[role=tab][aria-selected=true]').dataset.tab,
                   chief: document.getElementById('chief-detail')?.dataset.chief ?? null,
                   highlighted: window.ecomap.highlighter.get('chief').length})"""
        )

    before = state()
    assert before["chief"] == str(chief_id) and before["highlighted"] > 0 and "station" not in before["layers"]
    page.locator("#lang-toggle").click()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    after = state()
    assert after["center"] == pytest.approx(before["center"], abs=1e-9) and after["zoom"] == before["zoom"]
    assert {k: v for k, v in after.items() if k not in ("center", "zoom")} == {
        k: v for k, v in before.items() if k not in ("center", "zoom")
    }
    assert "chief" in page.locator("#chief-detail h3").inner_text()
    assert "lang=en" in page.url and f"chief={chief_id}" in page.url
    # The link keeps all of it: a reload comes back the same, in English.
    page.reload()
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#chief-detail").wait_for()
    map_page.wait_idle()
    again = state()
    assert again["layers"] == before["layers"] and again["chief"] == str(chief_id) and again["tab"] == "chief"
    assert page.locator("#tab-chief").inner_text() == "Chiefs"
    map_page.screenshot("english-after-switch")
