"""Reads on a real streaming replica and the freshness rule (gis_service/scaleout/replicas.py).

The suite starts a primary and a replica of its own (``scripts/pgcluster.sh replica-start``
with ``ECOMAP_PG_BASE``: ``pg_basebackup -R`` of a small cluster, not of the suite's shared
one), serves tiles and OGC features with the replica as a read replica, then pauses the
replica's replay, edits a red line on the primary and checks that no read returns the old
feature although the replica still holds it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.settings import DatabaseSettings, TileSettings
from layers import db as layer_db
from tests.conftest import free_port, make_settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pgcluster.sh"
LON, LAT, ZOOM = 118.05, 24.62, 15
TILE = morecantile.tms.get("WebMercatorQuad").tile(LON, LAT, ZOOM)
URL = f"/tiles/redline/{ZOOM}/{TILE.x}/{TILE.y}.pbf"


class Pair:
    """A primary and its streaming replica, started by the project's script."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ecomap-replica-test-", dir="/var/tmp"))
        self.base.chmod(0o755)  # the server's user (postgres when run as root) must enter it
        self.env = {
            **os.environ,
            "ECOMAP_PG_BASE": str(self.base / "cluster"),
            "ECOMAP_PG_PORT": str(free_port()),
            "ECOMAP_PG_REPLICA_PORT": str(free_port()),
        }

    def script(self, *args: str) -> str:
        done = subprocess.run([str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"pgcluster.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout.strip()

    def url(self, kind: str) -> str:
        return self.script(kind, "ecomap")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    pair = Pair()
    try:
        pair.script("replica-start")
        owner = pair.url("url")
        layer_db.upgrade(owner)
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO redline (code, name, function_type, domain, geom)"
                " VALUES ('T-1', 'before', '水源涵养', '陆域',"
                " ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.001)))",
                [LON, LAT],
            )
        _wait_replayed(pair, "before")
        yield pair
    finally:
        subprocess.run([str(SCRIPT), "replica-drop"], env=pair.env, capture_output=True, timeout=120)
        subprocess.run([str(SCRIPT), "stop"], env=pair.env, capture_output=True, timeout=120)
        shutil.rmtree(pair.base, ignore_errors=True)


def _replica_name(pair: Pair) -> str | None:
    with psycopg.connect(pair.url("replica-url"), autocommit=True) as conn:
        row = conn.execute("SELECT name FROM redline WHERE code = 'T-1'").fetchone()
    return row[0] if row else None


def _wait_replayed(pair: Pair, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _replica_name(pair) != name:
        assert time.monotonic() < deadline, f"the replica did not replay {name!r} within {timeout} s"
        time.sleep(0.1)


def _tile_name(client: TestClient) -> str:
    response = client.get(URL)
    assert response.status_code == 200, response.text
    features = mapbox_vector_tile.decode(response.content)["redline"]["features"]
    assert len(features) == 1
    return features[0]["properties"]["name"]


def _reads(client: TestClient) -> dict[str, int]:
    health = client.get("/healthz").json()
    assert health["status"] == "ok", health
    return health["replicas"]["reads"]


def _settled(client: TestClient, timeout: float = 10.0) -> None:
    """Until the router knows the position of every change notified so far."""
    deadline = time.monotonic() + timeout
    while client.get("/healthz").json()["replicas"]["holding"]:
        assert time.monotonic() < deadline, "the primary's WAL position was never read"
        time.sleep(0.05)


@pytest.fixture()
def client(pair: Pair) -> Iterator[TestClient]:
    settings = make_settings(
        pair.url("web-url"),
        tiles=TileSettings(cache_enabled=False),  # every tile rendered
        db=DatabaseSettings(replica_urls=[pair.url("replica-web-url")]),
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 10
        while not client.app.state.change_listener.connected.is_set():
            assert time.monotonic() < deadline, "the change listener never connected"
            time.sleep(0.05)
        _settled(client)
        yield client


def test_reads_go_to_a_replica_that_has_replayed_every_change(client: TestClient, pair: Pair) -> None:
    before = _reads(client)
    assert _tile_name(client) == "before"
    item = client.get("/ogc/collections/redline/items", params={"code": "T-1"})
    assert item.status_code == 200 and item.json()["features"][0]["properties"]["name"] == "before"
    after = _reads(client)
    assert after["replica"] >= before["replica"] + 2 and after["primary"] == before["primary"]


def test_a_lagging_replica_never_serves_what_a_change_replaced(client: TestClient, pair: Pair) -> None:
    owner = pair.url("url")
    with psycopg.connect(pair.url("replica-url"), autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            engine = client.app.state.tile_engine
            generation = engine._generation["redline"]
            with psycopg.connect(owner, autocommit=True) as conn:
                conn.execute("UPDATE redline SET name = 'after' WHERE code = 'T-1'")
            deadline = time.monotonic() + 10
            while engine._generation["redline"] == generation:  # the change event has been applied
                assert time.monotonic() < deadline, "the change was never notified"
                time.sleep(0.02)
            _settled(client)
            before = _reads(client)
            assert _replica_name(pair) == "before"  # the replica really lags: it still holds the old row
            assert _tile_name(client) == "after"
            item = client.get("/ogc/collections/redline/items", params={"code": "T-1"})
            assert item.json()["features"][0]["properties"]["name"] == "after"
            after = _reads(client)
            assert after["behind"] >= before["behind"] + 2 and after["replica"] == before["replica"]
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    _wait_replayed(pair, "after")
    before = _reads(client)
    assert _tile_name(client) == "after"
    assert _reads(client)["replica"] == before["replica"] + 1  # caught up: the replica serves again


def test_an_unreachable_replica_is_skipped(client: TestClient, pair: Pair) -> None:
    pair.script("replica-stop")
    try:
        names = {_tile_name(client) for _ in range(3)}
        assert len(names) == 1  # answered (by the primary), never an error
        assert client.get("/ogc/collections/redline/items", params={"code": "T-1"}).status_code == 200
    finally:
        pair.script("replica-start")
