"""A real Varnish in front of the service (deploy/varnish/ecomap.vcl): public tiles are cached,
requests with credentials are not, a committed change bans exactly the tiles it touched, and
cached tiles keep being served while the database is down.

Varnish (Debian's ``varnish``, installed by ``scripts/bootstrap.sh --test``) runs in the
foreground with a work directory of its own; its backend is a real uvicorn server of the
service whose ``http_cache.purge_urls`` points back at it. What is asserted is what the
tiles hold (decoded) and the cache's ``X-Edge-Cache`` header, never an elapsed time.
"""

from __future__ import annotations

import contextlib
import gzip
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import mapbox_vector_tile
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.edge import nginx, varnish
from gis_service import create_app
from gis_service.scaleout.purge import CachePurger, range_pattern, tile_url_pattern
from layers.catalog import load_catalog
from tests.conftest import demo_database, free_port, make_settings, scratch_database_name
from tests.tcp_proxy import TcpProxy
from tests.test_degrade import TMS, names_in, serving, station_tile, wait_until
from tests.test_health import _through_proxy


@given(st.integers(0, 300_000), st.integers(0, 3_000), st.integers(0, 400_000))
def test_range_pattern_matches_exactly_the_range(low: int, width: int, probe: int) -> None:
    high = low + width
    pattern = re.compile(f"^{range_pattern(low, high)}$")
    for value in (probe, low - 1, low, high, high + 1, (low + high) // 2):
        if value >= 0:
            assert bool(pattern.match(str(value))) == (low <= value <= high), (low, high, value)
    assert not pattern.match(f"0{low}"), "a leading zero must not match"


def test_ban_pattern_names_the_changed_tiles_and_no_others() -> None:
    purger = CachePurger([], load_catalog())
    bbox = (118.10, 24.48, 118.12, 24.50)  # a small change on Xiamen Island
    pattern = re.compile(purger.pattern("station", bbox, 16))
    for z in (0, 8, 12, 14, 16):
        inside = TMS.tile(118.11, 24.49, z)
        assert pattern.match(f"/tiles/station/{z}/{inside.x}/{inside.y}.pbf")
        assert pattern.match(f"/tiles/redline,station,river/{z}/{inside.x}/{inside.y}.pbf?revision=2")
        assert pattern.match(f"/ogc/collections/station/tiles/WebMercatorQuad/{z}/{inside.y}/{inside.x}")
        assert not pattern.match(f"/tiles/stations/{z}/{inside.x}/{inside.y}.pbf")
        assert not pattern.match(f"/tiles/redline/{z}/{inside.x}/{inside.y}.pbf")
    far = TMS.tile(118.30, 24.70, 16)  # Tong'an, far from the change
    assert not pattern.match(f"/tiles/station/16/{far.x}/{far.y}.pbf")
    assert not pattern.match(f"/tiles/station/17/{TMS.tile(118.11, 24.49, 17).x}/0.pbf"), "above maxzoom"
    everything = re.compile(purger.pattern("station", None, None))
    assert everything.match(f"/tiles/river,station/17/{far.x}/{far.y}.pbf")
    assert not everything.match("/tiles/station.json") and not everything.match("/ogc/collections/station/items")
    assert tile_url_pattern("river", None) != tile_url_pattern("station", None)


@pytest.fixture(scope="module")
def cache_db_url() -> str:
    """A private demo database: the tests edit stations."""
    return demo_database(scratch_database_name("http_cache"))


def get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + path, headers=headers, timeout=30)


