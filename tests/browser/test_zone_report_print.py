"""The zone-check report printed like the map (the print tool's dialog, composed in the browser),
and the gazetteer's place labels on the offline basemap, in Chromium with every outside request
refused: the PDF's page size and words (title, legend, scale, date, sources, sample notice, the
overlap table with a river's length in m), the PNG's size and dpi, in Chinese and English, on a
desktop and a phone; 筼筜湖 labelled from its zoom on, in English after switching language."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import httpx
import psycopg
import pytest
import shapely
from PIL import Image
from playwright.sync_api import Browser
from pypdf import PdfReader
from pyproj import Geod
from shapely.geometry import box, mapping

from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, MapPage, _new_map_page, refuse_outside

MM_PER_PT = 25.4 / 72
CJK_RUN = r"[\u3400-\u9fff\u2013\uff08\uff09]+"
GEOD = Geod(ellps="WGS84")
XIAMEN = "ST_MakeEnvelope(117.9, 24.4, 118.4, 24.9, 4326)"


@pytest.fixture()
def offline_tab(browser: Browser, live_server: str, request: pytest.FixtureRequest) -> MapPage:
    """A tab (desktop unless the test is parametrized with "phone") with every other request refused."""
    phone = getattr(request, "param", "desktop") == "phone"
    options: dict[str, Any] = {"viewport": PHONE if phone else DESKTOP, "locale": "zh-CN", "accept_downloads": True}
    if phone:
        options.update(device_scale_factor=2, is_mobile=True, has_touch=True)
    context = browser.new_context(**options)
    tab = _new_map_page(context, live_server)
    tab.outside = refuse_outside(tab.page, live_server)  # type: ignore[attr-defined]
    yield tab
    context.close()


@pytest.fixture(scope="module")
def river_site(database_url: str) -> dict[str, Any]:
    """A 700 m square across the middle of Xiamen's longest river segment, with what it covers of it."""
    with psycopg.connect(database_url) as conn:
        river_id, wkb = conn.execute(
            f"SELECT id, ST_AsBinary(geom) FROM river WHERE geom @ {XIAMEN} ORDER BY ST_Length(geom) DESC LIMIT 1"
        ).fetchone()
    river = shapely.from_wkb(wkb)
    at = river.interpolate(0.5, normalized=True)
    dx, dy = 350 / (111_320 * math.cos(math.radians(at.y))), 350 / 110_574
    site = box(at.x - dx, at.y - dy, at.x + dx, at.y + dy)
    return {"site": mapping(site), "river_id": river_id, "length_m": GEOD.geometry_length(river.intersection(site))}


def run_check(tab: MapPage, site: dict[str, Any]) -> None:
    """Runs the site check for a geometry through the panel and waits for its verdict."""
    tab.js("(g) => window.ecomap.zoneCheck.checkGeometry(g)", site)  # opens the panel (on a phone, the sheet)
    tab.page.locator("#tab-zone").click()
    tab.page.locator("#zone-verdict").wait_for(timeout=30_000)
    tab.wait_for_animations()
    tab.wait_idle()


def print_report(tab: MapPage, paper: str, orientation: str, fmt: str, dpi: int) -> tuple[bytes, str]:
    page = tab.page
    page.locator("#zone-print").click()
    page.locator("#print-dialog").wait_for(state="visible")
    page.select_option("#print-paper", paper)
    page.select_option("#print-orientation", orientation)
    page.select_option("#print-format", fmt)
    page.select_option("#print-dpi", str(dpi))
    with page.expect_download(timeout=120_000) as download:
        page.locator("#print-run").click()
    page.locator("#print-preview").wait_for()
    name = download.value.suggested_filename
    assert name.startswith(f"ecomap-zone-check-{paper}-{orientation}-") and name.endswith(f".{fmt}")
    return open(download.value.path(), "rb").read(), page.locator("#print-title").input_value()


def length_text(metres: float) -> str:
    return f"{metres / 1000:,.2f} km" if metres >= 1000 else f"{metres:,.0f} m"


