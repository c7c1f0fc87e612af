"""HTTP semantics of a tile reply, shared by the tile router and its fast path.

Strong ETag with ``If-None-Match`` → 304; gzip bytes (compressed once, cached with the
tile) when the client accepts gzip; an empty tile answers 204; ``Cache-Control`` is
``no-cache`` (revalidate) unless a max-age is configured; ``public`` for tiles anyone may
get, ``private`` (never stored by shared caches) for tiles holding non-public layers or
properties. Tiles whose content depends on the caller's credentials say so in ``Vary``. A tile served from the cache
while the database is unreachable says so: ``Warning: 110 - "Response is Stale"`` and
``X-Cache: stale`` (it may miss changes made meanwhile).
"""

from __future__ import annotations

from tiles.cache import CachedTile

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
STALE_WARNING = '110 - "Response is Stale"'


def tile_reply(
    tile: CachedTile,
    if_none_match: str,
    accept_encoding: str,
    max_age_s: int,
    media_type: str = MVT_MEDIA_TYPE,
    *,
    private: bool = False,
    per_caller: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body answering a tile request. Vector tiles go gzipped to clients
    that accept it; images (PNG/WebP raster tiles) are compressed already."""
    gzippable = media_type == MVT_MEDIA_TYPE
    scope = "private" if private else "public"
    headers = {
        "etag": tile.etag,
        "cache-control": f"{scope}, max-age={max_age_s}"
        if max_age_s
        else ("private, no-cache" if private else "no-cache"),
    }
    vary = ["Accept-Encoding"] if gzippable else []
    if per_caller:
        vary += ["Authorization", "Cookie", "X-API-Key"]
    if vary:
        headers["vary"] = ", ".join(vary)
    if tile.stale:
        headers["warning"] = STALE_WARNING
        headers["x-cache"] = "stale"
    if tile.etag in if_none_match:
        return 304, headers, b""
    if not tile.data:
        return 204, headers, b""
    headers["content-type"] = media_type
    if gzippable and "gzip" in accept_encoding:
        headers["content-encoding"] = "gzip"
        return 200, headers, tile.gzipped
    return 200, headers, tile.data
