"""Tiles fail fast and degrade while PostgreSQL is unreachable, and recover by themselves.

The database is cut off for real: the service reaches it through ``tests.tcp_proxy``, which
resets the open connections and refuses new ones. Every request is made over HTTP to a real
uvicorn server with a client timeout (30 s): a request that hung (on the database, or on
the pool's connection wait, set here to minutes) fails; what is checked is what it answers
(stale tile with a Warning, 503 with Retry-After), never an elapsed time. The test that
edits during the outage does so in a scratch database of its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import mapbox_vector_tile
import morecantile
import psycopg
import pytest
import uvicorn

from gis_service import create_app
from tests.conftest import free_port, generalized_demo_database, make_settings, scratch_database_name
from tests.tcp_proxy import TcpProxy
from tests.test_health import _through_proxy

TMS = morecantile.tms.get("WebMercatorQuad")
CLIENT_TIMEOUT_S = 30.0
POOL_WAIT_S = 300.0  # the pool's connection wait, far beyond the client timeout: tiles must not wait for it


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@contextlib.contextmanager
def serving(app, port: int | None = None) -> Iterator[str]:
    """The app in a real uvicorn server (in a thread, lifespan included); yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def station_tile(db: psycopg.Connection, z: int, offset: int = 0) -> tuple[int, str, morecantile.Tile]:
    """A station (id, name) and the tile at zoom z holding it."""
    station_id, name, lon, lat = db.execute(
        "SELECT id, name, ST_X(geom), ST_Y(geom) FROM station ORDER BY id OFFSET %s LIMIT 1", [offset]
    ).fetchone()
    return station_id, name, TMS.tile(lon, lat, z)


def names_in(content: bytes) -> set[str]:
    tile = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return {f["properties"]["name"] for f in tile["station"]["features"]}


@pytest.fixture(scope="module")
def outage_url() -> str:
    """A private database for the test that edits while the service cannot see it."""
    return generalized_demo_database(scratch_database_name("outage"))


@pytest.fixture()
def outage_db(outage_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(outage_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def proxy(outage_url: str) -> Iterator[TcpProxy]:
    """A proxy to the database server (any of the cluster's databases is reached through it)."""
    target = urlsplit(outage_url)
    proxy = TcpProxy(target.hostname, target.port)
    proxy.enable()
    yield proxy
    proxy.disable()


def test_tiles_degrade_while_the_database_is_down_and_recover(
    outage_url: str, outage_db: psycopg.Connection, proxy: TcpProxy, tmp_path: Path
) -> None:
    settings = make_settings(
        _through_proxy(outage_url, proxy.port),
        db={"connect_timeout_s": POOL_WAIT_S},
        tiles={"cache_dir": tmp_path / "tiles"},
    )
    app = create_app(settings)
    db = outage_db
    station_id, name, cached = station_tile(db, 14)
    _, _, uncached = station_tile(db, 13, offset=3)
    cached_url = f"/tiles/station/14/{cached.x}/{cached.y}.pbf"
    uncached_url = f"/tiles/station/13/{uncached.x}/{uncached.y}.pbf"
    renamed = f"renamed during the outage {time.time()}"
    with serving(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as client:
        listener, engine = app.state.change_listener, app.state.tile_engine
        wait_until(listener.connected.is_set, "the change listener connected")
        fresh = client.get(cached_url)
        assert fresh.status_code == 200
        assert name in names_in(fresh.content)
        assert "warning" not in fresh.headers and "x-cache" not in fresh.headers
        try:
            proxy.disable()
            down = lambda: getattr(engine, "database_down", False) and not listener.connected.is_set()  # noqa: E731
            wait_until(down, "the outage noticed")
            # Changed meanwhile, straight in the database: no notification reaches the service.
            db.execute("UPDATE station SET name = %s WHERE id = %s", [renamed, station_id])

            stale = client.get(cached_url)  # a timeout here raises: the request did not answer in time
            assert stale.status_code == 200
            assert stale.headers["warning"] == '110 - "Response is Stale"'
            assert stale.headers["x-cache"] == "stale"
            assert stale.content == fresh.content
            revalidated = client.get(cached_url, headers={"If-None-Match": fresh.headers["etag"]})
            assert revalidated.status_code == 304 and revalidated.headers["x-cache"] == "stale"

            for url in (uncached_url, f"{cached_url}?properties=name", f"{cached_url}?filter=name%3D%27x%27"):
                missing = client.get(url)
                assert missing.status_code == 503, (url, missing.text)
                assert "unreachable" in missing.json()["detail"]
                assert int(missing.headers["retry-after"]) >= 1

            proxy.enable()
            # Back by itself; the tile cached before the outage is not served as fresh: it changed.
            wait_until(lambda: client.get(uncached_url).status_code in (200, 204), "uncached tiles render again")
            again = wait_until(
                lambda: (r := client.get(cached_url)).status_code == 200 and "x-cache" not in r.headers and r,
                "fresh tiles again",
            )
            assert renamed in names_in(again.content) and name not in names_in(again.content)
        finally:
            db.execute("UPDATE station SET name = %s WHERE id = %s", [name, station_id])


def test_the_fast_path_answers_a_database_error_itself(database_url: str, db: psycopg.Connection) -> None:
    """A plain tile request whose query fails (here: the statement timeout, while a lock holds
    the table) answers 503 JSON from the fast path, with one attempt only: it is not handed to
    the routed path to fail a second time (up to twice the statement timeout)."""
    settings = make_settings(database_url, db={"statement_timeout_ms": 300}, tiles={"cache_enabled": False})
    app = create_app(settings)
    _, _, tile = station_tile(db, 12)
    with serving(app) as base, httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as client:
        assert client.get(f"/tiles/station/12/{tile.x}/{tile.y}.pbf").status_code == 200
        engine = app.state.tile_engine
        attempts = 0
        original = engine._connect

        def counting():
            nonlocal attempts
            attempts += 1
            return original()

        engine._connect = counting
        with psycopg.connect(database_url) as locker, locker.transaction():
            locker.execute("LOCK TABLE station IN ACCESS EXCLUSIVE MODE")
            blocked = client.get(f"/tiles/station/12/{tile.x}/{tile.y}.pbf")
        assert blocked.status_code == 503, blocked.text
        assert blocked.headers["content-type"] == "application/json"
        assert "statement timeout" in blocked.json()["detail"]
        assert blocked.headers["retry-after"]
        assert attempts == 1, f"the tile was attempted {attempts} times"
        unknown = client.get("/tiles/nope/12/0/0.pbf")  # not the fast path's: the route's 404
        assert unknown.status_code == 404 and "valid layers" in unknown.json()["detail"]