def test_zone_check_report_as_an_a4_pdf_in_chinese(
    offline_tab: MapPage, live_server: str, river_site: dict[str, Any]
) -> None:
    offline_tab.open("#map=12/24.6/118.1")
    run_check(offline_tab, river_site["site"])
    offline_tab.screenshot("zone-report-panel-zh")
    data, title = print_report(offline_tab, "A4", "portrait", "pdf", 150)
    assert title == "选址生态环境合规初判报告"
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    box_ = reader.pages[0].mediabox
    assert (round(float(box_.width) * MM_PER_PT), round(float(box_.height) * MM_PER_PT)) == (210, 297)
    text = reader.pages[0].extract_text()
    answer = httpx.post(
        f"{live_server}/api/zone-check/report?f=json", json={"geometry": river_site["site"]}, timeout=60
    )
    words = answer.json()
    for expected in (title, "图例", "拟选址", "比例尺 1:", "制图日期", "数据来源", "示例数据", "结论", "涉及区域"):
        assert expected in text, expected
    assert words["computed_local"] in text, "the check's local time"
    assert words["verdict_title"]["zh"] in text or "未涉及管控区" in text
    layers = {layer["id"]: layer["title"]["zh"] for layer in httpx.get(f"{live_server}/api/layers").json()["layers"]}
    for row in words["overlaps"]:
        assert layers[row["layer"]] in text, f"legend or table lacks {row['layer']}"
        assert row["relation_title"]["zh"] in text
    river = next(r for r in words["overlaps"] if r["layer"] == "river" and r["id"] == river_site["river_id"])
    assert river["amount"] == length_text(river_site["length_m"])
    assert river["amount"] in text, "the river's length inside the site, in m or km"
    image = next(iter(reader.pages[0].images))
    assert abs(image.image.width - round(210 / 25.4 * 150)) <= 1
    (ARTIFACTS / "zone-report-a4-zh.jpg").write_bytes(image.data)
    offline_tab.screenshot("zone-report-dialog-zh")
    assert offline_tab.outside == []  # type: ignore[attr-defined]
    assert offline_tab.errors == []


def test_zone_check_report_as_an_a3_png_in_english(
    offline_tab: MapPage, live_server: str, river_site: dict[str, Any]
) -> None:
    offline_tab.open("#map=12/24.6/118.1&lang=en")
    run_check(offline_tab, river_site["site"])
    data, title = print_report(offline_tab, "A3", "landscape", "png", 150)
    assert title == "Site check report"
    image = Image.open(io.BytesIO(data))
    assert image.size == (round(420 / 25.4 * 150), round(297 / 25.4 * 150))
    assert [round(v) for v in image.info["dpi"]] == [150, 150]
    (ARTIFACTS / "zone-report-a3-en.png").write_bytes(data)
    texts = offline_tab.js("window.ecomap.printTool.lastTexts()")
    joined = " ".join(texts)
    for expected in (title, "Legend", "Site", "Scale 1:", "Map date", "Data sources", "sample data", "Relation"):
        assert expected in joined, expected
    words = httpx.post(f"{live_server}/api/zone-check/report?f=json", json={"geometry": river_site["site"]}).json()
    for row in words["overlaps"]:
        assert row["relation_title"]["en"] in joined
    # The sheet's own words are English: only data names (and quoted sources) may be Chinese. The
    # names are those of the overlaps, segments and chiefs, and those quoted in the English reasons.
    names = {row["name"] for row in words["overlaps"]} | {c["name"] for c in words["chiefs"]}
    names |= {row["zone_title"]["zh"] for row in words["overlaps"] if row["zone_title"] and not row["zone_title"]["en"]}
    names |= {unit for c in words["chiefs"] for unit in c["units"]} | {c["title"] for c in words["chiefs"]}
    names |= {run for r in words["reasons"] for run in re.findall(CJK_RUN, r["message"]["en"])}
    cjk = [
        t
        for t in texts
        if not t.startswith("Data sources")
        and any(not any(run in name for name in names if name) for run in re.findall(CJK_RUN, t))
    ]
    assert not cjk, cjk
    assert offline_tab.outside == []  # type: ignore[attr-defined]
    assert offline_tab.errors == []


@pytest.mark.parametrize("offline_tab", ["phone"], indirect=True)
def test_zone_check_report_prints_on_a_phone(offline_tab: MapPage, river_site: dict[str, Any]) -> None:
    offline_tab.open("#map=12/24.6/118.1")
    run_check(offline_tab, river_site["site"])
    offline_tab.page.locator("#zone-print").scroll_into_view_if_needed()
    offline_tab.screenshot("zone-report-panel-phone-zh")
    data, _ = print_report(offline_tab, "A4", "portrait", "pdf", 150)
    reader = PdfReader(io.BytesIO(data))
    assert "涉及区域" in reader.pages[0].extract_text()
    offline_tab.screenshot("zone-report-dialog-phone-zh")
    assert offline_tab.outside == []  # type: ignore[attr-defined]
    assert offline_tab.errors == []


PLACE_LABELS_JS = """(name) => {
  const map = window.ecomapMap;
  const layers = map.getStyle().layers.filter((l) => l.id.startsWith('basemap-places-')).map((l) => l.id);
  return map.queryRenderedFeatures({layers}).filter((f) => f.properties.name_zh === name)
    .map((f) => ({layer: f.layer.id, name_en: f.properties.name_en, kind: f.properties.kind,
                  field: map.getLayoutProperty(f.layer.id, 'text-field')}));
}"""


