"""Tile cache: an in-memory LRU in front of an optional on-disk store, with exact invalidation.

Entries keep the raw MVT, its gzip encoding (compressed once, never per request) and a
strong ETag. Invalidation takes a layer, the bounding box of the changed features and
optionally the highest zoom affected, and drops exactly the tiles (at every zoom) whose
area plus buffer touches that box, in memory and on disk; other tiles stay cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tiles.grid import MAX_ZOOM, tile_range

BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What identifies a tile: its layers, address and request variant (filter, properties...)."""

    layers: tuple[str, ...]
    z: int
    x: int
    y: int
    variant: str = ""

    def relative_path(self) -> Path:
        suffix = f".{self.variant}" if self.variant else ""
        return Path(",".join(self.layers), str(self.z), str(self.x), f"{self.y}{suffix}.mvt.gz")


class CachedTile:
    """A rendered tile ready to send: raw bytes, a strong ETag, and its gzip encoding
    (compressed at most once, on first need)."""

    __slots__ = ("_gzipped", "data", "etag")

    def __init__(self, data: bytes, gzipped: bytes | None = None) -> None:
        self.data = data
        self.etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
        self._gzipped = gzipped

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.data, compresslevel=6, mtime=0) if self.data else b""
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.data) + len(self._gzipped or b"") + 200


class TileCache:
    """Memory LRU (bounded in bytes) plus an optional directory store shared by all workers."""

    def __init__(self, memory_bytes: int, directory: Path | None = None) -> None:
        self.memory_bytes = memory_bytes
        self.directory = directory
        self._entries: OrderedDict[CacheKey, CachedTile] = OrderedDict()
        self._used = 0
        self.hits = 0
        self.misses = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CachedTile | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry
        if self.directory is not None:
            path = self.directory / key.relative_path()
            try:
                gzipped = path.read_bytes()
            except OSError:
                gzipped = None
            if gzipped is not None:
                entry = CachedTile(gzip.decompress(gzipped) if gzipped else b"", gzipped)
                self._remember(key, entry)
                self.hits += 1
                return entry
        self.misses += 1
        return None

    def put(self, key: CacheKey, entry: CachedTile) -> None:
        self._remember(key, entry)
        if self.directory is not None:
            path = self.directory / key.relative_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as tmp:
                tmp.write(entry.gzipped)
            os.replace(tmp.name, path)

    def _remember(self, key: CacheKey, entry: CachedTile) -> None:
        if self.memory_bytes <= 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._used -= old.size
        self._entries[key] = entry
        self._used += entry.size
        while self._used > self.memory_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._used -= evicted.size

    def invalidate(self, layer: str, bbox: BBox | None, margin: float, maxzoom: int | None = None) -> int:
        """Drop the tiles of a layer touched by a change; returns how many memory entries went.

        Args:
            layer: the changed layer id (composite tiles containing it are dropped too).
            bbox: lon/lat extent of the changed features (old and new), or None for all.
            margin: the tile buffer as a fraction of the tile width.
            maxzoom: highest zoom affected (None: every zoom).
        """
        top = MAX_ZOOM if maxzoom is None else maxzoom
        ranges = {z: tile_range(bbox, z, margin) for z in range(top + 1)} if bbox is not None else None

        def affected(z: int, x: int, y: int) -> bool:
            if z > top:
                return False
            if ranges is None:
                return True
            xmin, xmax, ymin, ymax = ranges[z]
            return xmin <= x <= xmax and ymin <= y <= ymax

        doomed = [k for k in self._entries if layer in k.layers and affected(k.z, k.x, k.y)]
        for key in doomed:
            self._used -= self._entries.pop(key).size
        if self.directory is not None:
            self._invalidate_disk(layer, affected, top)
        return len(doomed)

    def _invalidate_disk(self, layer: str, affected: Callable[[int, int, int], bool], top: int) -> None:
        assert self.directory is not None  # noqa: S101
        for layer_dir in _scandirs(self.directory):
            if layer not in layer_dir.name.split(","):
                continue
            for z_dir in _scandirs(layer_dir):
                if not z_dir.name.isdigit() or int(z_dir.name) > top:
                    continue
                z = int(z_dir.name)
                for x_dir in _scandirs(Path(z_dir.path)):
                    if not x_dir.name.isdigit():
                        continue
                    for tile_file in os.scandir(x_dir.path):
                        y = tile_file.name.split(".", 1)[0]
                        if y.isdigit() and affected(z, int(x_dir.name), int(y)):
                            _unlink(tile_file.path)

    def clear(self) -> None:
        """Forget every tile, in memory and on disk."""
        self._entries.clear()
        self._used = 0
        if self.directory is not None:
            for entry in _scandirs(self.directory):
                shutil.rmtree(entry.path, ignore_errors=True)


class SingleFlight:
    """Concurrent misses for one key are computed once: the first caller computes, the others
    await its result (or its exception)."""

    def __init__(self) -> None:
        self._pending: dict[CacheKey, asyncio.Future[CachedTile]] = {}

    async def run(self, key: CacheKey, compute: Callable[[], Awaitable[CachedTile]]) -> CachedTile:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedTile] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            result = await compute()
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._pending[key]


def _scandirs(path: Path | str) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(path) if e.is_dir()]
    except OSError:
        return []


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
