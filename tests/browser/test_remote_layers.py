"""A remote layer (a partner's copy, gis_service/federation) on the map: in the layer panel and
in popups with its source and age, in both languages.

The copy is written into the session database as a refresh would leave it (rows in
``remote_feature``, the state in ``remote_layer_state``); the refresh itself is tested against a
partner instance in tests/test_federation.py. The live server here has the layer declared and
its refresher off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DESKTOP, MapPage, _new_map_page
from tests.conftest import serving

LAYER = "zz_browser"
SQUARE = (118.06, 24.53)
DECLARATION = {
    "id": LAYER,
    "title": {"zh": "漳州生态保护红线", "en": "Zhangzhou red lines"},
    "partner": {"zh": "漳州市", "en": "Zhangzhou"},
    "url": "http://127.0.0.1:9/ogc/collections/redline/items",
    "geometry_type": "MultiPolygon",
    "access": {"class": "public"},  # shared with the public too (the default is internal: staff only)
    "properties": [
        {"name": "code", "type": "string", "title": {"zh": "编号", "en": "Code"}, "required": True},
        {"name": "name", "type": "string", "title": {"zh": "名称", "en": "Name"}, "required": True},
    ],
}


@pytest.fixture(scope="module")
def remote_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("remote-layers")
    (directory / f"{LAYER}.yaml").write_text(json.dumps(DECLARATION, ensure_ascii=False), encoding="utf-8")
    x, y = SQUARE
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO remote_feature (layer, id, remote_id, geom, props, source_url)"
            " VALUES (%s, 1, '1', ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)), %s, %s)",
            [LAYER, x, y, x + 0.02, y + 0.02, json.dumps({"code": "ZZ-001", "name": "漳州红线1"}), DECLARATION["url"]],
        )
        db.execute(
            "INSERT INTO remote_layer_state (layer, source_url, feature_count, checked_at, fetched_at, changed_at)"
            " VALUES (%s, %s, 1, '2026-12-03T09:05:00Z', '2026-12-03T09:05:00Z', '2026-12-03T09:05:00Z')",
            [LAYER, DECLARATION["url"]],
        )
        try:
            log = tmp_path_factory.mktemp("remote-live") / "server.log"
            env = {"ECOMAP_FEDERATION__DIR": str(directory), "ECOMAP_FEDERATION__REFRESH_ENABLED": "false"}
            with serving(database_url, log, **env) as base:
                yield base
        finally:
            db.execute("DELETE FROM remote_feature WHERE layer = %s", [LAYER])
            db.execute("DELETE FROM remote_layer_state WHERE layer = %s", [LAYER])
            db.execute("DELETE FROM layer_change WHERE layer = %s", [LAYER])
            db.execute("DELETE FROM layer_state WHERE layer = %s", [LAYER])


@pytest.fixture()
def remote_page(browser: Browser, remote_server: str) -> Iterator[MapPage]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    yield _new_map_page(context, remote_server)
    context.close()


def test_a_remote_layer_shows_its_partner_and_age_in_the_panel_and_popup(remote_page: MapPage) -> None:
    remote_page.open()
    page = remote_page.page
    item = page.locator(f'.layer-item[data-layer="{LAYER}"]')
    expect(item).to_contain_text("漳州生态保护红线")
    expect(item.locator(".remote-source")).to_contain_text("来源：漳州市 · 更新于 2026年12月3日 17:05")
    expect(item.locator(".badge-remote")).to_have_text("共享")
    x, y = SQUARE
    remote_page.js(f"() => window.ecomapMap.jumpTo({{center: [{x + 0.01}, {y + 0.01}], zoom: 14}})")
    remote_page.wait_idle()
    hit = remote_page.find_feature_pixel(f"{LAYER}-fill")
    assert hit and hit["properties"]["name"] == "漳州红线1"
    page.mouse.click(*remote_page.canvas_point(hit["x"], hit["y"]))
    section = page.locator(f'.popup-feature[data-layer="{LAYER}"]')
    expect(section).to_contain_text("漳州红线1")
    expect(section).to_contain_text("来源：漳州市 · 更新于")
    remote_page.screenshot("remote-layer-zh")
    page.locator("#lang-toggle").click()
    expect(item.locator(".remote-source")).to_contain_text("Source: Zhangzhou · updated 3 Dec 2026, 17:05")
    assert remote_page.errors == [], remote_page.errors


def test_the_remote_layer_is_in_the_style_and_tilejson_of_the_service(remote_server: str) -> None:
    import httpx

    style = httpx.get(f"{remote_server}/styles/default.json", timeout=30).json()
    assert f"{LAYER}-fill" in [layer["id"] for layer in style["layers"]]
    tilejson = httpx.get(f"{remote_server}/tiles/{LAYER}.json", timeout=30).json()
    assert tilejson["vector_layers"][0]["id"] == LAYER
