"""Revisions of red lines: history kept by triggers for every write, diffs, features as of a
revision or date, exports that round-trip, and the issue's "done when" scenario.

Mutating tests use their own scratch databases; the session database is only read.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import morecantile
import pandas as pd
import psycopg
import pyogrio
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from psycopg import sql
from typer.testing import CliRunner

from gis_service import create_app
from gis_service.cli import app as cli_app
from layers import db as layer_db
from layers.catalog import load_catalog
from layers.exporter import export_layer, rows_to_frame
from layers.history import features_as_of_sql
from layers.importer import import_layer
from tests.conftest import demo_database, make_settings, recreate_database, scratch_database_name

CATALOG = load_catalog()
REDLINE = CATALOG.get("redline")
TO_4548 = pyproj.Transformer.from_crs(4326, 4548, always_xy=True)


@pytest.fixture(scope="module")
def rev_url() -> str:
    """A scratch database with the demo data, for edits and imports."""
    return demo_database(scratch_database_name("revisions"))


@pytest.fixture()
def rev_db(rev_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(rev_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def rev_client(rev_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(rev_url))) as client:
        yield client


def latest(conn: psycopg.Connection, layer: str = "redline") -> tuple:
    return conn.execute(
        "SELECT number, author, origin, note, feature_count, features_added, features_removed, features_changed,"
        " approval_doc, source_file, checksum FROM layer_revision WHERE layer = %s ORDER BY number DESC LIMIT 1",
        [layer],
    ).fetchone()


def test_demo_load_is_revision_1_of_the_layers_with_history(db):
    for layer in ("redline", "protected_area"):
        count = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer))).fetchone()[0]
        rows = db.execute(
            "SELECT number, feature_count, features_added FROM layer_revision WHERE layer = %s ORDER BY number",
            [layer],
        ).fetchall()
        assert rows[0] == (1, count, count)


def test_migration_0004_reverts_and_backfills_existing_data():
    url = recreate_database(scratch_database_name("revisions_migration"))
    layer_db.upgrade(url, "0003")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO redline (code, name, function_type, domain, geom) VALUES ('M1', '迁移前', '水源涵养', '陆域',"
            " ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(118.1, 24.6), 4326), 0.01)))"
        )
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert latest(conn)[:5] == (1, conn.info.user, "migration", "features present when revision history started", 1)
        assert conn.execute("SELECT count(*) FROM redline_history WHERE revision_to IS NULL").fetchone() == (1,)
    layer_db.downgrade(url, "0003")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('layer_revision'), to_regclass('redline_history')").fetchone() == (
            None,
            None,
        )
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%history%'").fetchone()[0]
        assert triggers == 0
        conn.execute("UPDATE redline SET name = '仍可写' WHERE code = 'M1'")  # no trigger left pointing at nothing
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert latest(conn)[0] == 1


def test_plain_sql_edits_get_one_automatic_revision_per_transaction_and_layer(rev_db):
    before = latest(rev_db)[0]
    before_pa = latest(rev_db, "protected_area")[0]
    ids = [r[0] for r in rev_db.execute("SELECT id FROM redline ORDER BY id LIMIT 3").fetchall()]
    with rev_db.transaction():
        rev_db.execute("SET LOCAL ecomap.author = '编辑员'")
        rev_db.execute("UPDATE redline SET name = name || '（改）' WHERE id = ANY(%s)", [ids[:2]])
        rev_db.execute("UPDATE redline SET control_rules = '禁止开发' WHERE id = %s", [ids[0]])
        rev_db.execute("DELETE FROM redline WHERE id = %s", [ids[2]])
        rev_db.execute("UPDATE protected_area SET level = level WHERE id = (SELECT min(id) FROM protected_area)")
    number, author, origin, note, count, added, removed, changed = latest(rev_db)[:8]
    assert (number, author, origin, note) == (before + 1, "编辑员", "sql", "direct SQL edit")
    assert (added, removed, changed) == (0, 1, 2)
    assert count == rev_db.execute("SELECT count(*) FROM redline").fetchone()[0]
    assert latest(rev_db, "protected_area")[0] == before_pa + 1
    rev_db.execute("UPDATE redline SET name = name WHERE id = %s", [ids[1]])  # no transaction: its own revision
    assert latest(rev_db)[:3] == (before + 2, rev_db.info.user, "sql")  # the role, when no author is set
    # the version history of the first feature: original, edited, edited again
    versions = rev_db.execute(
        "SELECT revision_from, revision_to FROM redline_history WHERE id = %s ORDER BY revision_from", [ids[0]]
    ).fetchall()
    assert versions == [(1, before + 1), (before + 1, None)]


def test_a_stale_session_revision_setting_is_ignored_and_set_local_is_honoured(rev_db):
    start = latest(rev_db)[0]
    rev_db.execute("SET ecomap.revision_id = 1")  # session-wide, left over: must not reopen revision 1
    rev_db.execute("UPDATE redline SET adcode = '350211' WHERE id = (SELECT min(id) FROM redline)")
    assert latest(rev_db)[0] == start + 1
    rev_db.execute("RESET ecomap.revision_id")
    with rev_db.transaction():
        rev_id = rev_db.execute(
            "INSERT INTO layer_revision (layer, number, author, approval_doc, origin)"
            " VALUES ('redline', %s, '审批员', '厦府〔2026〕3号', 'edit') RETURNING id",
            [start + 2],
        ).fetchone()[0]
        rev_db.execute(sql.SQL("SET LOCAL ecomap.revision_id = {}").format(sql.Literal(str(rev_id))))
        rev_db.execute("UPDATE redline SET adcode = '350212' WHERE id = (SELECT min(id) FROM redline)")
    assert latest(rev_db)[:3] == (start + 2, "审批员", "edit")
    assert latest(rev_db)[7] == 1


def test_features_as_of_a_revision_or_date(rev_db, rev_client):
    rev_db.execute("UPDATE redline SET name = '历史测试' WHERE id = (SELECT max(id) FROM redline)")
    current = rev_client.get("/api/layers/redline/features").json()
    first = rev_client.get("/api/layers/redline/features", params={"revision": 1})
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/geo+json")
    first = first.json()
    assert first["revision"] == 1 and first["type"] == "FeatureCollection"
    assert "历史测试" in {f["properties"]["name"] for f in current["features"]}
    assert "历史测试" not in {f["properties"]["name"] for f in first["features"]}
    assert len(first["features"]) == latest_revision_one_count(rev_db)
    created = rev_db.execute("SELECT created_at FROM layer_revision WHERE layer = 'redline' AND number = 1").fetchone()
    as_of = rev_client.get("/api/layers/redline/features", params={"loaded_asof": created[0].isoformat()}).json()
    assert as_of["revision"] == 1 and len(as_of["features"]) == len(first["features"])
    before_anything = rev_client.get("/api/layers/redline/features", params={"asof": "2001-01-01"}).json()
    assert before_anything["revision"] == 0 and before_anything["features"] == []
    page = rev_client.get("/api/layers/redline/features", params={"revision": 1, "limit": 5})
    assert len(page.json()["features"]) == 5 and 'rel="next"' in page.headers["link"]
    # the SQL helper embeds like a table in a tile-style query
    subquery, params = features_as_of_sql(REDLINE, revision=1)
    tile = morecantile.tms.get("WebMercatorQuad").tile(118.1, 24.55, 8)
    count = rev_db.execute(
        sql.SQL("SELECT count(*) FROM ({}) AS t WHERE t.geom_3857 && ST_TileEnvelope(%(z)s, %(x)s, %(y)s)").format(
            subquery
        ),
        {**params, "z": tile.z, "x": tile.x, "y": tile.y},
    ).fetchone()[0]
    assert 0 < count <= len(first["features"])


def latest_revision_one_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT feature_count FROM layer_revision WHERE layer = 'redline' AND number = 1").fetchone()[0]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/layers/nope/revisions", {}, 404, "unknown layer 'nope'"),
        ("/api/layers/station/revisions", {}, 404, "keeps no revision history"),
        ("/api/layers/redline/diff", {"from": 1, "to": 9999}, 404, "does not exist"),
        ("/api/layers/redline/features", {"revision": 9999}, 404, "does not exist"),
        ("/api/layers/redline/features", {"revision": 1, "asof": "2025-01-01"}, 400, "either"),
        ("/api/layers/redline/features", {"asof": "yesterday"}, 400, "not a date"),
        ("/api/layers/station/features", {"revision": 1}, 400, "keeps no revision history"),
        ("/api/layers/redline/export", {"format": "dwg"}, 400, "format"),
        ("/api/layers/redline/export", {"crs": "EPSG:999999"}, 400, "unknown CRS"),
        ("/api/layers/redline/export", {"format": "kml", "crs": "EPSG:4548"}, 400, "KML is always in WGS84"),
    ],
)
def test_api_errors_say_what_to_fix(rev_client, path, params, status, message):
    response = rev_client.get(path, params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def _features(url: str) -> dict[str, tuple[dict, shapely.Geometry]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT {}, ST_AsBinary(geom) FROM redline").format(
                sql.SQL(", ").join(sql.Identifier(p) for p in ["id", *REDLINE.property_names])
            )
        ).fetchall()
    frame = rows_to_frame(REDLINE, rows)
    result = {}
    for record, geom in zip(frame.drop(columns="geometry").to_dict("records"), frame.geometry, strict=True):
        record.pop("id")
        result[record["code"]] = (record, geom)
    return result


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "csv"])
def test_export_then_import_round_trips(rev_url, tmp_path, fmt):
    suffix = {"gpkg": ".gpkg", "shp": ".zip", "geojson": ".geojson", "csv": ".csv"}[fmt]
    crs = None if fmt in ("geojson", "csv") else "EPSG:4548"
    out = tmp_path / f"redline{suffix}"
    with psycopg.connect(rev_url, autocommit=True) as conn:
        result = export_layer(conn, REDLINE, out, crs=crs)
    assert result.features > 30
    target = recreate_database(scratch_database_name("roundtrip"))
    layer_db.upgrade(target)
    with psycopg.connect(target, autocommit=True) as conn:
        imported = import_layer(conn, REDLINE, out, crs="EPSG:4326" if fmt == "csv" else None)
    assert imported.inserted == result.features and imported.report.warnings == []
    original, copy = _features(rev_url), _features(target)
    assert original.keys() == copy.keys()
    for code, (attributes, geom) in original.items():
        copied_attributes, copied_geom = copy[code]
        for name, value in attributes.items():
            copied = copied_attributes[name]
            if isinstance(value, float):
                assert copied == pytest.approx(value, rel=1e-12), f"{code}.{name}"
            else:
                assert copied == value or (pd.isna(copied) and pd.isna(value)), (
                    f"{code}.{name}: {copied!r} != {value!r}"
                )
        distance = shapely.hausdorff_distance(
            shapely.transform(geom, _to_4548), shapely.transform(copied_geom, _to_4548)
        )
        assert distance < 0.01, f"{code}: geometry moved {distance:.4f} m"


def _to_4548(coords):
    x, y = TO_4548.transform(coords[:, 0], coords[:, 1])
    return list(zip(x, y, strict=True))


def test_api_shapefile_export_is_a_zip_with_prj_cpg_and_chinese_intact(rev_client, tmp_path):
    response = rev_client.get("/api/layers/redline/export", params={"format": "shp", "crs": "EPSG:4527"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert 'filename="redline_EPSG4527.zip"' in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert {Path(n).suffix for n in archive.namelist()} == {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    assert archive.read("redline.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
    assert pyproj.CRS.from_wkt(archive.read("redline.prj").decode()).to_epsg() == 4527  # ESRI WKT of zone 39
    path = tmp_path / "export.zip"
    path.write_bytes(response.content)
    frame = pyogrio.read_dataframe(path)
    assert any("红线" in name or "保护" in name or "区" in name for name in frame["name"])
    assert frame.total_bounds[0] > 39_500_000  # zone-prefixed Gauss-Krüger eastings


def test_done_when_official_gbk_shapefile_in_4527_to_revision_diff_map_and_4548_geopackage(
    rev_url, rev_db, rev_client, tmp_path
):
    """The issue's scenario end to end: import, report, revision, diff, map, export."""
    with psycopg.connect(rev_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT {}, ST_AsBinary(geom) FROM redline ORDER BY id").format(
                sql.SQL(", ").join(sql.Identifier(p) for p in ["id", *REDLINE.property_names])
            )
        ).fetchall()
    official = rows_to_frame(REDLINE, rows).drop(columns=["id"])  # as exported, then edited by the bureau
    removed_code = official.loc[0, "code"]
    official = official.iloc[1:].reset_index(drop=True)
    official.loc[0, "name"] = "调整后的红线"
    grown = official.loc[1, "code"]
    enlarged = official.to_crs(4548).geometry[1].buffer(100)
    official.loc[1, "geometry"] = gpd.GeoSeries([enlarged], crs=4548).to_crs(4326)[0]
    new_parcel = shapely.box(118.30, 24.80, 118.31, 24.81)  # 翔安 north, away from other parcels
    addition = official.iloc[[0]].copy()
    addition["code"], addition["name"], addition["geometry"] = "XA-NEW-1", "新增红线", [new_parcel]
    official = gpd.GeoDataFrame(pd.concat([official, addition], ignore_index=True), crs=4326)
    shp = tmp_path / "生态保护红线2025.shp"
    pyogrio.write_dataframe(official.to_crs(4527), shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink()

    tile = morecantile.tms.get("WebMercatorQuad").tile(118.305, 24.805, 14)
    tile_url = f"/tiles/redline/{tile.z}/{tile.x}/{tile.y}.pbf"
    assert rev_client.get(tile_url).status_code == 204  # nothing there yet

    env = {"ECOMAP_DATABASE_URL": rev_url, "ECOMAP_AUTHOR": "规划处"}
    args = ["import", "redline", str(shp), "--approval", "厦府〔2025〕12号", "--no-progress"]
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "Validation report" in result.output and "EPSG:4527" in result.output and "GB18030" in result.output
    assert "1 inserted, 2 updated, 1 deleted" in result.output

    revisions = rev_client.get("/api/layers/redline/revisions").json()["revisions"]
    newest = revisions[0]
    assert (newest["author"], newest["approval_doc"], newest["origin"]) == ("规划处", "厦府〔2025〕12号", "import")
    assert newest["source_file"] == shp.name and len(newest["checksum"]) == 64
    assert (newest["features_added"], newest["features_removed"], newest["features_changed"]) == (1, 1, 2)

    diff = rev_client.get("/api/layers/redline/diff").json()
    assert (diff["from"], diff["to"]) == (newest["number"] - 1, newest["number"])
    changes = {item["properties"]["code"]: item for item in diff["features"]}
    assert changes[removed_code]["change"] == "removed"
    assert changes["XA-NEW-1"]["change"] == "added"
    assert changes[grown]["geometry_changed"] and changes[grown]["area_gained_km2"] > 0
    new_area = abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(new_parcel)[0]) / 1e6
    gained = diff["summary"]["area_gained_km2"]  # territory: overlaps with neighbours are not gained
    assert new_area * 0.999 < gained <= new_area + changes[grown]["area_gained_km2"] + 1e-6
    assert diff["summary"]["area_lost_km2"] == pytest.approx(changes[removed_code]["area_lost_km2"], rel=1e-3)
    assert len(diff["features"]) == 4  # reprojection noise on the other parcels is not a change

    response = rev_client.get(tile_url)  # the map changed
    assert response.status_code == 200
    decoded = mapbox_vector_tile.decode(response.content)
    assert "XA-NEW-1" in {f["properties"]["code"] for f in decoded["redline"]["features"]}

    export = rev_client.get("/api/layers/redline/export", params={"format": "gpkg", "crs": "EPSG:4548"})
    assert export.status_code == 200
    path = tmp_path / "redline_4548.gpkg"
    path.write_bytes(export.content)
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4548" and info["features"] == len(official)
    exported = pyogrio.read_dataframe(path)
    assert "新增红线" in set(exported["name"])


