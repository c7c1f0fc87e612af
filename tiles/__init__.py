"""Vector tiles: the tile grid, tile SQL built once per layer, rendering, styles and caching."""
