"""The WebMercatorQuad tile grid (via morecantile) and tile-address validation."""

from __future__ import annotations

from dataclasses import dataclass

import morecantile

TMS = morecantile.tms.get("WebMercatorQuad")
MAX_ZOOM = 24


class TileAddressError(ValueError):
    """A z/x/y outside the grid; the message says the valid range."""


@dataclass(frozen=True, slots=True)
class TileAddress:
    z: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        b = TMS.bounds(morecantile.Tile(self.x, self.y, self.z))
        return (b.left, b.bottom, b.right, b.top)


def tile_address(z: int, x: int, y: int) -> TileAddress:
    """Validate a z/x/y against the grid."""
    if not 0 <= z <= MAX_ZOOM:
        raise TileAddressError(f"zoom {z} is out of range: use 0 to {MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileAddressError(f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y must be between 0 and {n - 1}")
    return TileAddress(z, x, y)


def tiles_covering(bbox: tuple[float, float, float, float], minzoom: int, maxzoom: int) -> list[TileAddress]:
    """All tiles of zooms minzoom..maxzoom intersecting a lon/lat bbox."""
    return [
        TileAddress(t.z, t.x, t.y)
        for t in TMS.tiles(*bbox, zooms=list(range(minzoom, maxzoom + 1)))
    ]
