"""Tile cache: an in-memory LRU in front of an optional, size-bounded on-disk store, with exact invalidation.

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
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tiles.grid import MAX_ZOOM, tile_range

BBox = tuple[float, float, float, float]
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What identifies a tile: its layers, address and request variant (filter, properties...).

    ``client_variant`` marks variants a client chose freely (a filter, a property subset, a
    revision): their number has no bound, so they are kept in a small memory budget of their
    own and never on disk."""

    layers: tuple[str, ...]
    z: int
    x: int
    y: int
    variant: str = ""
    client_variant: bool = False

    def relative_path(self) -> Path:
        suffix = f".{self.variant}" if self.variant else ""
        return Path(",".join(self.layers), str(self.z), str(self.x), f"{self.y}{suffix}{TILE_SUFFIX}")


TILE_SUFFIX = ".mvt.gz"
"""Every tile file of the disk store ends so (other files there, like state.json, are not tiles)."""


class CachedTile:
    """A rendered tile ready to send: raw bytes, a strong ETag, and its gzip encoding
    (compressed at most once, on first need). ``stale`` marks a copy served from the cache
    while the database is unreachable (it may miss changes made meanwhile)."""

    __slots__ = ("_gzipped", "data", "etag", "stale")

    def __init__(self, data: bytes, gzipped: bytes | None = None) -> None:
        self.data = data
        self.etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
        self._gzipped = gzipped
        self.stale = False

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.data, compresslevel=6, mtime=0) if self.data else b""
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.data) + len(self._gzipped or b"") + 200

    def as_stale(self) -> CachedTile:
        """This tile marked stale (a copy: the cached entry itself stays as it is)."""
        copy = CachedTile.__new__(CachedTile)
        copy.data, copy.etag, copy._gzipped, copy.stale = self.data, self.etag, self._gzipped, True
        return copy


