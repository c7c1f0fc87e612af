"""The tile engine: tile SQL built once per layer, composite rendering for requests."""

from __future__ import annotations

from dataclasses import dataclass

from layers.catalog import Catalog, Layer
from tiles.grid import TileAddress
from tiles.render import Connect, render_tile
from tiles.sql import TileQuery, build_tile_query


class UnknownLayerError(KeyError):
    """A requested layer id is not in the catalog; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Tile:
    """A rendered tile: MVT bytes (possibly empty) for the requested layers."""

    layers: tuple[str, ...]
    address: TileAddress
    data: bytes


class TileEngine:
    """Renders composite vector tiles of catalog layers."""

    def __init__(self, catalog: Catalog, connect: Connect) -> None:
        self.catalog = catalog
        self.connect = connect
        self.queries: dict[str, TileQuery] = {layer.id: build_tile_query(layer) for layer in catalog}

    def resolve(self, layer_spec: str) -> list[Layer]:
        """Parse ``"redline,river"`` into catalog layers, refusing unknown or repeated ids."""
        ids = [part.strip() for part in layer_spec.split(",")]
        unknown = [i for i in ids if i not in self.catalog]
        if unknown or not ids:
            raise UnknownLayerError(
                f"unknown layer {', '.join(map(repr, unknown))}; valid layers: {', '.join(self.catalog.ids)}"
            )
        if len(set(ids)) != len(ids):
            raise UnknownLayerError(f"layer listed twice in {layer_spec!r}; list each layer once")
        return [self.catalog.get(i) for i in ids]

    async def tile(self, layers: list[Layer], address: TileAddress) -> Tile:
        """Render the composite tile of the given layers at an address."""
        data = await render_tile(self.connect, [(layer, self.queries[layer.id]) for layer in layers], address)
        return Tile(tuple(layer.id for layer in layers), address, data)
