"""Render (composite) vector tiles from PostGIS: one MVT layer per catalog layer, queried concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from psycopg import AsyncConnection

from layers.catalog import Layer
from tiles.grid import TileAddress
from tiles.sql import TileQuery


Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
"""Lends a database connection for one query (the service maps its errors)."""


async def render_layer(connect: Connect, query: TileQuery, tile: TileAddress) -> bytes:
    """Run one layer's tile query; returns the MVT bytes (empty when no feature)."""
    async with connect() as conn:
        cursor = await conn.execute(query.text, {"z": tile.z, "x": tile.x, "y": tile.y}, prepare=True)
        row = await cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


async def render_tile(connect: Connect, queries: list[tuple[Layer, TileQuery]], tile: TileAddress) -> bytes:
    """Render a composite tile: layers outside their zoom range are left out."""
    active = [query for layer, query in queries if layer.minzoom <= tile.z]
    parts = await asyncio.gather(*(render_layer(connect, query, tile) for query in active))
    return b"".join(parts)
