"""The zoom levels of tiles: which zooms are generalized, and a pixel's size at each.

Shared by the generalizer (``tiles.generalize``) and the tile SQL (``tiles.sql``), which
must agree on them; neither imports the other for these.
"""

from __future__ import annotations

import math

from layers.catalog import Layer

DETAIL_ZOOM = 16
"""From this zoom on, tiles use the full-detail geometry."""

DROP_BELOW_ZOOM = 12
"""Below this zoom, features smaller than a pixel are dropped; from it on, every feature is kept."""

WORLD_WIDTH_M = 2 * math.pi * 6378137.0
"""Width of the Web Mercator world (EPSG:3857) in metres."""

DISPLAY_TILE_PX = 512  # MapLibre draws vector tiles at 512 px


def pixel_size(z: int) -> float:
    """Width in Web Mercator metres of one display pixel at zoom z."""
    return WORLD_WIDTH_M / (DISPLAY_TILE_PX * (1 << z))


def grid_cell(z: int, extent: int) -> float:
    """Size in Web Mercator metres of one MVT grid cell at zoom z (tiles of ``extent`` cells)."""
    return WORLD_WIDTH_M / ((1 << z) * extent)


def generalized_zooms(layer: Layer) -> list[int]:
    """Zooms that get precomputed geometry, finest first."""
    if layer.geometry_type in ("Point", "MultiPoint"):
        return []
    return list(range(DETAIL_ZOOM - 1, max(layer.minzoom, 0) - 1, -1))
