"""Fetching a partner's OGC API Features collection: pages, limits, conditional requests.

The first page is asked with ``If-None-Match`` (the ETag stored with the copy); a ``304``
means the collection has not changed and nothing else is fetched. Otherwise the ``next``
links are followed (same origin only: the partner key is never sent elsewhere) up to a page
limit, and the features counted against a limit before anything is parsed further. The
ETag of the first page stands for the collection: partners running this service put the
layer's revision in it (``gis_service.routers.ogc``), so any change anywhere in the
collection changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

GEOJSON = "application/geo+json"
CRS84 = {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "http://www.opengis.net/def/crs/EPSG/0/4326"}
PAGE_SIZE = 1000
"""Features asked per page (``limit``), unless the declared URL sets its own."""


class FetchError(Exception):
    """The partner could not be read or answered something unusable; the message says which and why."""


@dataclass
class Fetched:
    """A partner's answer: ``unchanged`` (304), or the features of every page and the first page's ETag."""

    unchanged: bool
    etag: str | None = None
    features: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def first_page_url(url: str) -> str:
    """The declared items URL with a page size (``limit``) when it gives none, and GeoJSON asked."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = {key for key, _ in query}
    if "limit" not in keys:
        query.append(("limit", str(PAGE_SIZE)))
    if "f" not in keys:
        query.append(("f", "json"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _next_link(document: dict[str, Any]) -> str | None:
    for link in document.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            return link["href"]
    return None


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> tuple[httpx.Response, bytes]:
    """One GET, its body read up to ``max_bytes`` (a larger page is refused, never held whole)."""
    async with client.stream("GET", url, headers=headers) as response:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(
                    f"{url}: a page larger than {max_bytes // (1024 * 1024)} MB; ask smaller pages (?limit=)"
                )
            chunks.append(chunk)
    return response, b"".join(chunks)


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


async def fetch_collection(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None,
    api_key: str | None,
    max_pages: int,
    max_features: int,
    max_page_bytes: int = 64 * 1024 * 1024,
) -> Fetched:
    """Every feature of the collection at ``url``, or ``unchanged`` when the partner answers 304.

    Raises:
        FetchError: unreachable, an HTTP error, not GeoJSON, another CRS, a ``next`` link to
            another origin, more pages or features than allowed.
    """
    headers = {"Accept": f"{GEOJSON}, application/json;q=0.9"}
    if api_key:
        headers["X-API-Key"] = api_key
    page_url: str | None = first_page_url(url)
    features: list[dict[str, Any]] = []
    first_etag = None
    pages = 0
    while page_url is not None:
        if pages >= max_pages:
            raise FetchError(f"more than {max_pages} pages (`next` links); raise ECOMAP_FEDERATION__MAX_PAGES")
        if not _same_origin(page_url, url):
            raise FetchError(f"a `next` link leaves the partner ({page_url}); refused (the key goes to {url} only)")
        conditional = {"If-None-Match": etag} if etag and pages == 0 else {}
        try:
            response, content = await _get(client, page_url, {**headers, **conditional}, max_page_bytes)
        except httpx.TimeoutException:
            raise FetchError(f"{page_url}: no answer within {client.timeout.read} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{page_url}: cannot be reached ({type(exc).__name__}: {exc})") from None
        if response.status_code == 304 and pages == 0:
            return Fetched(unchanged=True, etag=response.headers.get("etag") or etag)
        if response.status_code != 200:
            detail = content.decode("utf-8", "replace").strip()[:300]
            raise FetchError(f"{page_url}: HTTP {response.status_code} {response.reason_phrase}: {detail}")
        crs = response.headers.get("content-crs", "").strip().strip("<>")
        if crs and crs not in CRS84:
            raise FetchError(f"{page_url}: features in {crs}; only CRS84 (lon/lat WGS84) is taken")
        try:
            document = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"{page_url}: not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise FetchError(f"{page_url}: not a GeoJSON FeatureCollection")
        page = document.get("features")
        if not isinstance(page, list):
            raise FetchError(f"{page_url}: `features` is not a list")
        matched = document.get("numberMatched")
        if len(features) + len(page) > max_features or (
            pages == 0 and isinstance(matched, int) and matched > max_features
        ):
            raise FetchError(
                f"more than {max_features} features (the layer's limit); nothing written — raise max_features "
                "in its declaration if the partner's collection really is that large"
            )
        features.extend(page)
        if pages == 0:
            first_etag = response.headers.get("etag")
        pages += 1
        page_url = _next_link(document)
    return Fetched(unchanged=False, etag=first_etag, features=features, pages=pages)
