"""The API documentation pages work offline: /docs (Swagger UI) and /redoc (ReDoc) render every
operation in Chromium while every request to another host than the service is refused."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.browser

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture()
def offline_page(browser: Browser, live_server: str) -> Iterator[tuple[Page, list[str]]]:
    """A tab where any request leaving 127.0.0.1 is aborted (and recorded)."""
    context = browser.new_context()
    refused: list[str] = []

    def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page, refused
    context.close()


def _operations(live_server: str) -> list[dict]:
    document = httpx.get(f"{live_server}/openapi.json", timeout=30).json()
    return [operation for item in document["paths"].values() for operation in item.values()]


def test_swagger_ui_renders_every_operation_offline(offline_page: tuple[Page, list[str]], live_server: str) -> None:
    page, refused = offline_page
    operations = _operations(live_server)
    response = page.goto(f"{live_server}/docs")
    assert response is not None and response.status == 200, response and response.text()  # 503: frontend unbuilt
    page.wait_for_selector(".opblock", state="attached")
    rendered = page.locator(".opblock").count()
    assert rendered == len(operations)
    summaries = page.locator(".opblock-summary-description").all_inner_texts()
    assert "Mapbox Vector Tile of one or more layers" in summaries
    assert page.locator(".opblock-summary-path", has_text="/ogc/collections/redline/items").count() == 1
    assert refused == []  # nothing was even attempted outside (no CDN, no online validator badge)


def test_redoc_renders_every_operation_offline(offline_page: tuple[Page, list[str]], live_server: str) -> None:
    page, refused = offline_page
    operations = _operations(live_server)
    response = page.goto(f"{live_server}/redoc")
    assert response is not None and response.status == 200, response and response.text()  # 503: frontend unbuilt
    page.wait_for_selector("[data-section-id^='operation/']", state="attached")
    sections = page.locator("[data-section-id^='operation/']").count()
    assert sections == len(operations)
    assert page.locator("h2", has_text="Mapbox Vector Tile of one or more layers").count() >= 1
    # No CDN, no web fonts; ReDoc 2 always tries its decorative "by Redocly" logo (hidden when it fails).
    assert set(refused) <= {REDOCLY_LOGO}, refused