class _MemoryLru:
    """Tiles in memory, least recently used dropped first beyond a size in bytes (each
    entry's size counted as it was when stored: a tile's gzip may be computed later)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.entries: OrderedDict[CacheKey, tuple[CachedTile, int]] = OrderedDict()
        self.used = 0

    def get(self, key: CacheKey) -> CachedTile | None:
        found = self.entries.get(key)
        if found is None:
            return None
        self.entries.move_to_end(key)
        return found[0]

    def remember(self, key: CacheKey, entry: CachedTile) -> None:
        size = entry.size
        if self.budget <= 0 or size > self.budget:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self.entries[key] = (entry, size)
        self.used += size
        while self.used > self.budget and self.entries:
            _, (_, evicted) = self.entries.popitem(last=False)
            self.used -= evicted

    def drop(self, doomed: Callable[[CacheKey], bool]) -> int:
        keys = [k for k in self.entries if doomed(k)]
        for key in keys:
            self.used -= self.entries.pop(key)[1]
        return len(keys)

    def clear(self) -> None:
        self.entries.clear()
        self.used = 0


class TileCache:
    """Memory LRU (bounded in bytes) plus an optional directory store shared by all workers,
    bounded too; client-chosen variants live in a small memory LRU of their own.

    The disk store's size is what its files occupy (allocated blocks, as ``du`` counts; at
    least one block per file, so that empty tiles count too).
    Each worker counts what it writes; once its estimate (the size found by its last scan plus
    its own writes since) passes the budget, or its writes since the last scan pass
    :data:`RESCAN_FRACTION` of it (other workers write too), a background thread scans the
    store and deletes the least recently used tiles (by mtime, refreshed when a tile is read
    from disk) down to :data:`LOW_WATER` of the budget.

    Args:
        memory_bytes: memory for the tiles of the published variants.
        directory: the on-disk store (None: memory only).
        disk_bytes: size limit of the on-disk store.
        variant_bytes: memory for tiles of client-chosen variants (never written to disk).
    """

    def __init__(
        self,
        memory_bytes: int,
        directory: Path | None = None,
        disk_bytes: int = 1024 * 1024 * 1024,
        variant_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.memory_bytes = memory_bytes
        self.directory = directory
        self.disk_bytes = disk_bytes
        self._memory = _MemoryLru(memory_bytes)
        self._variants = _MemoryLru(variant_bytes)
        self.hits = 0
        self.misses = 0
        self._disk_found: int | None = None  # bytes on disk at the last scan (None: not scanned yet)
        self._written = 0  # bytes this worker wrote since that scan
        self._lock = threading.Lock()
        self._scanning = False
        self._scan_thread: threading.Thread | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self._memory.entries) + len(self._variants.entries)

    def get(self, key: CacheKey) -> CachedTile | None:
        entry = (self._variants if key.client_variant else self._memory).get(key)
        if entry is not None:
            self.hits += 1
            return entry
        if self.directory is not None and not key.client_variant:
            path = self.directory / key.relative_path()
            try:
                gzipped = path.read_bytes()
            except OSError:
                gzipped = None
            if gzipped is not None:
                with contextlib.suppress(OSError):
                    os.utime(path)  # recently used: evicted last
                entry = CachedTile(gzip.decompress(gzipped) if gzipped else b"", gzipped)
                self._memory.remember(key, entry)
                self.hits += 1
                return entry
        self.misses += 1
        return None

    def put(self, key: CacheKey, entry: CachedTile) -> None:
        if key.client_variant:
            self._variants.remember(key, entry)
            return
        self._memory.remember(key, entry)
        if self.directory is not None:
            path = self.directory / key.relative_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as tmp:
                tmp.write(entry.gzipped)
            os.replace(tmp.name, path)
            self._account(_BLOCK * -(-max(len(entry.gzipped), 1) // _BLOCK))

    def _account(self, written: int) -> None:
        with self._lock:
            self._written += written
            if not self._eviction_due() or self._scanning:
                return
            self._scanning = True
        self._scan_thread = threading.Thread(target=self._evict_in_background, name="tile-cache-evict", daemon=True)
        self._scan_thread.start()

    def _eviction_due(self) -> bool:
        """Whether the disk store may be over its budget (call with the lock held)."""
        if self._disk_found is None or self._disk_found + self._written > self.disk_bytes:
            return True
        return self._written > self.disk_bytes * RESCAN_FRACTION

    def _evict_in_background(self) -> None:
        """Evict until the estimate is within the budget (tiles written during a scan count)."""
        while True:
            try:
                self.evict()
            except Exception:  # a full or vanished directory must not kill tile serving
                logger.exception("tile cache eviction failed")
                with self._lock:
                    self._scanning = False
                return
            with self._lock:
                if not self._eviction_due():
                    self._scanning = False
                    return

    def evict(self) -> int:
        """Scan the disk store and delete its least recently used tiles until it holds at most
        :data:`LOW_WATER` of the budget (when over the budget); returns the bytes left."""
        with self._lock:
            written_before = self._written
        files = self._scan()
        total = sum(size for _, size, _ in files)
        if total > self.disk_bytes:
            files.sort()
            target = self.disk_bytes * LOW_WATER
            for _, size, path in files:
                if total <= target:
                    break
                _unlink(path)
                total -= size
        with self._lock:
            self._disk_found = total
            self._written -= written_before
        return total

    def _scan(self) -> list[tuple[float, int, str]]:
        """(mtime, allocated bytes, path) of every tile file in the store."""
        found: list[tuple[float, int, str]] = []
        pending = [str(self.directory)] if self.directory is not None else []
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.name.endswith(TILE_SUFFIX):
                        st = entry.stat(follow_symlinks=False)
                        # At least a block each: empty tiles cost an inode and a directory entry.
                        found.append((st.st_mtime, max(st.st_blocks * 512, st.st_size, _BLOCK), entry.path))
                except OSError:  # deleted meanwhile by another worker
                    continue
        return found

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

        def doomed(k: CacheKey) -> bool:
            return layer in k.layers and affected(k.z, k.x, k.y)

        dropped = self._memory.drop(doomed) + self._variants.drop(doomed)
        if self.directory is not None:
            self._invalidate_disk(layer, affected, top)
        return dropped

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
        self._memory.clear()
        self._variants.clear()
        if self.directory is not None:
            for entry in _scandirs(self.directory):
                shutil.rmtree(entry.path, ignore_errors=True)
            with self._lock:
                self._disk_found, self._written = 0, 0

    def clear_memory(self) -> None:
        """Forget the tiles held in memory (the disk store stays)."""
        self._memory.clear()
        self._variants.clear()


RESCAN_FRACTION = 0.05
"""A worker rescans the disk store after writing this fraction of its budget (others write too)."""
LOW_WATER = 0.9
"""Eviction deletes down to this fraction of the disk budget, so that scans stay rare."""
_BLOCK = 4096
"""Allocation unit assumed when counting a write (a scan then counts the real blocks)."""


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
