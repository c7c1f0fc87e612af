"""The tile engine: cached composite tiles, computed once per concurrent miss, kept exact.

Tile SQL is built once per layer (and once per filter/properties variant); a miss
renders the layers concurrently; concurrent misses for one tile share one rendering;
a change notification drops exactly the affected tiles, and a tile rendered while a
change arrived is not cached (it may predate the change).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from layers.catalog import Catalog, Layer
from tiles.cache import BBox, CachedTile, CacheKey, TileCache
from tiles.grid import TileAddress
from tiles.render import Connect, render_tile
from tiles.sql import TileQuery, build_tile_query


class UnknownLayerError(KeyError):
    """A requested layer id is not in the catalog; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class TileEngine:
    """Renders and caches composite vector tiles of catalog layers."""

    def __init__(self, catalog: Catalog, connect: Connect, cache: TileCache | None = None) -> None:
        self.catalog = catalog
        self.connect = connect
        self.cache = cache
        self.queries: dict[str, TileQuery] = {layer.id: build_tile_query(layer) for layer in catalog}
        self._variants: OrderedDict[tuple, TileQuery] = OrderedDict()
        self._inflight: dict[CacheKey, asyncio.Future[CachedTile]] = {}
        self._generation: dict[str, int] = dict.fromkeys(catalog.ids, 0)
        self.cache_active = False
        """Set by the change listener while it is connected: a cache that may miss changes is not used."""

    def resolve(self, layer_spec: str) -> list[Layer]:
        """Parse ``"redline,river"`` into catalog layers, refusing unknown or repeated ids."""
        ids = [part.strip() for part in layer_spec.split(",")]
        unknown = [i for i in ids if i not in self.catalog]
        if unknown:
            raise UnknownLayerError(
                f"unknown layer {', '.join(map(repr, unknown))}; valid layers: {', '.join(self.catalog.ids)}"
            )
        if len(set(ids)) != len(ids):
            raise UnknownLayerError(f"layer listed twice in {layer_spec!r}; list each layer once")
        return [self.catalog.get(i) for i in ids]

    def query(self, layer: Layer, variant: tuple = ()) -> TileQuery:
        """The tile query of a layer, or of a (properties, filter) variant built once and kept."""
        if not variant:
            return self.queries[layer.id]
        key = (layer.id, *variant)
        found = self._variants.get(key)
        if found is None:
            properties, where = variant
            found = build_tile_query(layer, list(properties) if properties is not None else None, where)
            self._variants[key] = found
            if len(self._variants) > 256:
                self._variants.popitem(last=False)
        return found

    async def tile(
        self,
        layers: list[Layer],
        address: TileAddress,
        *,
        variant: tuple = (),
        variant_id: str = "",
        params: dict[str, object] | None = None,
    ) -> CachedTile:
        """The composite tile of some layers at an address, from the cache when possible.

        Args:
            variant: ``(properties, where)`` changing the SQL (default: the layer's own query).
            variant_id: a stable string naming the variant and its values, for the cache key.
            params: values bound by the variant's SQL.
        """
        key = CacheKey(tuple(layer.id for layer in layers), address.z, address.x, address.y, variant_id)
        cache = self.cache if self.cache_active else None
        if cache is not None and (hit := cache.get(key)) is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedTile] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generations = [self._generation[layer.id] for layer in layers]
        try:
            data = await render_tile(self.connect, [self.query(layer, variant) for layer in layers], address, params)
            entry = CachedTile(data)
            unchanged = generations == [self._generation[layer.id] for layer in layers]
            if cache is not None and unchanged and self.cache_active:
                cache.put(key, entry)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]

    def invalidate(self, layer_id: str, bbox: BBox | None, maxzoom: int | None = None) -> int:
        """Forget the tiles a change touched (bbox None: the whole layer)."""
        if layer_id not in self._generation:
            return 0
        self._generation[layer_id] += 1
        if self.cache is None:
            return 0
        layer = self.catalog.get(layer_id)
        return self.cache.invalidate(layer_id, bbox, layer.tiles.buffer / layer.tiles.extent, maxzoom)