def test_cli_revisions_diff_and_export(rev_url, rev_db, tmp_path):
    env = {"ECOMAP_DATABASE_URL": rev_url}
    runner = CliRunner()
    rev_db.execute("UPDATE redline SET name = '命令行测试' WHERE id = (SELECT min(id) FROM redline)")
    listing = runner.invoke(cli_app, ["revisions", "redline"], env=env)
    assert listing.exit_code == 0 and listing.output.splitlines()[0].split()[0] == str(latest(rev_db)[0])
    diff = runner.invoke(cli_app, ["diff", "redline"], env=env)
    assert diff.exit_code == 0 and "1 changed" in diff.output and "命令行测试" in diff.output
    as_json = runner.invoke(cli_app, ["diff", "redline", "--from", "1", "--json"], env=env)
    assert as_json.exit_code == 0 and '"from": 1' in as_json.output
    out = tmp_path / "redline_r1.shp"
    exported = runner.invoke(cli_app, ["export", "redline", str(out), "--revision", "1", "--crs", "EPSG:4548"], env=env)
    assert exported.exit_code == 0, exported.output
    assert pyogrio.read_info(out)["crs"] == "EPSG:4548" and out.with_suffix(".cpg").exists()
    assert "命令行测试" not in set(pyogrio.read_dataframe(out)["name"])
    wrong = runner.invoke(cli_app, ["revisions", "station"], env=env)
    assert wrong.exit_code == 2 and "keeps no revision history" in wrong.output
    bad = runner.invoke(cli_app, ["export", "redline", str(tmp_path / "x.dwg")], env=env)
    assert bad.exit_code == 2 and "unknown export format" in bad.output


