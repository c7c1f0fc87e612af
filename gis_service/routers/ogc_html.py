"""HTML views of the OGC API documents, for people browsing ``/ogc`` in a web browser.

A request gets HTML with ``f=html``, or when its ``Accept`` header ranks ``text/html`` above
every JSON type (a browser's ``text/html,…,*/*;q=0.8``); ``f=json``/``f=geojson`` and API
clients (``*/*``, ``application/json``: GDAL, OWSLib, QGIS) get JSON. The pages are rendered
from the very JSON documents the API returns, with Jinja2 templates under
``gis_service/templates/ogc``; they are self-contained (inline CSS, no scripts, no requests
to other hosts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

HTML = "text/html"
JSON_TYPES = ("application/json", "application/geo+json", "application/schema+json", "application/*", "*/*")

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "ogc"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def with_format(href: str, fmt: str) -> str:
    """The same URL asking for another format (``f=html`` / ``f=json``)."""
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"]
    query.append(("f", fmt))
    return urlunsplit(parts._replace(query=urlencode(query)))


def shown(value: Any) -> str:
    """A property value as a table cell: JSON spelling for booleans, empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


TEMPLATES.filters["shown"] = shown
TEMPLATES.filters["html_href"] = lambda href: with_format(href, "html")
TEMPLATES.filters["json_href"] = lambda href: with_format(href, "json")


def _accept_weights(header: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            weights[media.lower()] = max(quality, weights.get(media.lower(), 0.0))
    return weights


def wants_html(request: Request, fmt: str | None) -> bool:
    """True when the request asks for the HTML view (``f=html``, or a browser's Accept)."""
    if fmt is not None:
        return fmt == "html"
    weights = _accept_weights(request.headers.get("accept", ""))
    html = weights.get(HTML, 0.0)
    return html > 0 and html > max((weights.get(media, 0.0) for media in JSON_TYPES), default=0.0)


def render(template: str, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """An HTML page from a template of ``templates/ogc`` (the JSON document in ``doc``), with the
    headers its JSON form has (e.g. ``Content-Crs`` of features)."""
    page = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(page, headers={"Vary": "Accept", **(headers or {})})
