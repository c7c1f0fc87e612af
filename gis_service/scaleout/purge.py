"""Ban from the HTTP cache in front of the service (Varnish, ``deploy/varnish/ecomap.vcl``)
exactly the tiles a committed change touched.

The tile change listener (``tiles/listener.py``) hands every change it applies to its own
cache to :meth:`CachePurger.changed` too: the changed layer, the lon/lat extent of the old
and new geometries (none: the whole layer) and the highest zoom affected. The purger sends
each configured cache a ``BAN`` whose ``X-Ban-Url`` is a regular expression matching the
URLs of exactly those tiles — the layer alone or in a composite, in the ``/tiles`` and the
OGC API – Tiles forms, any query string — at every zoom, the x and y ranges written as
numeric-range patterns (:func:`range_pattern`), so nothing else is dropped.

A tile render that read the database before the change committed can reach the cache after
the first ban. The ban is therefore sent again, for what was stored since
(``X-Ban-Max-Age``), once shortly after and once after the longest a tile render can take
(the pool wait plus the statement timeout). A cache that cannot be reached is retried; if
it stays unreachable the failure is logged, and the TTL set by the VCL bounds the damage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from layers.catalog import Catalog
from tiles.grid import MAX_ZOOM, tile_range

logger = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]
ATTEMPTS = 3


def _nines(number: int, count: int) -> int:
    text = str(number)
    return int(text[:-count] + "9" * count) if count < len(text) else int("9" * count)


def _zeros(number: int, count: int) -> int:
    return number - number % 10**count


def range_pattern(low: int, high: int) -> str:
    """A regular expression (no anchors) matching exactly the decimal integers low..high.

    The range is split where digits roll over (e.g. 8–123 → 8–9, 10–99, 100–123), and each
    piece becomes digit classes (``[1-9][0-9]``); leading zeros never match."""
    if not 0 <= low <= high:
        raise ValueError(f"not a range of non-negative integers: {low}..{high}")
    stops = {high}
    count = 1
    stop = _nines(low, count)
    while low <= stop < high:
        stops.add(stop)
        count += 1
        stop = _nines(low, count)
    count = 1
    stop = _zeros(high + 1, count) - 1
    while low < stop <= high:
        stops.add(stop)
        count += 1
        stop = _zeros(high + 1, count) - 1
    pieces = []
    start = low
    for stop in sorted(stops):
        pieces.append(_piece(start, stop))
        start = stop + 1
    return pieces[0] if len(pieces) == 1 else "(" + "|".join(pieces) + ")"


def _piece(start: int, stop: int) -> str:
    """Digit classes for a range whose bounds have the same number of digits and differ
    only in a run of trailing digits (0…9 in the start, 9…9 in the stop, past the first)."""
    out = ""
    for a, b in zip(str(start), str(stop), strict=True):
        out += a if a == b else (f"[{a}-{b}]" if (a, b) != ("0", "9") else "[0-9]")
    return out


def tile_url_pattern(layer: str, zooms: dict[int, tuple[int, int, int, int]] | None) -> str:
    """The URL pattern of a layer's tiles: all of them (``zooms`` None) or, per zoom, the
    inclusive ``(xmin, xmax, ymin, ymax)`` range. Layer ids come from the validated catalog
    (lower-case letters, digits, underscores), so they need no escaping."""
    if zooms is None:
        tiles, ogc = r"[0-9]+/[0-9]+/[0-9]+", r"[0-9]+/[0-9]+/[0-9]+"
    else:
        by_zoom = [(z, range_pattern(x0, x1), range_pattern(y0, y1)) for z, (x0, x1, y0, y1) in sorted(zooms.items())]
        tiles = "(" + "|".join(f"{z}/{xs}/{ys}" for z, xs, ys in by_zoom) + ")"
        ogc = "(" + "|".join(f"{z}/{ys}/{xs}" for z, xs, ys in by_zoom) + ")"
    return (
        f"^/(tiles/([a-z0-9_]+,)*{layer}(,[a-z0-9_]+)*/{tiles}[.]pbf"
        f"|ogc/collections/{layer}/tiles/WebMercatorQuad/{ogc})([?]|$)"
    )


class CachePurger:
    """Sends the bans for each layer change to every configured HTTP cache."""

    def __init__(
        self,
        urls: Sequence[str],
        catalog: Catalog,
        *,
        repeat_after_s: Sequence[float] = (),
        timeout_s: float = 5.0,
    ) -> None:
        self.urls = list(urls)
        self.catalog = catalog
        self.repeat_after_s = sorted(repeat_after_s)
        self.client = httpx.AsyncClient(timeout=timeout_s)
        self.failed = 0
        """Bans that could not be delivered after every attempt (a cache down or refusing)."""
        self._tasks: set[asyncio.Task[None]] = set()

    def pattern(self, layer: str, bbox: BBox | None, maxzoom: int | None) -> str:
        """The URL pattern of the tiles a change of ``layer`` in ``bbox`` touched."""
        if bbox is None:
            return tile_url_pattern(layer, None)
        settings = self.catalog.get(layer).tiles
        margin = settings.buffer / settings.extent
        top = MAX_ZOOM if maxzoom is None else maxzoom
        return tile_url_pattern(layer, {z: tile_range(bbox, z, margin) for z in range(top + 1)})

    def changed(self, layer: str, bbox: BBox | None, maxzoom: int | None = None) -> None:
        """Ban the tiles of a change at once and again later (called in the event loop)."""
        if not self.urls or layer not in self.catalog:
            return
        task = asyncio.get_running_loop().create_task(self._ban_repeatedly(self.pattern(layer, bbox, maxzoom)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ban_repeatedly(self, pattern: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._ban_everywhere(pattern, None)
        for delay in self.repeat_after_s:
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            await self._ban_everywhere(pattern, loop.time() - started + 1.0)

    async def _ban_everywhere(self, pattern: str, max_age_s: float | None) -> None:
        headers = {"X-Ban-Url": pattern}
        if max_age_s is not None:
            headers["X-Ban-Max-Age"] = f"{max_age_s:.3f}s"
        await asyncio.gather(*(self._ban(url, headers) for url in self.urls))

    async def _ban(self, url: str, headers: dict[str, str]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                response = await self.client.request("BAN", url, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                problem = f"{response.status_code} {response.text.strip()[:200]}"
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(0.2 * 2**attempt)
        self.failed += 1
        logger.error("could not ban changed tiles from the HTTP cache at %s (%s)", url, problem)

    async def close(self) -> None:
        """Finish the bans under way (the repeated ones are dropped) and close the client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
