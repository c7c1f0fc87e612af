"""The tile cache stays within its budgets: the disk store evicts its least recently used
tiles, and client-chosen variants (filters, property lists, revisions) never reach the disk."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from gis_service import create_app
from tests.conftest import make_settings
from tests.test_tile_engine import feature_tile, wait_for
from tiles.cache import CachedTile, CacheKey, TileCache

KB = 1024


def du(directory: Path) -> int:
    """Bytes the files under a directory occupy, as ``du`` counts them (allocated blocks)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except FileNotFoundError:  # evicted meanwhile
                continue
            total += max(st.st_blocks * 512, st.st_size)
    return total


def tile_files(directory: Path) -> list[str]:
    return [name for _, _, files in os.walk(directory) for name in files if name.endswith(".mvt.gz")]


def random_tile(rng: random.Random, size: int) -> CachedTile:
    return CachedTile(rng.randbytes(size))  # incompressible: the gzip file is as large


def test_the_disk_store_keeps_within_its_budget_and_evicts_least_recently_used(tmp_path: Path) -> None:
    budget = 400 * KB
    cache = TileCache(0, tmp_path, disk_bytes=budget)  # no memory: every hit is read from disk
    rng = random.Random(13)  # noqa: S311 - test data, not secrets
    keys = [CacheKey(("station",), 14, x, 7000) for x in range(300)]
    for i, key in enumerate(keys):
        cache.put(key, random_tile(rng, 6 * KB))
        if i == 20:
            old = os.stat(tmp_path / keys[0].relative_path()).st_mtime
            wait_for(lambda old=old: time.time() > old + 0.05)  # later writes have a later mtime
    assert 4 * budget < 300 * 6 * KB, "more is written than the budget holds"
    wait_for(lambda: du(tmp_path) <= budget, what="the disk store never shrank to its budget")
    assert cache.evict() <= budget
    assert du(tmp_path) <= budget
    # The most recently written tiles are still served (from disk, byte for byte).
    assert cache.get(keys[-1]) is not None
    assert cache.get(keys[0]) is None, "the oldest tiles were evicted first"
    kept = {k for k in keys if (tmp_path / k.relative_path()).exists()}
    assert len(kept) >= budget * 0.5 // (8 * KB), f"only {len(kept)} tiles kept"
    assert set(keys[-10:]) <= kept, "the newest tiles are kept"
    assert not kept & set(keys[:21]), "the tiles written before the others went first"


def test_empty_tiles_count_too(tmp_path: Path) -> None:
    """An empty tile is an empty file: it takes no data block but an inode and a directory
    entry, so each counts as a block; addresses at random cannot pile up files."""
    cache = TileCache(0, tmp_path, disk_bytes=40 * KB)
    for y in range(200):
        cache.put(CacheKey(("bay",), 16, 1, y), CachedTile(b""))
        if y == 99:  # the second hundred is younger, whatever the file system's clock granularity
            started = time.time()
            wait_for(lambda started=started: time.time() > started + 0.05)
    wait_for(lambda: len(tile_files(tmp_path)) <= 10, what="empty tiles were never evicted down to the budget")
    kept = [int(name.split(".")[0]) for name in tile_files(tmp_path)]
    assert kept and min(kept) >= 100, "the oldest went first"
    hit = cache.get(CacheKey(("bay",), 16, 1, kept[0]))
    assert hit is not None and hit.data == b"", "a kept empty tile is still a hit"


def test_reading_a_tile_from_disk_keeps_it(tmp_path: Path) -> None:
    """Recently *used* comes first: a tile read from disk outlives tiles written after it."""
    budget = 200 * KB
    cache = TileCache(0, tmp_path, disk_bytes=budget * 10)  # no eviction while filling
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    keys = [CacheKey(("river",), 13, x, 3500) for x in range(60)]
    for key in keys:
        cache.put(key, random_tile(rng, 6 * KB))
    newest = os.stat(tmp_path / keys[-1].relative_path()).st_mtime
    wait_for(lambda: time.time() > newest + 0.05)
    favourite = keys[0]
    assert cache.get(favourite) is not None  # read: now the most recently used
    cache.disk_bytes = budget
    cache.evict()
    assert du(tmp_path) <= budget
    assert (tmp_path / favourite.relative_path()).exists()
    assert not (tmp_path / keys[1].relative_path()).exists()


def test_random_filters_do_not_grow_the_disk_store(database_url: str, db: psycopg.Connection, tmp_path: Path) -> None:
    """Every filter is a new variant: they are kept in a small memory budget of their own,
    never on disk; the published tiles still are."""
    store = tmp_path / "tiles"
    settings = make_settings(database_url, tiles={"cache_dir": store, "cache_variant_mb": 1, "cache_disk_mb": 64})
    with TestClient(create_app(settings)) as client:
        wait_for(client.app.state.change_listener.connected.is_set, what="the change listener never connected")
        engine = client.app.state.tile_engine
        t = feature_tile(db, "redline", 1, 11)
        url = f"/tiles/redline/11/{t.x}/{t.y}.pbf"
        assert client.get(url).status_code == 200
        published = tile_files(store)
        assert len(published) == 1
        rng = random.Random(3)  # noqa: S311 - test data, not secrets
        for _ in range(60):
            response = client.get(url, params={"filter": f"area_km2 > {rng.uniform(0, 5):.6f}"})
            assert response.status_code in (200, 204)
            client.get(url, params={"properties": f"name,code{',area_km2' * rng.randint(0, 1)}"})
        assert tile_files(store) == published, "client-chosen variants were written to disk"
        hits = engine.cache.hits
        again = client.get(url, params={"filter": "area_km2 > 1"})
        same = client.get(url, params={"filter": "area_km2 > 1"})
        assert same.content == again.content
        assert engine.cache.hits == hits + 1, "a repeated variant is served from the memory budget"
        assert engine.cache.disk_bytes == 64 * 1024 * 1024  # ECOMAP_TILES__CACHE_DISK_MB
