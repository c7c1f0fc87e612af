"""Seeding the tile cache and exporting tiles for offline use or a CDN (PMTiles v3, MBTiles).

Both walk the tiles of a bbox and zoom range through the tile engine, so the archives
hold exactly what the service serves (same SQL, generalization and ids).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from layers.catalog import Layer
from tiles.cache import BBox, CachedTile
from tiles.engine import TileEngine
from tiles.grid import TMS, TileAddress
from tiles.style import XIAMEN_BOUNDS, vector_layers

Progress = Callable[[int], None]


def tile_addresses(bbox: BBox, minzoom: int, maxzoom: int) -> Iterator[TileAddress]:
    """Every tile of the zoom range touching a lon/lat bbox, zoom by zoom."""
    for z in range(minzoom, maxzoom + 1):
        for t in TMS.tiles(*bbox, zooms=[z]):
            yield TileAddress(t.z, t.x, t.y)


def count_tiles(bbox: BBox, minzoom: int, maxzoom: int) -> int:
    total = 0
    for z in range(minzoom, maxzoom + 1):
        ul = TMS.tile(bbox[0], bbox[3], z)
        lr = TMS.tile(bbox[2], bbox[1], z)
        total += (lr.x - ul.x + 1) * (lr.y - ul.y + 1)
    return total


async def render_all(
    engine: TileEngine,
    layers: list[Layer],
    addresses: Iterator[TileAddress],
    concurrency: int = 4,
    skip: Callable[[TileAddress], bool] | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[tuple[TileAddress, CachedTile]]:
    """Render tiles with bounded concurrency, yielding them as they complete."""
    queue: asyncio.Queue[tuple[TileAddress, CachedTile] | None] = asyncio.Queue(maxsize=concurrency * 4)
    source = iter(addresses)
    # Archives are files handed on without the service's access checks: they carry only what
    # anyone may see (properties of a non-public class are left out).
    hidden = {
        layer.id: names
        for layer in layers
        if (names := frozenset(p.name for p in layer.properties if p.access != "public"))
    }

    async def worker() -> None:
        for address in source:
            if skip is not None and skip(address):
                if progress:
                    progress(1)
                continue
            await queue.put((address, await engine.tile(layers, address, hidden=hidden)))
        await queue.put(None)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    finished = 0
    try:
        while finished < concurrency:
            item = await queue.get()
            if item is None:
                finished += 1
                continue
            if progress:
                progress(1)
            yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _non_public(layers: list[Layer], entry_id: str) -> set[str]:
    layer = next((layer for layer in layers if entry_id in (layer.id, f"{layer.id}_label")), None)
    return {p.name for p in layer.properties if p.access != "public"} if layer else set()


def _metadata(layers: list[Layer], minzoom: int, maxzoom: int, bbox: BBox) -> dict:
    return {
        "name": ",".join(layer.id for layer in layers),
        "description": "EcoMap Xiamen 生态环境一张图 (demo data is sample data, not official boundaries)",
        "format": "pbf",
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": list(bbox),
        "vector_layers": [
            {**entry, "fields": {k: v for k, v in entry["fields"].items() if k not in _non_public(layers, entry["id"])}}
            for entry in vector_layers(layers)
        ],
    }


async def export_pmtiles(
    engine: TileEngine,
    layers: list[Layer],
    out: Path,
    minzoom: int,
    maxzoom: int,
    bbox: BBox = XIAMEN_BOUNDS,
    progress: Progress | None = None,
) -> int:
    """Write a PMTiles v3 archive (gzip-compressed MVT); returns the number of tiles."""
    tiles: dict[int, bytes] = {}
    async for address, tile in render_all(engine, layers, tile_addresses(bbox, minzoom, maxzoom), progress=progress):
        if tile.data:
            tiles[zxy_to_tileid(address.z, address.x, address.y)] = tile.gzipped
    write_pmtiles(out, tiles, minzoom, maxzoom, bbox, _metadata(layers, minzoom, maxzoom, bbox))
    return len(tiles)


def write_pmtiles(out: Path, tiles: dict[int, bytes], minzoom: int, maxzoom: int, bbox: BBox, metadata: dict) -> None:
    """Write gzip-compressed MVT tiles (by PMTiles tile id) as a PMTiles v3 archive, atomically."""
    tmp = out.with_name(out.name + ".part")
    with tmp.open("wb") as f:
        writer = Writer(f)
        for tile_id in sorted(tiles):
            writer.write_tile(tile_id, tiles[tile_id])
        writer.finalize(
            {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_zoom": minzoom,
                "max_zoom": maxzoom,
                "min_lon_e7": int(bbox[0] * 1e7),
                "min_lat_e7": int(bbox[1] * 1e7),
                "max_lon_e7": int(bbox[2] * 1e7),
                "max_lat_e7": int(bbox[3] * 1e7),
                "center_zoom": minzoom,
                "center_lon_e7": int((bbox[0] + bbox[2]) / 2 * 1e7),
                "center_lat_e7": int((bbox[1] + bbox[3]) / 2 * 1e7),
            },
            metadata,
        )
    tmp.replace(out)


async def export_mbtiles(
    engine: TileEngine,
    layers: list[Layer],
    out: Path,
    minzoom: int,
    maxzoom: int,
    bbox: BBox = XIAMEN_BOUNDS,
    progress: Progress | None = None,
) -> int:
    """Write an MBTiles 1.3 file (gzip-compressed MVT, TMS row order); returns the number of tiles."""
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.executescript(
            "CREATE TABLE metadata (name text, value text);"
            "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);"
        )
        meta = _metadata(layers, minzoom, maxzoom, bbox)
        rows = {
            "name": meta["name"],
            "format": "pbf",
            "type": "overlay",
            "version": "1",
            "description": meta["description"],
            "minzoom": str(minzoom),
            "maxzoom": str(maxzoom),
            "bounds": ",".join(str(v) for v in bbox),
            "center": f"{(bbox[0] + bbox[2]) / 2},{(bbox[1] + bbox[3]) / 2},{minzoom}",
            "json": json.dumps({"vector_layers": meta["vector_layers"]}, ensure_ascii=False),
        }
        db.executemany("INSERT INTO metadata VALUES (?, ?)", rows.items())
        written = 0
        async for address, tile in render_all(
            engine, layers, tile_addresses(bbox, minzoom, maxzoom), progress=progress
        ):
            if tile.data:
                tms_row = (1 << address.z) - 1 - address.y
                db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (address.z, address.x, tms_row, tile.gzipped))
                written += 1
        db.commit()
    finally:
        db.close()
    tmp.replace(out)
    return written


class PMTilesArchive:
    """A PMTiles archive opened for serving (memory-mapped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb")
        self._reader = Reader(MmapSource(self._file))
        self.header = self._reader.header()
        self.metadata = self._reader.metadata()

    def tile(self, z: int, x: int, y: int) -> bytes:
        """A tile's MVT bytes, decompressed (empty when the archive has none)."""
        data = self._reader.get(z, x, y)
        if not data:
            return b""
        return gzip.decompress(data) if self.header["tile_compression"] == Compression.GZIP else bytes(data)

    def close(self) -> None:
        self._file.close()