def wait_for_label(tab: MapPage, name: str) -> list[dict[str, Any]]:
    tab.page.wait_for_function(f"() => ({PLACE_LABELS_JS})({name!r}).length > 0", timeout=30_000)
    return tab.js(PLACE_LABELS_JS, name)


def test_place_labels_from_the_gazetteer_in_both_languages(offline_tab: MapPage) -> None:
    # 筼筜湖 is a lake: labelled from zoom 11, not at zoom 10.
    offline_tab.open("#map=10.2/24.483/118.094")
    offline_tab.page.wait_for_function(
        "() => window.ecomapMap.getStyle().sources['basemap-places']?.data?.features?.length > 0", timeout=30_000
    )
    offline_tab.wait_idle()
    assert offline_tab.js(PLACE_LABELS_JS, "筼筜湖") == []
    offline_tab.open("#map=13/24.483/118.094")
    hits = wait_for_label(offline_tab, "筼筜湖")
    assert hits[0]["kind"] == "lake" and hits[0]["field"] == ["get", "name_zh"]
    offline_tab.screenshot("place-labels-zh")
    offline_tab.page.locator("#lang-toggle").click()
    offline_tab.page.wait_for_function("() => document.documentElement.lang === 'en'")
    offline_tab.wait_idle()
    hits = wait_for_label(offline_tab, "筼筜湖")
    assert hits[0]["name_en"] == "Yundang Lake"
    assert hits[0]["field"] == ["coalesce", ["get", "name_en"], ["get", "name_zh"]]
    offline_tab.screenshot("place-labels-en")
    # The labels are the service's own: glyphs and data from it, nothing from outside.
    assert offline_tab.outside == []  # type: ignore[attr-defined]
    assert offline_tab.errors == []


@pytest.mark.parametrize("offline_tab", ["phone"], indirect=True)
def test_place_labels_on_a_phone(offline_tab: MapPage) -> None:
    offline_tab.open("#map=12.5/24.47/118.11")
    wait_for_label(offline_tab, "筼筜湖")
    offline_tab.screenshot("place-labels-phone-zh")
    offline_tab.page.locator("#lang-toggle").tap()
    offline_tab.page.wait_for_function("() => document.documentElement.lang === 'en'")
    offline_tab.wait_idle()
    assert wait_for_label(offline_tab, "筼筜湖")[0]["field"][0] == "coalesce"
    offline_tab.screenshot("place-labels-phone-en")
    assert offline_tab.outside == []  # type: ignore[attr-defined]
    assert offline_tab.errors == []


@pytest.fixture(scope="module")
def line_site(database_url: str) -> dict[str, Any]:
    """A west-east line across Xiamen's largest red line, with the length of it inside (Geod)."""
    with psycopg.connect(database_url) as conn:
        fid, wkb = conn.execute(
            f"SELECT id, ST_AsBinary(geom) FROM redline WHERE geom @ {XIAMEN} ORDER BY ST_Area(geom) DESC LIMIT 1"
        ).fetchone()
    zone = shapely.from_wkb(wkb)
    inside = zone.representative_point()
    line = shapely.LineString([(inside.x - 0.02, inside.y), (inside.x + 0.02, inside.y)])
    return {"site": mapping(line), "id": fid, "length_m": GEOD.geometry_length(line.intersection(zone))}


def panel_metres(text: str) -> float:
    number, unit = text.replace(",", "").split()
    return float(number) * (1000 if unit == "km" else 1)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_line_site_shows_its_length_in_each_zone(
    offline_tab: MapPage, line_site: dict[str, Any], river_site: dict[str, Any], lang: str
) -> None:
    offline_tab.open("#map=12/24.6/118.1" + ("&lang=en" if lang == "en" else ""))
    run_check(offline_tab, line_site["site"])
    cell = offline_tab.page.locator(
        f'#zone-overlaps tr[data-layer="redline"][data-id="{line_site["id"]}"] td[data-overlap]'
    )
    assert cell.get_attribute("data-overlap") == "length"
    shown = cell.inner_text()
    assert "m²" not in shown
    # The panel rounds to 1 m (or 10 m as km with two decimals).
    assert panel_metres(shown) == pytest.approx(line_site["length_m"], abs=6)
    assert offline_tab.page.locator('#zone-overlaps td[data-overlap="area"]').count() == 0, "a line has no area"
    offline_tab.screenshot(f"zone-line-site-{lang}")
    # An area site across a river: the river's length, the zones' areas.
    run_check(offline_tab, river_site["site"])
    river = offline_tab.page.locator(
        f'#zone-overlaps tr[data-layer="river"][data-id="{river_site["river_id"]}"] td[data-overlap]'
    )
    assert river.get_attribute("data-overlap") == "length"
    assert panel_metres(river.inner_text()) == pytest.approx(river_site["length_m"], abs=6)
    assert offline_tab.errors == []
