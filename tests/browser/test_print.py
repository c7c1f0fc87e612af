"""Printing the current view in Chromium, offline: the dialog makes a PDF (A4) and a PNG (A3) of
the right paper size holding the title, the legend of the visible layers, the date and the
sample-data notice, in Chinese and in English. The sheets are saved to test-artifacts/."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser
from pypdf import PdfReader

from tests.browser.conftest import ARTIFACTS, DESKTOP, MapPage, _new_map_page, refuse_outside

MM_PER_PT = 25.4 / 72
PAPER_MM = {"A4": (210, 297), "A3": (297, 420)}


@pytest.fixture()
def offline_map(browser: Browser, live_server: str) -> MapPage:
    """A desktop tab on the service with every other request refused (an intranet)."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    map_page = _new_map_page(context, live_server)
    map_page.outside = refuse_outside(map_page.page, live_server)  # type: ignore[attr-defined]
    yield map_page
    context.close()


def print_from_dialog(map_page: MapPage, title: str, paper: str, orientation: str, fmt: str, dpi: int) -> bytes:
    page = map_page.page
    page.locator("#print-open").click()
    page.locator("#print-dialog").wait_for(state="visible")
    page.fill("#print-title", title)
    page.select_option("#print-paper", paper)
    page.select_option("#print-orientation", orientation)
    page.select_option("#print-format", fmt)
    page.select_option("#print-dpi", str(dpi))
    with page.expect_download(timeout=120_000) as download:
        page.locator("#print-run").click()
    page.locator("#print-preview").wait_for()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(f".{fmt}")
    assert f"-{paper}-{orientation}-" in download.value.suggested_filename
    return open(path, "rb").read()


def visible_layer_titles(live_server: str, lang: str) -> list[str]:
    layers = httpx.get(f"{live_server}/api/layers", timeout=30).json()["layers"]
    return [layer["title"][lang] for layer in layers]


def test_print_an_a4_pdf_in_chinese(offline_map: MapPage, live_server: str) -> None:
    offline_map.open("#map=11/24.55/118.1")
    title = "筼筜湖周边生态红线图"
    data = print_from_dialog(offline_map, title, "A4", "landscape", "pdf", 150)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    width_mm, height_mm = float(box.width) * MM_PER_PT, float(box.height) * MM_PER_PT
    assert (round(width_mm), round(height_mm)) == (297, 210)
    text = reader.pages[0].extract_text()
    assert title in text
    assert "图例" in text
    for layer_title in visible_layer_titles(live_server, "zh"):
        assert layer_title in text, f"the legend lacks {layer_title}"
    assert "比例尺 1:" in text
    assert "制图日期" in text and "数据来源" in text
    assert "示例数据" in text
    # The embedded sheet is at the chosen resolution.
    image = next(iter(reader.pages[0].images))
    assert abs(image.image.width - round(297 / 25.4 * 150)) <= 1
    (ARTIFACTS / "print-a4-zh.jpg").write_bytes(image.data)
    offline_map.screenshot("print-dialog-zh")
    assert offline_map.outside == []  # type: ignore[attr-defined]
    assert offline_map.errors == []


def test_print_an_a3_png_in_english(offline_map: MapPage, live_server: str) -> None:
    offline_map.open("#map=10.5/24.6/118.1&lang=en")
    data = print_from_dialog(offline_map, "Red lines around Xiamen", "A3", "portrait", "png", 150)
    image = Image.open(io.BytesIO(data))
    width_mm, height_mm = PAPER_MM["A3"]
    assert image.size == (round(width_mm / 25.4 * 150), round(height_mm / 25.4 * 150))
    assert [round(v) for v in image.info["dpi"]] == [150, 150]
    (ARTIFACTS / "print-a3-en.png").write_bytes(data)
    # The sheet's words, as the page lists them (the PNG has pixels only): English throughout.
    texts = offline_map.js("window.ecomap.printTool.lastTexts()")
    assert texts, "the print lists the texts it drew"
    joined = " ".join(texts)
    assert "Red lines around Xiamen" in joined and "Legend" in joined and "Scale 1:" in joined
    for layer_title in visible_layer_titles(live_server, "en"):
        assert layer_title in joined
    assert "sample data" in joined
    # (the data sources are quoted as their providers wrote them)
    chrome = [text for text in texts if not text.startswith("Data sources")]
    assert not any("\u4e00" <= ch <= "\u9fff" for text in chrome for ch in text), chrome
    assert offline_map.outside == []  # type: ignore[attr-defined]
    assert offline_map.errors == []
