"""/healthz reports the database, goes 503 while it is unreachable and recovers by itself."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from fastapi.testclient import TestClient

from gis_service import create_app
from tests.conftest import make_settings
from tests.tcp_proxy import TcpProxy


def _through_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@127.0.0.1:{port}"))


def _poll(client: TestClient, status: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = client.get("/healthz")
        if last.status_code == status:
            return last.json()
        time.sleep(0.25)
    raise AssertionError(f"/healthz did not answer {status} within {timeout} s; last: {last.status_code} {last.text}")


def test_healthz_reports_versions(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["postgis"].startswith("3.")
    assert body["database"]["migration"] is not None


def test_healthz_down_and_back(database_url: str) -> None:
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname, target.port)
    proxy.enable()
    settings = make_settings(_through_proxy(database_url, proxy.port))
    with TestClient(create_app(settings)) as client:
        assert _poll(client, 200)["database"]["status"] == "ok"
        proxy.disable()
        down = _poll(client, 503)
        assert down["status"] == "unavailable"
        assert "unreachable" in down["database"]["detail"]
        # Other endpoints say so too, with a 503 rather than a 500.
        layers = client.get("/api/layers")
        assert layers.status_code == 503, layers.text
        proxy.enable()
        assert _poll(client, 200)["status"] == "ok"
        assert client.get("/api/layers").status_code == 200
    proxy.disable()


def test_schema_behind_the_code_is_a_clear_503(tmp_path) -> None:
    """A database not migrated to this version: /healthz says which migration it is at and
    how to migrate; requests that need the new schema answer 503 with that advice, not 500."""
    from layers import db as layer_db
    from layers.db import head_revision
    from tests.conftest import recreate_database, scratch_database_name

    url = recreate_database(scratch_database_name("schema_behind"))
    layer_db.upgrade(url, "0007")
    with TestClient(create_app(make_settings(url, tiles={"cache_dir": tmp_path / "tiles"}))) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        database = health.json()["database"]
        assert database["migration"] == "0007"
        assert database["expected_migration"] == head_revision() != "0007"
        assert "ecomap setup" in database["detail"]
        tile = client.get("/tiles/redline/10/856/441.pbf")
        assert tile.status_code == 503, tile.text
        assert "ecomap setup" in tile.json()["detail"]
