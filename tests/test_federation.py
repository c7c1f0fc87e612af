"""Federation: a partner instance of this service shares its red lines; we copy them as a remote layer.

The partner is the real service in a uvicorn subprocess over a database of its own (five red
lines near the Xiamen–Zhangzhou border, its red-line layer internal, read with a partner
key). Our side is an app over another scratch database, with the remote layer declared in a
directory of its own. Refused answers (HTTP 500, a bad geometry) come from a plain HTTP
server serving fixed bytes: a partner that misbehaves, not a stand-in for one that works.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mapbox_vector_tile
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.access.keys import create_key
from gis_service.federation.config import RemoteLayer, load_remote_layers
from gis_service.federation.refresh import RefreshResult, http_client, refresh_layer
from gis_service.settings import FederationSettings
from layers import db as layer_db
from layers.catalog import CATALOG_DIR
from tests.conftest import (
    make_settings,
    recreate_database,
    run_async,
    scratch_database_name,
    serving,
    web_url,
)
from tests.test_access import access_settings, add_user, bearer, sign_in, wait_for
from tiles.grid import lonlat_to_tile_fraction

KEY_ENV = "ECOMAP_TEST_ZHANGZHOU_KEY"
SQUARES = [(117.80 + 0.012 * i, 24.45) for i in range(5)]
"""South-west corners of the partner's five red lines (0.01° squares), inside both Zhangzhou's
and Xiamen's region boxes."""


def _square(x: float, y: float) -> str:
    return shapely.MultiPolygon([shapely.box(x, y, x + 0.01, y + 0.01)]).wkt