def test_varnish_caches_public_tiles_and_a_change_bans_exactly_its_tiles(cache_db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(cache_db_url, autocommit=True) as db:
        station_id, name, tile = station_tile(db, 16)
        _, far_name, far = station_tile(db, 16, offset=40)
        assert (far.x, far.y) != (tile.x, tile.y)
        path = f"/tiles/station/{tile.z}/{tile.x}/{tile.y}.pbf"
        far_path = f"/tiles/station/{far.z}/{far.x}/{far.y}.pbf"
        app_port = free_port()
        with varnish(app_port, tmp_path / "varnish") as edge:
            settings = make_settings(cache_db_url, http_cache={"purge_urls": [edge + "/"]}, hj212={"enabled": False})
            with serving(create_app(settings), port=app_port):
                first, again = get(edge, path), get(edge, path)
                assert (first.headers["x-edge-cache"], again.headers["x-edge-cache"]) == ("MISS", "HIT")
                assert name in names_in(again.content) and again.content == first.content
                assert get(edge, far_path).headers["x-edge-cache"] == "MISS"
                assert far_name in names_in(get(edge, far_path).content)
                # A cookie that is not a session is dropped and the shared copy served; credentials pass.
                assert get(edge, path, Cookie="ecomap_csrf=x").headers["x-edge-cache"] == "HIT"
                refused = get(edge, path, Authorization="Bearer not-a-token")
                assert refused.status_code == 401 and refused.headers["x-edge-cache"] == "MISS"
                assert refused.json()["detail"]

                db.execute("UPDATE station SET name = %s WHERE id = %s", ["已改名站", station_id])

                def renamed() -> bool:
                    return "已改名站" in names_in(get(edge, path).content)

                wait_until(renamed, "the changed tile fresh through Varnish")
                assert get(edge, path).headers["x-edge-cache"] == "HIT", "the fresh tile is cached again"
                untouched = get(edge, far_path)
                assert untouched.headers["x-edge-cache"] == "HIT", "a tile the change did not touch stays cached"
                assert far_name in names_in(untouched.content)
        db.execute("UPDATE station SET name = %s WHERE id = %s", [name, station_id])


def test_varnish_serves_cached_tiles_while_the_database_is_down(cache_db_url: str, tmp_path: Path) -> None:
    """With a 1 s TTL, a tile past its TTL is still served (grace) while the service cannot
    render it: the background revalidation's 503 is abandoned, the cached copy kept."""
    target = urlsplit(cache_db_url)
    proxy = TcpProxy(target.hostname, target.port)
    proxy.enable()
    try:
        with psycopg.connect(cache_db_url, autocommit=True) as db:
            _, name, tile = station_tile(db, 15, offset=7)
        path = f"/tiles/station/{tile.z}/{tile.x}/{tile.y}.pbf"
        app_port = free_port()
        settings = make_settings(
            _through_proxy(cache_db_url, proxy.port),
            tiles={"cache_enabled": False},
            db={"connect_timeout_s": 1},
            hj212={"enabled": False},
        )
        with varnish(app_port, tmp_path / "varnish", ttl="1s") as edge, serving(create_app(settings), port=app_port):
            assert name in names_in(get(edge, path).content)
            proxy.disable()  # the database is gone for the service
            direct = f"http://127.0.0.1:{app_port}{path}"
            wait_until(lambda: httpx.get(direct, timeout=30).status_code == 503, "the service refusing the tile")

            def served_from_grace() -> bool:
                served = get(edge, path)
                assert served.status_code == 200 and name in names_in(served.content)
                return int(served.headers["age"]) >= 2  # past its 1 s TTL, yet served

            wait_until(served_from_grace, "the cached tile served past its TTL")
    finally:
        proxy.disable()


def test_no_stale_tile_from_varnish_nginx_or_any_instance_after_an_edit(cache_db_url: str, tmp_path: Path) -> None:
    """Two instances behind nginx behind Varnish: after an edit, each instance and the cache
    in front serve the new tile."""
    with psycopg.connect(cache_db_url, autocommit=True) as db:
        station_id, name, tile = station_tile(db, 14, offset=3)
        path = f"/tiles/station/{tile.z}/{tile.x}/{tile.y}.pbf"
        ports = [free_port(), free_port()]
        with contextlib.ExitStack() as stack:
            nginx_port = stack.enter_context(nginx(ports, tmp_path / "nginx"))
            edge = stack.enter_context(varnish(nginx_port, tmp_path / "varnish"))
            settings = make_settings(cache_db_url, http_cache={"purge_urls": [edge + "/"]}, hj212={"enabled": False})
            instances = [stack.enter_context(serving(create_app(settings), port=port)) for port in ports]
            for base in instances:  # every instance's own cache holds the tile
                assert name in names_in(get(base, path).content) and name in names_in(get(base, path).content)
            assert name in names_in(get(edge, path).content)
            assert get(edge, path).headers["x-edge-cache"] == "HIT"

            db.execute("UPDATE station SET name = %s WHERE id = %s", ["两实例改名站", station_id])

            def fresh_everywhere() -> bool:
                return all("两实例改名站" in names_in(get(base, path).content) for base in [*instances, edge])

            wait_until(fresh_everywhere, "the new tile from every instance and through Varnish")
            via_nginx = [get(f"http://127.0.0.1:{nginx_port}", path) for _ in range(4)]
            assert all("两实例改名站" in names_in(r.content) for r in via_nginx)
        db.execute("UPDATE station SET name = %s WHERE id = %s", [name, station_id])


def test_a_pmtiles_archive_is_served_through_varnish_by_range_requests(cache_db_url: str, tmp_path: Path) -> None:
    """A public layer exported as PMTiles (``ecomap tiles export``) and served from the archive
    directory: Varnish fetches the file once and answers the clients' range requests (206) from
    its copy; the ranges hold the archive's bytes and its tiles read back as the live ones."""
    import os
    import subprocess
    import sys

    from pmtiles.reader import Reader

    export = [sys.executable, "-m", "gis_service.cli", "tiles", "export"]
    archives = tmp_path / "archives"
    archives.mkdir()
    out = archives / "public.pmtiles"
    done = subprocess.run(
        [*export, str(out), "--layers", "district", "--minzoom", "8", "--maxzoom", "9"],
        env={**os.environ, "ECOMAP_DATABASE_URL": cache_db_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    whole = out.read_bytes()
    app_port = free_port()
    settings = make_settings(cache_db_url, tiles={"archive_dir": archives}, hj212={"enabled": False})
    with varnish(app_port, tmp_path / "varnish") as edge, serving(create_app(settings), port=app_port):
        first = get(edge, "/archives/public.pmtiles", Range="bytes=0-126")
        again = get(edge, "/archives/public.pmtiles", Range="bytes=0-126")
        assert (first.status_code, again.status_code) == (206, 206)
        assert (first.headers["x-edge-cache"], again.headers["x-edge-cache"]) == ("MISS", "HIT")
        assert first.content == again.content == whole[:127]
        assert again.headers["content-range"] == f"bytes 0-126/{len(whole)}"
        # The service sends the file as stored (not gzipped: ranges are offsets into the file).
        direct = get(f"http://127.0.0.1:{app_port}", "/archives/public.pmtiles", Range="bytes=0-126")
        assert direct.status_code == 206 and "content-encoding" not in direct.headers
        assert direct.content == whole[:127]

        def read(offset: int, length: int) -> bytes:  # the pmtiles reader, over HTTP through Varnish
            reply = get(edge, "/archives/public.pmtiles", Range=f"bytes={offset}-{offset + length - 1}")
            assert reply.status_code == 206 and reply.headers["x-edge-cache"] == "HIT"
            return reply.content

        tile = TMS.tile(118.1, 24.6, 9)
        archived = Reader(read).get(9, tile.x, tile.y)
        live = get(f"http://127.0.0.1:{app_port}", f"/tiles/district/9/{tile.x}/{tile.y}.pbf")
        assert archived is not None
        assert mapbox_vector_tile.decode(gzip.decompress(archived) if archived[:2] == b"\x1f\x8b" else archived) == (
            mapbox_vector_tile.decode(live.content)
        )
        served = get(edge, f"/archives/public/9/{tile.x}/{tile.y}.pbf")
        assert (
            served.status_code == 200
            and get(edge, f"/archives/public/9/{tile.x}/{tile.y}.pbf").headers["x-edge-cache"] == "HIT"
        )
