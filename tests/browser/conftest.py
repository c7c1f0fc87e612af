"""Browser fixtures: the built map UI in a headless Debian Chromium, driven by Playwright.

The browser is the system one (/usr/bin/chromium, Debian package ``chromium``); Playwright never
downloads its own. The page talks to the real service of ``live_server`` (tests/conftest.py),
which serves ``frontend/dist``. Screenshots go to ``test-artifacts/`` at the repository root.
Nothing here skips: a missing browser or an unbuilt frontend fails with what to do about it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("ECOMAP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Resolves when the map has rendered a frame with every tile loaded and nothing moving.
WAIT_IDLE_JS = """() => new Promise((resolve) => {
  const map = window.ecomapMap;
  map.once('idle', () => resolve(true));
  map.triggerRepaint();
})"""


@dataclass
class MapPage:
    """One browser tab on the map UI, with the console errors it logged."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, hash_: str = "") -> MapPage:
        """Loads the UI (optionally at a ``#...`` hash) and waits for the first complete render."""
        self.page.goto(f"{self.base_url}/{hash_}")
        self.page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
        self.wait_idle()
        return self

    def wait_idle(self, timeout_ms: int = 30_000) -> None:
        """Waits until the map settles (tiles loaded, no animation)."""
        self.page.wait_for_function("() => window.ecomapMap && !window.ecomapMap.isMoving()", timeout=timeout_ms)
        self.page.evaluate(WAIT_IDLE_JS)

    def next_frame(self) -> None:
        """Waits until the page has rendered the next two frames (what a scroll or a style
        change just set up is painted then)."""
        self.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def wait_for_animations(self, timeout_ms: int = 30_000) -> None:
        """Waits until no CSS transition or animation runs (a drawer sliding in, a fade)."""
        self.page.wait_for_function(
            "() => document.getAnimations().every((a) => a.playState !== 'running')", timeout=timeout_ms
        )

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def canvas_point(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of a map canvas pixel."""
        box = self.page.locator(".maplibregl-canvas").bounding_box()
        assert box, "the map canvas is not on the page"
        return box["x"] + x, box["y"] + y

    def find_feature_pixel(self, style_layer: str, clear_of: list[str] | None = None) -> dict[str, Any] | None:
        """A canvas pixel showing a feature of ``style_layer`` and none of ``clear_of`` on top."""
        return self.js(
            """([layer, clearOf]) => {
              const map = window.ecomapMap;
              const canvas = map.getCanvas();
              const w = canvas.clientWidth, h = canvas.clientHeight;
              const others = clearOf.filter((id) => map.getLayer(id));
              for (let step = 48; step >= 12; step /= 2) {
                for (let y = step; y < h - step; y += step) {
                  for (let x = step; x < w - step; x += step) {
                    const hits = map.queryRenderedFeatures([x, y], {layers: [layer]});
                    if (!hits.length) continue;
                    const box = [[x - 8, y - 8], [x + 8, y + 8]];
                    if (others.length && map.queryRenderedFeatures(box, {layers: others}).length) continue;
                    return {x, y, id: hits[0].id, properties: hits[0].properties};
                  }
                }
              }
              return null;
            }""",
            [style_layer, clear_of or []],
        )


def refuse_outside(page: Page, base_url: str) -> list[str]:
    """Lets `page` reach only the service at `base_url` (an intranet without internet): every
    other request is refused. Returns the list the refused URLs are added to."""
    outside: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    return outside


def _require_chromium() -> None:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install the Debian package (`apt-get install chromium`) "
            "or point ECOMAP_CHROMIUM at a Chromium binary. Playwright's own browser download is not used.",
            pytrace=False,
        )


def _require_frontend_build() -> None:
    index = ROOT / "frontend" / "dist" / "index.html"
    if not index.is_file():
        pytest.fail(
            f"the map UI is not built ({index} is missing): run `cd frontend && npm ci && npm run build`",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _forget_old_failure_screenshots() -> None:
    """test-artifacts/ shows this run: failure screenshots of earlier runs go."""
    for old in ARTIFACTS.glob("FAILED-*.png"):
        old.unlink()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """The system Chromium, headless."""
    _require_chromium()
    _require_frontend_build()
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _new_map_page(context: BrowserContext, base_url: str) -> MapPage:
    page = context.new_page()
    page.set_default_timeout(20_000)
    map_page = MapPage(page=page, base_url=base_url)

    def on_console(message: Any) -> None:
        if message.type == "error":
            url = (message.location or {}).get("url")
            map_page.errors.append(f"{message.text} [{url}]" if url else message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: map_page.errors.append(f"uncaught: {exc}"))
    page.on("request", lambda request: map_page.requests.append(request.url))
    return map_page


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:80]


@pytest.fixture()
def map_page(browser: Browser, live_server: str, request: pytest.FixtureRequest) -> Iterator[MapPage]:
    """A desktop-sized tab on the live service; screenshot saved when the test fails."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    map_page = _new_map_page(context, live_server)
    yield map_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        map_page.screenshot(f"FAILED-{_slug(request.node.nodeid)}")
    context.close()


@pytest.fixture()
def phone_page(browser: Browser, live_server: str, request: pytest.FixtureRequest) -> Iterator[MapPage]:
    """A phone-sized touch tab (390x844) on the live service."""
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    map_page = _new_map_page(context, live_server)
    yield map_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        map_page.screenshot(f"FAILED-{_slug(request.node.nodeid)}")
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keeps each phase's report on the item so fixtures can screenshot failures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
