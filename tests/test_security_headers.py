"""Security headers (gis_service/access/headers.py) on JSON and HTML responses; the CSP of each
HTML page allows what the page runs (the browser tests load the pages under it: tests/browser)."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.settings import LimitsSettings
from tests.conftest import make_settings

SITE = {"type": "Point", "coordinates": [118.10, 24.48]}


def directives(response) -> dict[str, set[str]]:
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = set(values)
    return parsed


class InlineScripts(HTMLParser):
    """The text of a page's <script> elements without src (parsed, not by the service's regex)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "script" and not dict(attrs).get("src"):
            self._open = []

    def handle_data(self, data) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append("".join(self._open))
            self._open = None


def assert_common(response, hsts: bool = False) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert ("Strict-Transport-Security" in response.headers) is hsts


def test_json_responses_carry_the_headers_without_a_csp(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/api/layers"), client.get("/api/layers/nope")):
        assert response.headers["content-type"].startswith("application/json")
        assert_common(response)
        assert "Content-Security-Policy" not in response.headers


def test_every_html_page_has_a_csp_forbidding_framing(client: TestClient) -> None:
    pages = {
        "/": client.get("/"),
        "/docs": client.get("/docs"),
        "/redoc": client.get("/redoc"),
        "/ogc": client.get("/ogc/collections", params={"f": "html"}),
        "report": client.post("/api/zone-check/report", json=SITE),
    }
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.text[:300])
        assert response.headers["content-type"].startswith("text/html"), name
        assert_common(response)
        csp = directives(response)
        assert csp["default-src"] == {"'self'"} and csp["frame-ancestors"] == {"'none'"}, name
        assert csp["object-src"] == {"'none'"}, name
    assert directives(pages["/"])["script-src"] == {"'self'"}  # the map: script files only
    assert directives(pages["/ogc"])["script-src"] == {"'self'"}
    assert "'unsafe-inline'" not in directives(pages["/docs"])["script-src"]
    assert "data:" in directives(pages["report"])["script-src"]  # Leaflet inlined as a data: URL


def test_swagger_ui_inline_script_is_allowed_by_its_hash(client: TestClient) -> None:
    page = client.get("/docs")
    parser = InlineScripts()
    parser.feed(page.text)
    assert parser.scripts, "Swagger UI's page has its inline start-up script"
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in parser.scripts
    }
    assert directives(page)["script-src"] == {"'self'"} | expected


def test_hsts_over_https_or_when_configured(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    with TestClient(app) as plain:
        assert_common(plain.get("/healthz"), hsts=False)
    with TestClient(app, base_url="https://testserver") as tls:  # the scheme a trusted proxy reports
        response = tls.get("/healthz")
        assert_common(response, hsts=True)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    forced = create_app(make_settings(database_url, limits=LimitsSettings(hsts=True, hsts_max_age_s=600)))
    with TestClient(forced) as plain:
        response = plain.get("/healthz")
        assert response.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"


def test_a_head_request_gets_the_same_headers(client: TestClient) -> None:
    response = client.head("/docs")
    assert response.status_code == 200 and response.content == b""
    assert_common(response)
    assert response.headers["Content-Security-Policy"] == client.get("/docs").headers["Content-Security-Policy"]


def test_tiles_from_the_fast_path_carry_the_headers(client: TestClient) -> None:
    tile = client.get("/tiles/redline/12/3391/1760.pbf")  # no query string: the fast path answers
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert_common(tile)
    assert "Content-Security-Policy" not in tile.headers