def test_ogc_items_as_of_a_revision(rev_client: TestClient, rev_db: psycopg.Connection) -> None:
    """/ogc items accept ?revision= and ?asof= for layers with history, like the tiles (on the
    scratch database: this test edits a feature)."""
    client, db = rev_client, rev_db
    before = db.execute("SELECT max(number) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
    feature_id = db.execute("SELECT min(id) FROM redline").fetchone()[0]
    old_name = db.execute("SELECT name FROM redline WHERE id = %s", [feature_id]).fetchone()[0]
    url = f"/ogc/collections/redline/items/{feature_id}"
    try:
        db.execute("UPDATE redline SET name = %s WHERE id = %s", ["改名测试", feature_id])
        assert client.get(url).json()["properties"]["name"] == "改名测试"
        page = client.get("/ogc/collections/redline/items", params={"revision": before, "limit": 1000}).json()
        names = {f["id"]: f["properties"]["name"] for f in page["features"]}
        assert names[feature_id] == old_name
        created = db.execute(
            "SELECT created_at FROM layer_revision WHERE layer = 'redline' AND number = %s", [before]
        ).fetchone()[0]
        page = client.get("/ogc/collections/redline/items", params={"asof": created.isoformat(), "limit": 1000})
        # a rename keeps the feature's valid_from: by validity it is in force since then
        assert {f["id"]: f["properties"]["name"] for f in page.json()["features"]}[feature_id] == "改名测试"
        refused = client.get("/ogc/collections/station/items", params={"revision": 1})
        assert refused.status_code == 400
        assert "keeps no revision history" in refused.json()["detail"]
        assert client.get("/ogc/collections/redline/items", params={"asof": "not a date"}).status_code == 400
    finally:
        db.execute("UPDATE redline SET name = %s WHERE id = %s", [old_name, feature_id])


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "csv", "kml"])
@pytest.mark.parametrize("layer_id", CATALOG.ids)
def test_every_layer_exports_in_every_format(rev_client, rev_db, tmp_path, layer_id, fmt):
    """Each layer downloads in each format and reads back with all its features (CSV of points
    as X/Y columns, of other geometries as WKT)."""
    response = rev_client.get(f"/api/layers/{layer_id}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    layer = CATALOG.get(layer_id)
    expected = rev_db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    assert int(response.headers["x-feature-count"]) == expected
    path = tmp_path / f"{layer_id}.{ {'shp': 'zip'}.get(fmt, fmt) }"
    path.write_bytes(response.content)
    options = (
        {"X_POSSIBLE_NAMES": "X", "Y_POSSIBLE_NAMES": "Y"} if fmt == "csv" and layer.geometry_type == "Point" else {}
    )
    frame = pyogrio.read_dataframe(path, **options)
    assert len(frame) == expected
    if fmt != "csv" or layer.geometry_type == "Point":
        assert frame.geometry.notna().all()


def test_asof_follows_legal_validity_not_the_load_date(client: TestClient, db: psycopg.Connection) -> None:
    """The demo red lines were loaded today but take effect on 2023-06-01: ``asof`` follows
    the validity date (what the catalog's ``temporal.start`` says), ``loaded_asof`` the load."""
    in_force = {
        r[0] for r in db.execute("SELECT id FROM redline WHERE valid_from <= '2024-01-01' ORDER BY id").fetchall()
    }
    first_day = db.execute("SELECT min(valid_from) FROM redline").fetchone()[0]
    assert in_force, "the demo red lines take effect before 2024"
    page = client.get("/api/layers/redline/features", params={"asof": "2024-01-01"}).json()
    assert {f["id"] for f in page["features"]} == in_force
    items = client.get("/ogc/collections/redline/items", params={"asof": "2024-01-01", "limit": 10_000}).json()
    assert {f["id"] for f in items["features"]} == in_force
    before = (first_day - dt.timedelta(days=1)).isoformat()
    assert client.get("/api/layers/redline/features", params={"asof": before}).json()["features"] == []
    loaded = db.execute("SELECT min(created_at) FROM layer_revision WHERE layer = 'redline'").fetchone()[0]
    by_load = client.get("/api/layers/redline/features", params={"loaded_asof": "2024-01-01"}).json()
    assert loaded.year > 2024 and by_load["revision"] == 0 and by_load["features"] == []
    both = client.get("/api/layers/redline/features", params={"asof": "2024-01-01", "loaded_asof": "2024-01-01"})
    assert both.status_code == 400 and "either asof" in both.json()["detail"]
    revisions = client.get("/api/layers/redline/revisions").json()["revisions"]
    assert revisions[-1]["valid_from"] == db.execute("SELECT max(valid_from) FROM redline").fetchone()[0].isoformat()
    export = client.get("/api/layers/redline/export", params={"format": "geojson", "asof": "2024-01-01"})
    assert export.status_code == 200 and int(export.headers["x-feature-count"]) == len(in_force)


def test_a_revision_taking_effect_later_is_shown_from_its_date(rev_db, rev_client) -> None:
    """A revision loaded now that takes effect on 2031-03-01 is not in force on 2031-02-28 (the
    map shows the one before), is from 2031-03-01, and ``loaded_asof`` now already shows it."""
    feature_id, old_name, old_valid = rev_db.execute(
        "SELECT id, name, valid_from FROM redline ORDER BY id LIMIT 1"
    ).fetchone()
    try:
        rev_db.execute("UPDATE redline SET name = '新版红线', valid_from = '2031-03-01' WHERE id = %s", [feature_id])
        number = latest(rev_db)[0]

        def name_on(**params: str) -> str:
            page = rev_client.get("/api/layers/redline/features", params={**params, "limit": 50_000}).json()
            return {f["id"]: f["properties"]["name"] for f in page["features"]}[feature_id]

        assert name_on(asof="2031-02-28") == old_name
        assert name_on(asof="2031-03-01") == "新版红线"
        assert name_on(loaded_asof=dt.datetime.now(dt.UTC).isoformat()) == "新版红线"
        listed = {r["number"]: r for r in rev_client.get("/api/layers/redline/revisions").json()["revisions"]}
        assert listed[number]["valid_from"] == "2031-03-01"
    finally:
        rev_db.execute("UPDATE redline SET name = %s, valid_from = %s WHERE id = %s", [old_name, old_valid, feature_id])
