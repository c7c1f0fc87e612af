"""Security headers on every response the middleware stack answers, from one ASGI middleware.

Every response: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
strict-origin-when-cross-origin``; ``Strict-Transport-Security`` when the request came over https
(the scheme, which uvicorn takes from a trusted proxy's ``X-Forwarded-Proto`` with
``--proxy-headers --forwarded-allow-ips``) or when ``ECOMAP_LIMITS__HSTS`` says so.

HTML pages get a ``Content-Security-Policy`` (``default-src 'self'``, ``frame-ancestors 'none'``)
with what each page needs, unless the route set its own:

- the map (the frontend build): its scripts are files (``script-src 'self'``); MapLibre runs its
  worker from a blob: URL and draws images from blob:/data:; the basemaps (OpenStreetMap, Gaode,
  Tianditu) are fetched from their hosts;
- ``/docs``: FastAPI's Swagger UI page starts Swagger UI with one inline script; the page is built
  from constants (title, OpenAPI URL), nothing from the request, so its inline scripts are allowed
  by their sha256 hashes, computed from the page;
- ``/redoc``: ReDoc runs its search worker from blob:;
- the folium pages under ``/api`` (the zone-check report, a chief's map): self-contained printable
  pages with Leaflet inlined as data: URLs and the map drawn by a script folium generates per
  request (the data JSON-encoded into it) plus an ``onclick`` print button, so they need
  ``script-src 'unsafe-inline' data:``; their tiles come from OpenStreetMap.

Styles: MapLibre, ReDoc (styled-components) and Leaflet insert ``<style>`` elements and style
attributes at run time, so every page has ``style-src 'self' 'unsafe-inline'`` (styles cannot run
code; scripts stay restricted).

The tile fast path (gis_service/fastpath.py) answers plain tile requests in front of the
middleware stack; it adds the same headers through :func:`response_headers`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from gis_service.settings import LimitsSettings

BASEMAP_HOSTS = "https://tile.openstreetmap.org https://*.is.autonavi.com https://*.tianditu.gov.cn"
OSM_HOSTS = "https://tile.openstreetmap.org https://*.tile.openstreetmap.org"
BASE_POLICY = {
    "default-src": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",  # see the module docstring
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
}
PAGE_POLICIES: list[tuple[str, dict[str, str], bool]] = [
    # (path prefix, directives replacing the base ones, allow the page's inline scripts by hash)
    ("/docs", {}, True),
    ("/redoc", {}, False),
    ("/ogc", {}, False),
    (
        "/api/",
        {
            "script-src": "'self' 'unsafe-inline' data:",  # folium pages, see the module docstring
            "style-src": "'self' 'unsafe-inline' data:",  # Leaflet's stylesheet as a data: URL
            "img-src": f"'self' data: blob: {OSM_HOSTS}",
        },
        False,
    ),
    (
        "/",
        {"img-src": f"'self' data: blob: {BASEMAP_HOSTS}", "connect-src": f"'self' {BASEMAP_HOSTS}"},
        False,
    ),
]
ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"strict-origin-when-cross-origin"))
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def page_policy(path: str) -> tuple[dict[str, str], bool]:
    """The CSP directives of the HTML page at ``path``, and whether its inline scripts go by hash."""
    for prefix, directives, by_hash in PAGE_POLICIES:
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return {**BASE_POLICY, **directives}, by_hash
    return dict(BASE_POLICY), False


def content_security_policy(path: str, body: bytes = b"") -> str:
    """The CSP of the HTML page at ``path`` (``body``: the page, for pages allowed by hash)."""
    policy, by_hash = page_policy(path)
    if by_hash:
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in INLINE_SCRIPT.findall(body)
        ]
        policy["script-src"] = " ".join([policy["script-src"], *dict.fromkeys(hashes)])
    return "; ".join(f"{name} {value}" for name, value in policy.items())


def response_headers(scope: dict[str, Any], settings: LimitsSettings) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response carries (the tile fast path adds them to its replies): built
    once per settings and scheme, then the same tuple for every reply (a hot-path look-up)."""
    https = bool(settings.hsts) or scope.get("scheme") == "https"
    key = (id(settings), https)
    found = _PRECOMPUTED.get(key)
    if found is None or found[0] is not settings:
        headers = ALWAYS
        if https:
            hsts = f"max-age={settings.hsts_max_age_s}; includeSubDomains".encode()
            headers = (*ALWAYS, (b"strict-transport-security", hsts))
        found = _PRECOMPUTED[key] = (settings, headers)  # holding the settings keeps their id from being reused
    return found[1]


_PRECOMPUTED: dict[tuple[int, bool], tuple[LimitsSettings, tuple[tuple[bytes, bytes], ...]]] = {}


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: Any, settings: LimitsSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = response_headers(scope, self.settings)
                headers += [(name, value) for name, value in extra if name not in names]
                message = {**message, "headers": headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html") and b"content-security-policy" not in names:
                    if page_policy(scope["path"])[1]:
                        start = message  # sent with the CSP once the page's body is complete
                        return
                    csp = content_security_policy(scope["path"]).encode()
                    message["headers"].append((b"content-security-policy", csp))
                return await send(message)
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            csp = content_security_policy(scope["path"], body)
            await send({**start, "headers": [*start["headers"], (b"content-security-policy", csp.encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_with_headers)
