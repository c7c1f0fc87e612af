"""Sign-in on the map, in real Chromium: password and single sign-on, what each user sees, phones.

The service runs with a catalog where ``water_source_zone`` and ``station`` are internal
(signed-in staff only; the chief tool reads stations, so anonymous visitors lose it too), and
single sign-on configured against the real test OpenID provider (tests/oidc), which signs in
``sso-hezhang`` with the provider role ``hezhang`` (mapped to chief) and a chief record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser

from gis_service.access import admin
from gis_service.access.audit import AuditContext
from layers.catalog import CATALOG_DIR
from tests.browser.conftest import DESKTOP, PHONE, MapPage, _new_map_page
from tests.conftest import ROOT, free_port, run_async, wait_for_http
from tests.oidc.harness import start_provider

pytestmark = pytest.mark.browser
INTERNAL = "water_source_zone"
INTERNAL_TITLE = "饮用水水源保护区"
ALSO_INTERNAL = "station"


@pytest.fixture(scope="module")
def chief_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT min(id) FROM chief").fetchone()[0]


@pytest.fixture(scope="module")
def chief_account(database_url: str, chief_id: int) -> tuple[str, str]:
    login, password = f"chief-{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.add_user(conn, AuditContext("test-suite", "cli"), login, "chief", password, chief_id)

    run_async(create())
    return login, password


@pytest.fixture(scope="module")
def signin_server(database_url: str, chief_id: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with an internal layer and single sign-on against the test provider; its base URL."""
    catalog = tmp_path_factory.mktemp("signin-catalog")
    for path in CATALOG_DIR.glob("*.yaml"):
        shutil.copy(path, catalog / path.name)
    for layer in (INTERNAL, ALSO_INTERNAL):
        internal = catalog / f"{layer}.yaml"
        internal.write_text(internal.read_text(encoding="utf-8") + "access: {class: internal}\n", encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    users = {"sso-hezhang": {"role": "hezhang", "name": "SSO chief", "chief_id": chief_id}}
    with start_provider(free_port(), [f"{base}/api/auth/sso/callback"], users) as provider:
        log = tmp_path_factory.mktemp("signin-live") / "server.log"
        env = {
            **os.environ,
            **provider.env(),
            "ECOMAP_OIDC__ROLE_MAP": json.dumps({"hezhang": "chief"}),
            "ECOMAP_OIDC__TIMEOUT_S": "30",  # a loaded test machine
            "ECOMAP_DATABASE_URL": database_url,
            "ECOMAP_CATALOG_DIR": str(catalog),
        }
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gis_service.cli", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_http(base + "/healthz")
        except RuntimeError:
            process.kill()
            raise RuntimeError(f"the live server did not start:\n{log.read_text()}") from None
        yield base
        process.terminate()
        process.wait(timeout=10)


def _page(browser: Browser, base: str, **context: object) -> Iterator[MapPage]:
    ctx = browser.new_context(locale="zh-CN", **context)
    yield _new_map_page(ctx, base)
    ctx.close()


@pytest.fixture()
def desktop(browser: Browser, signin_server: str) -> Iterator[MapPage]:
    yield from _page(browser, signin_server, viewport=DESKTOP)


@pytest.fixture()
def phone(browser: Browser, signin_server: str) -> Iterator[MapPage]:
    yield from _page(browser, signin_server, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def wait_ready(page: MapPage) -> None:
    page.page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    page.wait_idle()


def me(page: MapPage) -> dict:
    return page.js("() => fetch('api/auth/me').then((r) => r.json())")


def internal_layer_shown(page: MapPage) -> dict:
    """Whether the internal layers are in the catalog, the style and the layer panel; whether the chief tool is."""
    return page.js(
        """([id, other]) => ({
          catalog: window.ecomap.catalog.has(id) && window.ecomap.catalog.has(other),
          style: window.ecomapMap.getStyle().layers.some((l) => l['source-layer'] === id),
          panel: document.getElementById('panel-layers').textContent,
          chiefTool: !document.getElementById('tab-chief').hidden,
        })""",
        [INTERNAL, ALSO_INTERNAL],
    )


def assert_on_jurisdiction(page: MapPage, chief: int) -> None:
    """The chief panel shows this chief and the map is framed on their jurisdiction."""
    record = page.js("(id) => fetch(`api/chiefs/${id}`).then((r) => r.json())", chief)  # as the signed-in user
    page.page.wait_for_function(
        "([id, name]) => location.hash.includes(`chief=${id}`)"
        " && document.getElementById('panel-chief').textContent.includes(name)",
        arg=[chief, record["chief"]["name"]],
    )
    page.wait_idle()
    west, south, east, north = record["bbox"]
    lon, lat = page.js("() => window.ecomapMap.getCenter().toArray()")
    assert west <= lon <= east and south <= lat <= north, (lon, lat, record["bbox"])
    assert not page.js("() => document.getElementById('panel-chief').hidden")


def console_errors(page: MapPage) -> list[str]:
    """The page's console errors but Chromium's note of the 401 that withdrew the chief tool."""
    return [e for e in page.errors if not ("401" in e and "/api/chiefs?level=city" in e)]


def test_anonymous_sees_no_internal_layer_and_the_sign_in_choices(desktop: MapPage) -> None:
    desktop.open()
    desktop.page.wait_for_function("() => document.getElementById('tab-chief').hidden")  # the API said 401
    shown = internal_layer_shown(desktop)
    assert not shown["catalog"] and not shown["style"] and INTERNAL_TITLE not in shown["panel"]
    assert not shown["chiefTool"]
    assert "自然保护地" in shown["panel"]  # the public layers are there
    assert desktop.js("() => document.getElementById('account-toggle').dataset.state") == "anonymous"
    desktop.page.click("#account-toggle")
    assert desktop.page.is_visible("#signin-form") and desktop.page.is_visible("#signin-sso")
    assert desktop.page.inner_text("#signin-sso") == "使用统一身份认证登录（SSO）"
    desktop.screenshot("signin-anonymous")
    assert not console_errors(desktop), desktop.errors


def test_a_wrong_password_is_said_and_nothing_changes(desktop: MapPage, chief_account: tuple[str, str]) -> None:
    desktop.open()
    desktop.page.click("#account-toggle")
    desktop.page.fill("#signin-username", chief_account[0])
    desktop.page.fill("#signin-password", "not-the-password")
    desktop.page.click("#signin-form button[type=submit]")
    desktop.page.wait_for_selector("#signin-error")
    assert desktop.page.inner_text("#signin-error") == "用户名或密码错误"
    assert me(desktop)["kind"] == "anonymous"


def test_password_sign_in_as_a_chief_lands_on_the_jurisdiction(
    desktop: MapPage, chief_account: tuple[str, str], chief_id: int
) -> None:
    login, password = chief_account
    desktop.open()
    desktop.page.click("#account-toggle")
    desktop.page.fill("#signin-username", login)
    desktop.page.fill("#signin-password", password)
    with desktop.page.expect_navigation():
        desktop.page.click("#signin-form button[type=submit]")
    wait_ready(desktop)
    assert_on_jurisdiction(desktop, chief_id)
    assert (me(desktop)["role"], me(desktop)["chief_id"], me(desktop)["method"]) == ("chief", chief_id, "cookie")
    label = desktop.page.inner_text("#account-toggle")
    assert login in label and "河湖长" in label
    shown = internal_layer_shown(desktop)
    assert shown["catalog"] and shown["style"] and INTERNAL_TITLE in shown["panel"]  # staff read internal layers
    assert shown["chiefTool"]
    desktop.page.click("#account-toggle")
    assert desktop.page.inner_text("#account-role") == "河湖长"
    desktop.screenshot("signin-chief-jurisdiction")
    # Signing out: anonymous again, the internal layer gone.
    with desktop.page.expect_navigation():
        desktop.page.click("#signout")
    wait_ready(desktop)
    assert me(desktop)["kind"] == "anonymous"
    desktop.page.wait_for_function("() => document.getElementById('tab-chief').hidden")
    assert not internal_layer_shown(desktop)["catalog"]
    assert desktop.js("() => document.getElementById('account-toggle').dataset.state") == "anonymous"
    assert not console_errors(desktop), desktop.errors


def test_sso_round_trip_signs_in_with_the_mapped_role(desktop: MapPage, signin_server: str, chief_id: int) -> None:
    desktop.open()
    desktop.page.click("#account-toggle")
    desktop.page.click("#signin-sso")
    # The provider's own pages: sign in (any password), then consent.
    desktop.page.wait_for_selector("input[name=login]")
    assert desktop.page.url.startswith("http://127.0.0.1:") and not desktop.page.url.startswith(signin_server)
    desktop.page.fill("input[name=login]", "sso-hezhang")
    desktop.page.fill("input[name=password]", "any password")
    desktop.page.click("button[type=submit]")
    desktop.page.wait_for_selector("button:has-text('Continue')")
    with desktop.page.expect_navigation(url=lambda url: url.startswith(signin_server)):
        desktop.page.click("button:has-text('Continue')")
    wait_ready(desktop)
    info = me(desktop)
    assert (info["kind"], info["role"], info["chief_id"], info["method"]) == ("user", "chief", chief_id, "cookie")
    assert info["name"] == "sso-hezhang"
    assert_on_jurisdiction(desktop, chief_id)
    assert "sso-hezhang" in desktop.page.inner_text("#account-toggle")
    desktop.screenshot("signin-sso-chief")


def test_sign_in_controls_are_touch_sized_on_phones(phone: MapPage) -> None:
    phone.open()
    boxes = [phone.page.locator("#account-toggle").bounding_box()]
    phone.page.click("#account-toggle")
    for selector in ("#signin-username", "#signin-password", "#signin-form button[type=submit]", "#signin-sso"):
        boxes.append(phone.page.locator(selector).bounding_box())
    for box in boxes:
        assert box and box["height"] >= 44 and box["width"] >= 44, boxes
    panel = phone.page.locator("#account-panel").bounding_box()
    assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= PHONE["width"]
    phone.screenshot("signin-phone")
