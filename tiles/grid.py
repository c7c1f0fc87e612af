"""The WebMercatorQuad tile grid (via morecantile) and tile-address validation."""

from __future__ import annotations

import math
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


def tile_address(z: int, x: int, y: int) -> TileAddress:
    """Validate a z/x/y against the grid."""
    if not 0 <= z <= MAX_ZOOM:
        raise TileAddressError(f"zoom {z} is out of range: use 0 to {MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileAddressError(f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y must be between 0 and {n - 1}")
    return TileAddress(z, x, y)


def lonlat_to_tile_fraction(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Fractional tile coordinates of a lon/lat at zoom z (Web Mercator)."""
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    n = 1 << z
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return x, y


def tile_range(bbox: tuple[float, float, float, float], z: int, margin: float = 0.0) -> tuple[int, int, int, int]:
    """Inclusive ``(xmin, xmax, ymin, ymax)`` of the tiles at zoom z whose area plus a margin
    (a fraction of the tile width, e.g. the MVT buffer) touches a lon/lat bbox."""
    n = 1 << z
    x0, y1 = lonlat_to_tile_fraction(bbox[0], bbox[1], z)
    x1, y0 = lonlat_to_tile_fraction(bbox[2], bbox[3], z)
    clamp = lambda v: max(0, min(n - 1, v))  # noqa: E731
    return (
        clamp(math.floor(x0 - margin)),
        clamp(math.floor(x1 + margin)),
        clamp(math.floor(y0 - margin)),
        clamp(math.floor(y1 + margin)),
    )
