"""Render (composite) vector tiles from PostGIS: one MVT layer per catalog layer, queried concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from psycopg import AsyncConnection

from tiles.grid import TileAddress
from tiles.sql import TileQuery

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
"""Lends a database connection for one query (the service maps its errors)."""


async def render_layer(
    connect: Connect, query: TileQuery, tile: TileAddress, params: dict[str, object] | None = None
) -> bytes:
    """Run one layer's tile query; returns the MVT bytes (empty when no feature)."""
    text, extra = query.for_zoom(tile.z)
    async with connect() as conn:
        cursor = conn.cursor(binary=True)  # bytea arrives as bytes, not as hex text to decode
        await cursor.execute(text, {"z": tile.z, "x": tile.x, "y": tile.y, **extra, **(params or {})}, prepare=True)
        row = await cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


async def render_tile(
    connect: Connect, queries: list[TileQuery], tile: TileAddress, params: dict[str, object] | None = None
) -> bytes:
    """Render a composite tile; layers below their minzoom are left out."""
    active = [query for query in queries if query.layer.minzoom <= tile.z]
    if len(active) == 1:
        return await render_layer(connect, active[0], tile, params)
    parts = await asyncio.gather(*(render_layer(connect, query, tile, params) for query in active))
    return b"".join(parts)