@pytest.fixture(scope="module")
def partner_db() -> str:
    url = recreate_database(scratch_database_name("fed_partner"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for i, (x, y) in enumerate(SQUARES, start=1):
            conn.execute(
                "INSERT INTO redline (id, code, name, function_type, domain, area_km2, geom)"
                " VALUES (%s, %s, %s, '水源涵养', '陆域', 1.1, ST_GeomFromText(%s, 4326))",
                [i, f"ZZ-{i:03d}", f"漳州红线{i}", _square(x, y)],
            )
    return url


@pytest.fixture(scope="module")
def partner(partner_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The partner service; its red lines are internal (read here with a partner key)."""
    catalog = tmp_path_factory.mktemp("partner-catalog")
    for path in CATALOG_DIR.glob("*.yaml"):
        shutil.copy(path, catalog / path.name)
    redline = catalog / "redline.yaml"
    redline.write_text(redline.read_text(encoding="utf-8") + "\naccess: {class: internal}\n", encoding="utf-8")
    log = tmp_path_factory.mktemp("partner") / "server.log"
    with serving(partner_db, log, ECOMAP_CATALOG_DIR=str(catalog), ECOMAP_REGION="zhangzhou") as base:
        yield base


@pytest.fixture(scope="module")
def partner_key(partner_db: str) -> str:
    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(partner_db, autocommit=True) as conn:
            _, secret = await create_key(
                conn, name="xiamen-federation", role="partner", created_by="test-suite", layers=["redline"]
            )
            return secret

    return run_async(create())


@pytest.fixture(scope="module")
def our_db() -> str:
    url = recreate_database(scratch_database_name("fed_ours"))
    layer_db.upgrade(url)
    return url


def _declaration(partner: str, **changes: object) -> str:
    doc = {
        "id": "zz_redline",
        "title": {"zh": "漳州生态保护红线", "en": "Zhangzhou red lines"},
        "partner": {"zh": "漳州市", "en": "Zhangzhou"},
        "url": f"{partner}/ogc/collections/redline/items?limit=2",  # three pages of two
        "api_key_env": KEY_ENV,
        "refresh_s": 3600,
        "geometry_type": "MultiPolygon",
        "region": "zhangzhou",
        "properties": [
            {"name": "code", "type": "string", "title": {"zh": "编号", "en": "Code"}, "required": True},
            {"name": "name", "type": "string", "title": {"zh": "名称", "en": "Name"}, "required": True},
            {"name": "area_km2", "type": "number", "title": {"zh": "面积", "en": "Area (km²)"}},
        ],
        **changes,
    }
    return json.dumps(doc, ensure_ascii=False)  # JSON is YAML


@pytest.fixture(scope="module")
def remote_dir(partner: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("remote-layers")
    (directory / "zz_redline.yaml").write_text(_declaration(partner), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def ours(our_db: str, remote_dir: Path, partner_key: str) -> Iterator[TestClient]:
    """Our service (no scheduled refreshes: the tests refresh by hand), with the partner key in its environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, partner_key)
        settings = make_settings(
            our_db,
            access=access_settings(),
            federation=FederationSettings(dir=remote_dir, refresh_enabled=False),
        )
        with TestClient(create_app(settings)) as client:
            yield client


@pytest.fixture(scope="module")
def manager(ours: TestClient, our_db: str) -> dict[str, str]:
    login, password = add_user(our_db, "data_manager")
    return bearer(sign_in(ours, login, password)["access_token"])


def _refresh(our_db: str, remote: RemoteLayer, force: bool = False, **limits: int) -> RefreshResult:
    settings = FederationSettings(**limits)

    async def run() -> RefreshResult:
        async with (
            await psycopg.AsyncConnection.connect(web_url(our_db), autocommit=True) as conn,
            http_client(settings) as client,
        ):
            return await refresh_layer(conn, client, remote, settings, "xiamen", force=force)

    return run_async(run())


def _copy(db: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """Our copy: id -> (name, geometry WKT)."""
    rows = db.execute("SELECT id, props->>'name', ST_AsText(geom) FROM remote_feature WHERE layer = 'zz_redline'")
    return {fid: (name, wkt) for fid, name, wkt in rows}


def _partner_items(partner: str, key: str) -> dict[int, dict]:
    import httpx

    response = httpx.get(f"{partner}/ogc/collections/redline/items", headers={"X-API-Key": key}, timeout=30)
    assert response.status_code == 200, response.text
    return {f["id"]: f for f in response.json()["features"]}


def _state(db: psycopg.Connection) -> dict:
    cursor = db.execute("SELECT * FROM remote_layer_state WHERE layer = 'zz_redline'")
    names = [c.name for c in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


@contextlib.contextmanager
def misbehaving_partner(status: int, body: bytes) -> Iterator[str]:
    """A plain HTTP server answering every GET with ``status`` and ``body``; yields its items URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/collections/redline/items"
    finally:
        server.shutdown()
        server.server_close()


def _tile_names(client: TestClient, headers: dict[str, str], z: int = 16) -> set[str]:
    x, y = SQUARES[2]
    tx, ty = (int(v) for v in lonlat_to_tile_fraction(x + 0.005, y + 0.005, z))
    response = client.get(f"/tiles/zz_redline/{z}/{tx}/{ty}.pbf", headers=headers)
    assert response.status_code in (200, 204), response.text
    if response.status_code == 204:
        return set()
    decoded = mapbox_vector_tile.decode(response.content)
    return {f["properties"]["name"] for f in decoded["zz_redline"]["features"]}


def test_a_partner_collection_is_copied_refreshed_and_refused_when_invalid(
    ours: TestClient, manager: dict[str, str], our_db: str, partner: str, partner_key: str, remote_dir: Path
) -> None:
    remote = load_remote_layers(remote_dir)[0]
    with psycopg.connect(our_db, autocommit=True) as db, psycopg.connect(partner_db_url(), autocommit=True) as pdb:
        # Without the key the partner refuses (its red lines are internal): recorded, nothing copied.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(KEY_ENV, "ek_wrong")
            refused = _refresh(our_db, remote)
        assert refused.outcome == "failed" and "HTTP 401" in refused.error
        assert _copy(db) == {} and _state(db)["last_error"].startswith(refused.error[:40])

        # First fetch, through the admin API: every partner feature, paged by `next` links.
        answer = ours.post("/api/federation/layers/zz_redline/refresh", headers=manager)
        assert answer.status_code == 200, answer.text
        first = answer.json()
        assert first["outcome"] == "updated" and first["pages"] == 3 and first["inserted"] == 5
        items = _partner_items(partner, partner_key)
        copy = _copy(db)
        assert set(copy) == set(items)
        for fid, feature in items.items():
            assert copy[fid][0] == feature["properties"]["name"]
            assert shapely.from_wkt(copy[fid][1]).equals(shapely.geometry.shape(feature["geometry"]))
        state = _state(db)
        assert state["feature_count"] == 5 and state["etag"].startswith('W/"') and state["last_error"] is None
        assert _tile_names(ours, manager) == {"漳州红线3"}

        # Second fetch: 304 Not Modified, nothing written, only the check time moves.
        revision = db.execute("SELECT revision FROM layer_state WHERE layer = 'zz_redline'").fetchone()[0]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(KEY_ENV, partner_key)
            again = _refresh(our_db, remote)
        assert again.outcome == "unchanged" and again.pages == 0  # the 304: no page read
        later = _state(db)
        assert later["checked_at"] > state["checked_at"] and later["changed_at"] == state["changed_at"]
        assert db.execute("SELECT revision FROM layer_state WHERE layer = 'zz_redline'").fetchone()[0] == revision

        # An edit on the partner: a new ETag, one row replaced, and our tile shows it.
        pdb.execute("UPDATE redline SET name = '漳州红线3（调整）' WHERE id = 3")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(KEY_ENV, partner_key)
            edited = _refresh(our_db, remote)
            assert (edited.outcome, edited.inserted, edited.deleted) == ("updated", 1, 1)
            assert _state(db)["etag"] != later["etag"]
            assert _copy(db)[3][0] == "漳州红线3（调整）"
            edited = {"漳州红线3（调整）"}
            wait_for(lambda: _tile_names(ours, manager) == edited, what="the tile to show the partner's edit")
            kept = _copy(db)

            # Refused: too many features, a schema without a required property, HTTP 500, a bad geometry.
            too_many = _refresh(our_db, remote, force=True, max_features=4)
            assert too_many.outcome == "failed" and "more than 4 features" in too_many.error
            renamed = [
                *remote.properties[:2],
                remote.properties[2].model_copy(update={"required": True, "name": "zone_code"}),
            ]
            schema = _refresh(our_db, remote.model_copy(update={"properties": renamed}))
            assert schema.outcome == "failed" and "zone_code" in schema.error
            with misbehaving_partner(500, b'{"detail": "database down"}') as url:
                broken = _refresh(our_db, remote.model_copy(update={"url": url}))
            assert broken.outcome == "failed" and "HTTP 500" in broken.error and "database down" in broken.error
            bowtie = {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": 1,
                        "properties": {"code": "ZZ-001", "name": "坏图形"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[117.8, 24.45], [117.81, 24.46], [117.81, 24.45], [117.8, 24.46], [117.8, 24.45]]
                            ],
                        },
                    }
                ],
            }
            with misbehaving_partner(200, json.dumps(bowtie).encode()) as url:
                bad = _refresh(our_db, remote.model_copy(update={"url": url}))
            assert bad.outcome == "failed" and "invalid geometry" in bad.error
            assert any(f["code"] == "invalid_geometry" for f in bad.findings)
        assert _copy(db) == kept  # every refusal kept the copy as it was
        state = _state(db)
        assert state["errors"] == 4 and "invalid geometry" in state["last_error"] and state["feature_count"] == 5

        # The admin list shows the state; the map's catalog marks the layer with its source and age.
        listed = ours.get("/api/federation/layers", headers=manager).json()["layers"]
        assert listed[0]["id"] == "zz_redline" and listed[0]["state"]["errors"] == 4
        assert partner_key not in json.dumps(listed)
        assert ours.get("/api/federation/layers").status_code == 401
        # Internal by default (a partner shares with the city, not the public): staff see it, the public not.
        assert "zz_redline" not in [entry["id"] for entry in ours.get("/api/layers").json()["layers"]]
        assert ours.get("/tiles/zz_redline/16/0/0.pbf").status_code == 401
        entries = ours.get("/api/layers", headers=manager).json()["layers"]
        layer = next(entry for entry in entries if entry["id"] == "zz_redline")
        assert layer["group"] == "partners" and layer["remote"]["partner"]["zh"] == "漳州市"
        assert layer["remote"]["read_only"] and layer["remote"]["fetched_at"] is not None
        style = ours.get("/styles/default.json", headers=manager).json()
        assert any(style_layer.get("source-layer") == "zz_redline" for style_layer in style["layers"])

        # The zone check lists the partner's red line the site overlaps, with its source.
        x, y = SQUARES[0]
        site = {
            "type": "Polygon",
            "coordinates": [[[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y + 0.005], [x, y]]],
        }
        checked = ours.post("/api/zone-check", json=site, headers=manager)
        assert checked.status_code == 200, checked.text
        overlaps = checked.json()["remote_overlaps"]
        assert [(o["layer"], o["id"], o["name"]) for o in overlaps] == [("zz_redline", 1, "漳州红线1")]
        assert overlaps[0]["source"]["partner"]["en"] == "Zhangzhou" and overlaps[0]["share"] == pytest.approx(1.0)
        report = ours.post("/api/zone-check/report", json=site, headers=manager)
        assert report.status_code == 200, report.text
        assert 'id="remote-overlaps"' in report.text and "漳州红线1" in report.text and "Zhangzhou" in report.text
        tilejson = ours.get("/tiles/zz_redline.json", headers=manager).json()
        assert "漳州市 Zhangzhou" in tilejson["attribution"] and tilejson["vector_layers"][0]["id"] == "zz_redline"


def partner_db_url() -> str:
    from tests.conftest import _url_for

    return _url_for(scratch_database_name("fed_partner"))


def test_a_remote_layer_is_refreshed_on_schedule_by_one_instance_at_a_time(
    our_db: str, partner: str, partner_key: str, tmp_path: Path
) -> None:
    """The app's refresher fetches a due layer by itself; a pass finds the lock held and skips."""
    from psycopg_pool import AsyncConnectionPool

    from gis_service.federation.config import RemoteLayers
    from gis_service.federation.refresher import LOCK_KEY, Refresher

    (tmp_path / "zz_scheduled.yaml").write_text(_declaration(partner, id="zz_scheduled"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch, psycopg.connect(our_db, autocommit=True) as db:
        patch.setenv(KEY_ENV, partner_key)
        federation = FederationSettings(dir=tmp_path, check_s=0.2)
        with TestClient(create_app(make_settings(our_db, access=access_settings(), federation=federation))):
            count = "SELECT count(*) FROM remote_feature WHERE layer = 'zz_scheduled'"
            wait_for(lambda: db.execute(count).fetchone()[0] == 5, timeout=30, what="the scheduled refresh")
        first = db.execute("SELECT checked_at FROM remote_layer_state WHERE layer = 'zz_scheduled'").fetchone()[0]

        async def contended() -> tuple[object, object]:
            async with AsyncConnectionPool(web_url(our_db), open=False, kwargs={"autocommit": True}) as pool:
                refresher = Refresher(pool, RemoteLayers(load_remote_layers(tmp_path)), federation, "xiamen")
                try:
                    db.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])  # another instance's pass
                    try:
                        skipped = await refresher.run_pass(only_due=False)
                    finally:
                        db.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
                    not_due = await refresher.run_pass()  # checked just now: refresh_s not yet passed
                    return skipped, not_due
                finally:
                    await refresher.close()

        skipped, not_due = run_async(contended())
        assert skipped is None and not_due == []
        assert (
            db.execute("SELECT checked_at FROM remote_layer_state WHERE layer = 'zz_scheduled'").fetchone()[0] == first
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"url": "ftp://partner.example/items"}, "http(s) URL"),
        ({"url": "https://partner.example/ogc/collections/redline"}, "must end in /items"),
        ({"api_key_env": "the key itself"}, "api_key_env"),
        ({"region": "atlantis"}, "unknown region 'atlantis'"),
        ({"name_property": "title"}, "name_property 'title' is not among the properties"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_file_and_the_key(tmp_path: Path, change: dict, message: str) -> None:
    from gis_service.federation.config import FederationError

    (tmp_path / "zz_redline.yaml").write_text(_declaration("http://127.0.0.1:1", **change), encoding="utf-8")
    with pytest.raises(FederationError) as refused:
        load_remote_layers(tmp_path)
    assert "zz_redline.yaml" in str(refused.value) and message in str(refused.value)


def test_a_remote_layer_may_not_take_a_catalog_layer_id(tmp_path: Path) -> None:
    from gis_service.federation.config import FederationError, RemoteLayers
    from layers.catalog import load_catalog

    (tmp_path / "redline.yaml").write_text(_declaration("http://127.0.0.1:1", id="redline"), encoding="utf-8")
    with pytest.raises(FederationError, match="already used by catalog layers: redline"):
        RemoteLayers(load_remote_layers(tmp_path)).check_ids(load_catalog())


def test_the_cli_refreshes_and_reports_a_refusal(our_db: str, partner: str, tmp_path: Path) -> None:
    """`ecomap federation refresh` exits 1 naming the error when the partner refuses (no key set)."""
    from typer.testing import CliRunner

    from gis_service.cli import app

    (tmp_path / "zz_cli.yaml").write_text(_declaration(partner, id="zz_cli"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(KEY_ENV, raising=False)
        patch.setenv("ECOMAP_FEDERATION__DIR", str(tmp_path))
        patch.setenv("ECOMAP_DATABASE_URL", our_db)  # the CLI runs as the owner role
        runner = CliRunner()

        def invoke(*args: str):  # in a thread: asyncio.run() cannot run where Playwright left a loop
            with ThreadPoolExecutor(1) as pool:
                return pool.submit(runner.invoke, app, ["federation", *args]).result()

        refused = invoke("refresh", "zz_cli")
        assert refused.exit_code == 1, refused.output
        assert f"environment variable {KEY_ENV}" in refused.output and "previous copy is kept" in refused.output
        helped = invoke("refresh", "--help")
        assert helped.exit_code == 0 and "If-None-Match" in helped.output
        unknown = invoke("refresh", "zz_nothing")
        assert unknown.exit_code == 2 and "unknown remote layer 'zz_nothing'" in unknown.output
        still = invoke("forget", "zz_cli")
        assert still.exit_code == 2 and "still declared" in still.output
        with psycopg.connect(our_db, autocommit=True) as db:
            db.execute(
                "INSERT INTO remote_feature (layer, id, remote_id, geom, source_url)"
                " VALUES ('zz_gone', 1, '1', ST_MakeEnvelope(117.8, 24.45, 117.81, 24.46, 4326), 'http://x.example/items')"
            )
            forgotten = invoke("forget", "zz_gone")
            assert forgotten.exit_code == 0 and "1 features deleted" in forgotten.output, forgotten.output
            assert db.execute("SELECT count(*) FROM remote_feature WHERE layer = 'zz_gone'").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"type": "FeatureCollection", "features": []' + b" " * (2 * 1024 * 1024) + b"}", "larger than 1 MB"),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [],
                    "links": [{"rel": "next", "href": "http://elsewhere.example/items"}],
                }
            ).encode(),
            "leaves the partner",
        ),
        (b'{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (b"<html>login</html>", "not JSON"),
    ],
)
def test_a_page_too_large_a_foreign_next_link_or_not_geojson_is_refused(
    our_db: str, remote_dir: Path, body: bytes, message: str
) -> None:
    remote = load_remote_layers(remote_dir)[0].model_copy(update={"id": "zz_misbehaving", "api_key_env": None})
    with misbehaving_partner(200, body) as url:
        result = _refresh(our_db, remote.model_copy(update={"url": url}), max_page_mb=1)
    assert result.outcome == "failed" and message in result.error
