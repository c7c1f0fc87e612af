"""Importing official data: formats, CRSs, encodings, validation, and all-or-nothing writes.

Each bad input must give a clear error or validation finding and leave the database
exactly as it was (compared by a checksum of the table, its history and revisions).
Runs on its own scratch database with the demo data, since successful imports mutate it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import psycopg
import pyogrio
import pyproj
import pytest
import shapely
from psycopg import sql
from typer.testing import CliRunner

from gis_service.cli import app as cli_app
from layers import db as layer_db
from layers.catalog import load_catalog
from layers.gcj02 import wgs84_to_gcj02
from layers.importer import ImportFailed, ValidationFailed, import_layer
from tests.conftest import ROOT, demo_database, recreate_database, scratch_database_name

CATALOG = load_catalog()
REDLINE = CATALOG.get("redline")
STATION = CATALOG.get("station")
DISTRICT = CATALOG.get("district")
GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def scratch_url() -> str:
    """A migrated scratch database with the demo data, for imports that write."""
    return demo_database(scratch_database_name("import"))


@pytest.fixture()
def conn(scratch_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(scratch_url, autocommit=True) as connection:
        yield connection


def snapshot(conn: psycopg.Connection, table: str) -> tuple:
    """Everything an import may touch: the table's rows, its history, revisions, change state."""
    ident = sql.Identifier(table)
    rows = conn.execute(
        sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {} AS t").format(ident)
    ).fetchone()
    history = None
    if conn.execute("SELECT to_regclass(%s)", [f"{table}_history"]).fetchone()[0]:
        history = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"{table}_history"))).fetchone()
    revisions = conn.execute("SELECT count(*) FROM layer_revision").fetchone()
    state = conn.execute("SELECT revision, gen_revision FROM layer_state WHERE layer = %s", [table]).fetchone()
    return rows, history, revisions, state


def redline_frame(n: int = 3, start: int = 0) -> gpd.GeoDataFrame:
    """Red-line parcels on land north of Xiamen island, in WGS84, with Chinese attributes."""
    corners = [(118.0 + 0.01 * (i % 20), 24.62 + 0.01 * (i // 20 % 10)) for i in range(start, start + n)]
    geoms = [shapely.box(x, y, x + 0.008, y + 0.008) for x, y in corners]
    return gpd.GeoDataFrame(
        {
            "code": [f"T-{i:03d}" for i in range(start, start + n)],
            "name": [f"测试红线{i}号" for i in range(start, start + n)],
            "function_type": ["水源涵养"] * n,
            "domain": ["陆域"] * n,
            "area_km2": [0.7] * n,
        },
        geometry=geoms,
        crs=4326,
    )


def write_shapefile(frame: gpd.GeoDataFrame, path: Path, *, crs: int | None = 4527, encoding: str = "GBK") -> Path:
    """A shapefile like the bureau receives: Gauss-Krüger, GBK, no .cpg."""
    if crs is not None:
        frame = frame.to_crs(crs)
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    return path


def test_gbk_shapefile_in_epsg4527_without_cpg_imports_chinese_intact(conn, tmp_path):
    path = write_shapefile(redline_frame(3, start=100), tmp_path / "红线.shp")
    result = import_layer(conn, REDLINE, path, mode="append", author="测试员", approval="厦府〔2025〕12号")
    assert result.applied and result.inserted == 3
    assert "GB18030" in result.report.encoding
    assert result.report.crs.startswith("EPSG:4527")
    assert result.report.mapping["function_t"] == "function_type"  # cut to 10 characters by the format
    names = conn.execute("SELECT name, function_type FROM redline WHERE code LIKE 'T-1%%' ORDER BY code").fetchall()
    assert names == [(f"测试红线{i}号", "水源涵养") for i in (100, 101, 102)]
    revision = conn.execute(
        "SELECT number, author, approval_doc, source_file, checksum, origin FROM layer_revision"
        " WHERE layer = 'redline' ORDER BY number DESC LIMIT 1"
    ).fetchone()
    assert revision[0] == result.revision and revision[1:3] == ("测试员", "厦府〔2025〕12号")
    assert revision[3] == "红线.shp" and revision[4] == result.checksum and len(result.checksum) == 64
    assert revision[5] == "import"


def test_point_from_epsg4527_lands_within_half_a_metre(conn, tmp_path):
    known = (118.0661, 24.4444)  # 鼓浪屿 national air station
    x, y = pyproj.Transformer.from_crs(4326, 4527, always_xy=True).transform(*known)
    assert 39_500_000 < x < 39_700_000  # zone prefix 39 on the easting
    frame = gpd.GeoDataFrame(
        {"code": ["GK-1"], "name": ["高斯投影测试站"], "kind": ["section"]}, geometry=[shapely.Point(x, y)], crs=4527
    )
    pyogrio.write_dataframe(frame, tmp_path / "gk.gpkg")
    import_layer(conn, STATION, tmp_path / "gk.gpkg", mode="append")
    lon, lat = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM station WHERE code = 'GK-1'").fetchone()
    assert GEOD.inv(lon, lat, *known)[2] < 0.5


def test_point_from_gcj02_lands_within_half_a_metre(conn, tmp_path):
    known = (118.1514, 24.4767)  # 洪文
    gcj_lon, gcj_lat = (float(v) for v in wgs84_to_gcj02(*known))
    assert GEOD.inv(gcj_lon, gcj_lat, *known)[2] > 50  # GCJ-02 really is offset
    path = tmp_path / "amap.csv"
    path.write_text(
        f"code,name,kind,lng,lat\nGCJ-1,高德坐标测试,section,{gcj_lon:.9f},{gcj_lat:.9f}\n", encoding="utf-8"
    )
    result = import_layer(conn, STATION, path, crs="EPSG:4326", datum="gcj02", mode="append")
    assert "GCJ-02" in result.report.crs
    lon, lat = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM station WHERE code = 'GCJ-1'").fetchone()
    assert GEOD.inv(lon, lat, *known)[2] < 0.5


def test_real_district_areas_after_gcj02_conversion_match_the_ellipsoid(tmp_path):
    url = recreate_database(scratch_database_name("import_districts"))
    layer_db.upgrade(url)
    source = ROOT / "layers" / "demo" / "data" / "districts_gcj02.geojson"
    with psycopg.connect(url, autocommit=True) as connection:
        result = import_layer(connection, DISTRICT, source, datum="gcj02")
        assert result.inserted == 6
        stored = dict(connection.execute("SELECT adcode, ST_Area(geom::geography) FROM district").fetchall())
    frame = pyogrio.read_dataframe(source)
    for adcode, geom in zip(frame["adcode"], frame.geometry, strict=True):
        independent = abs(GEOD.geometry_area_perimeter(geom)[0])  # pyproj on the WGS84 ellipsoid
        assert stored[adcode] == pytest.approx(independent, rel=0.01), adcode
    assert sum(stored.values()) / 1e6 == pytest.approx(1700.6, rel=0.05)  # Xiamen's land area


def test_shapefile_without_prj_is_refused_with_suggestions(conn, tmp_path):
    path = write_shapefile(redline_frame(), tmp_path / "noprj.shp", crs=4548)
    path.with_suffix(".prj").unlink()
    before = snapshot(conn, "redline")
    with pytest.raises(ImportFailed) as caught:
        import_layer(conn, REDLINE, path)
    message = str(caught.value)
    assert "--crs" in message and "EPSG:4548" in message
    assert snapshot(conn, "redline") == before
    result = import_layer(conn, REDLINE, path, crs="EPSG:4548", dry_run=True)
    assert result.report.ok and not result.applied
    assert snapshot(conn, "redline") == before


def test_coordinates_in_the_wrong_crs_are_reported_outside_the_region(conn, tmp_path):
    frame = redline_frame().to_crs(4548).set_crs(4326, allow_override=True)  # metres labelled as degrees
    path = tmp_path / "wrong.gpkg"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, path)
    finding = caught.value.report.findings[("outside_region", None)]
    assert finding.features == [0, 1, 2]
    assert "EPSG:4548" in finding.message  # the CRS that would fit
    assert "feature 0" in str(caught.value) and "wrong.gpkg" in str(caught.value)
    assert snapshot(conn, "redline") == before


@pytest.mark.parametrize("damage", ["truncate_shp", "truncate_gpkg", "garbage_gpkg", "truncate_geojson", "bad_zip"])
def test_truncated_or_corrupt_files_are_refused(conn, tmp_path, damage):
    frame = redline_frame(40)
    if damage == "truncate_shp":
        path = write_shapefile(frame, tmp_path / "cut.shp")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "truncate_gpkg":
        path = tmp_path / "cut.gpkg"
        pyogrio.write_dataframe(frame, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif damage == "garbage_gpkg":
        path = tmp_path / "garbage.gpkg"
        path.write_bytes(os.urandom(4096))
    elif damage == "truncate_geojson":
        path = tmp_path / "cut.geojson"
        pyogrio.write_dataframe(frame, path)
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    else:
        path = tmp_path / "cut.zip"
        path.write_bytes(b"PK\x03\x04" + os.urandom(200))
    before = snapshot(conn, "redline")
    with pytest.raises(ImportFailed) as caught:
        import_layer(conn, REDLINE, path)
    assert path.name in str(caught.value)
    assert snapshot(conn, "redline") == before


def test_mixed_geometry_types_are_reported_per_feature(conn, tmp_path):
    frame = redline_frame(3)
    frame.loc[1, "geometry"] = shapely.LineString([(118.0, 24.6), (118.01, 24.61)])
    frame.loc[2, "geometry"] = shapely.Point(118.0, 24.6)
    path = tmp_path / "mixed.geojson"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, path)
    finding = caught.value.report.findings[("geometry_type", None)]
    assert finding.features == [1, 2] and "LineString/Point" in finding.message
    assert snapshot(conn, "redline") == before


def test_self_intersecting_polygon_is_repaired_or_refused_with_strict(conn, tmp_path):
    frame = redline_frame(2, start=200)
    frame.loc[1, "geometry"] = shapely.Polygon([(118.0, 24.63), (118.01, 24.64), (118.01, 24.63), (118.0, 24.64)])
    path = tmp_path / "bowtie.gpkg"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, path, mode="append", strict=True)
    finding = caught.value.report.findings[("invalid_geometry", None)]
    assert finding.features == [1] and "Self-intersection" in finding.examples[0]
    assert snapshot(conn, "redline") == before
    result = import_layer(conn, REDLINE, path, mode="append")
    assert result.report.findings[("repaired_geometry", None)].features == [1]
    valid, kind = conn.execute(
        "SELECT ST_IsValid(geom), GeometryType(geom) FROM redline WHERE code = 'T-201'"
    ).fetchone()
    assert valid and kind == "MULTIPOLYGON"


def test_file_for_the_wrong_layer_is_refused(conn, tmp_path):
    stations = pyogrio.read_dataframe(_export_stations(conn, tmp_path / "stations.gpkg"))  # a real station file
    assert len(stations) > 10
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, tmp_path / "stations.gpkg")
    codes = {f.code for f in caught.value.report.errors}
    assert {"geometry_type", "missing_attribute"} <= codes
    assert "is this the file for this layer?" in caught.value.report.to_text()
    assert snapshot(conn, "redline") == before


def _export_stations(conn: psycopg.Connection, path: Path) -> Path:
    from layers.exporter import export_layer

    export_layer(conn, STATION, path)
    return path


def test_unknown_layer_name_in_file_and_unknown_catalog_layer(conn, tmp_path, scratch_url):
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(redline_frame(), path, layer="a")
    pyogrio.write_dataframe(redline_frame(), path, layer="b")
    with pytest.raises(ImportFailed, match="several layers"):
        import_layer(conn, REDLINE, path, dry_run=True)
    with pytest.raises(ImportFailed, match="has no layer 'c'; its layers are: a, b"):
        import_layer(conn, REDLINE, path, layer_name="c")
    assert import_layer(conn, REDLINE, path, layer_name="b", dry_run=True).report.ok
    result = CliRunner().invoke(cli_app, ["import", "redlines", str(path)], env={"ECOMAP_DATABASE_URL": scratch_url})
    assert result.exit_code == 2 and "unknown layer 'redlines'" in result.output


def test_attribute_problems_name_feature_and_field(conn, tmp_path):
    frame = redline_frame(4, start=300)
    frame["area_km2"] = frame["area_km2"].astype(object)
    frame.loc[1, "area_km2"] = "约3平方公里"
    frame.loc[2, "name"] = None
    frame.loc[3, "function_type"] = "绿化"
    frame.loc[3, "code"] = frame.loc[0, "code"]
    path = tmp_path / "attrs.geojson"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, path)
    findings = caught.value.report.findings
    assert findings[("type_mismatch", "area_km2")].features == [1]
    assert findings[("missing_value", "name")].features == [2]
    assert findings[("not_allowed_value", "function_type")].features == [3]
    assert findings[("duplicate_key", "code")].features == [0, 3]
    assert str(caught.value).startswith(f"{path}, feature 0, field code: the same code appears more than once")
    assert snapshot(conn, "redline") == before


def test_database_refusal_rolls_back_and_names_the_feature(conn, tmp_path):
    frame = redline_frame(3, start=400)
    frame["marine_class"] = [None, None, "禁止类"]  # only allowed at sea: a CHECK constraint of the table
    path = tmp_path / "check.gpkg"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ImportFailed, match=r"check.gpkg, feature 2, field ck_redline_marine_class_at_sea"):
        import_layer(conn, REDLINE, path, mode="append")
    assert snapshot(conn, "redline") == before


def test_append_refuses_existing_codes_and_upsert_updates_them(conn, tmp_path):
    existing = conn.execute("SELECT code, name FROM redline ORDER BY id LIMIT 1").fetchone()
    frame = redline_frame(2, start=500)
    frame.loc[0, "code"] = existing[0]
    path = tmp_path / "upsert.gpkg"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(conn, "redline")
    with pytest.raises(ValidationFailed) as caught:
        import_layer(conn, REDLINE, path, mode="append")
    assert caught.value.report.findings[("existing_key", "code")].features == [0]
    assert snapshot(conn, "redline") == before
    count = before[0][0]
    result = import_layer(conn, REDLINE, path, mode="upsert", key="code")
    assert (result.updated, result.inserted, result.deleted) == (1, 1, 0)
    assert conn.execute("SELECT count(*) FROM redline").fetchone()[0] == count + 1
    assert conn.execute("SELECT name FROM redline WHERE code = %s", [existing[0]]).fetchone()[0] == "测试红线500号"


def test_csv_needs_a_crs_and_gbk_is_detected(conn, tmp_path):
    path = tmp_path / "stations.csv"
    path.write_bytes("code,name,kind,经度,纬度\nCSV-1,同安水质站,water_auto,118.15,24.73\n".encode("gb18030"))
    with pytest.raises(ImportFailed, match=r"--crs.*EPSG:4490"):
        import_layer(conn, STATION, path, mode="append")
    result = import_layer(conn, STATION, path, crs="EPSG:4490", mode="append")
    assert result.inserted == 1
    assert conn.execute("SELECT name FROM station WHERE code = 'CSV-1'").fetchone()[0] == "同安水质站"


def test_zipped_shapefile_and_kml(conn, tmp_path):
    shp = write_shapefile(redline_frame(2, start=600), tmp_path / "zipped.shp")
    archive = tmp_path / "红线数据.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in tmp_path.glob("zipped.*"):
            zipped.write(part, f"数据/{part.name}")
    result = import_layer(conn, REDLINE, archive, mode="append")
    assert result.inserted == 2 and result.report.file.endswith("!数据/zipped.shp")
    assert conn.execute("SELECT name FROM redline WHERE code = 'T-600'").fetchone()[0] == "测试红线600号"
    kml = tmp_path / "stations.kml"
    points = gpd.GeoDataFrame(
        {"Name": ["KML站"], "code": ["KML-1"], "kind": ["section"]}, geometry=[shapely.Point(118.1, 24.5)], crs=4326
    )
    pyogrio.write_dataframe(points, kml, driver="KML")
    assert import_layer(conn, STATION, kml, mode="append").inserted == 1
    assert conn.execute("SELECT name FROM station WHERE code = 'KML-1'").fetchone()[0] == "KML站"
    assert shp.exists()


def test_cli_dry_run_prints_the_report_as_json_and_writes_nothing(conn, tmp_path, scratch_url):
    frame = redline_frame(2, start=700)
    frame.loc[1, "geometry"] = shapely.Polygon([(118.0, 24.63), (118.01, 24.64), (118.01, 24.63), (118.0, 24.64)])
    path = write_shapefile(frame, tmp_path / "dry.shp")
    before = snapshot(conn, "redline")
    env = {"ECOMAP_DATABASE_URL": scratch_url}
    result = CliRunner().invoke(cli_app, ["import", "redline", str(path), "--dry-run", "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["applied"] is False and document["report"]["features"] == 2
    assert [f["code"] for f in document["report"]["findings"]] == ["repaired_geometry"]
    result = CliRunner().invoke(cli_app, ["import", "redline", str(path), "--strict"], env=env)
    assert result.exit_code == 1
    assert "REJECTED" in result.output and "error: " in result.output and "feature 1" in result.output
    assert snapshot(conn, "redline") == before


def test_import_help_documents_every_option():
    result = CliRunner().invoke(cli_app, ["import", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    options = ["--layer-name", "--crs", "--datum", "--encoding", "--mode", "--key", "--map", "--dry-run", "--strict",
               "--json", "--author", "--approval", "--note", "--generalize"]  # fmt: skip
    for option in options:
        assert option in result.output


def zhangzhou_district_zip(tmp_path: Path) -> tuple[Path, shapely.Polygon]:
    """A Zhangzhou district (芗城区) as the bureau would receive it: a zipped GBK Shapefile in
    EPSG:4527 (CGCS2000 3-degree Gauss-Krüger zone 39), around 117.65 E, 24.51 N."""
    outline = shapely.Polygon([(117.60, 24.47), (117.71, 24.46), (117.72, 24.55), (117.62, 24.56), (117.60, 24.47)])
    frame = gpd.GeoDataFrame(
        {"adcode": ["350602"], "name_zh": ["芗城区"], "name_en": ["Xiangcheng"]}, geometry=[outline], crs=4326
    )
    folder = tmp_path / "zhangzhou"
    folder.mkdir()
    shp = write_shapefile(frame, folder / "xiangcheng.shp", crs=4527)
    assert pyproj.CRS.from_wkt(shp.with_suffix(".prj").read_text()).to_epsg() == 4527
    archive = tmp_path / "xiangcheng.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in sorted(folder.iterdir()):
            zipped.write(part, part.name)
    return archive, outline


def test_a_zhangzhou_district_in_epsg4527_imports_when_the_region_is_configured(conn, tmp_path, scratch_url):
    archive, outline = zhangzhou_district_zip(tmp_path)
    before = snapshot(conn, "district")
    env = {"ECOMAP_DATABASE_URL": scratch_url}
    refused = CliRunner().invoke(cli_app, ["import", "district", str(archive), "--mode", "append"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "outside Xiamen" in refused.output and "ECOMAP_REGION=minxinan" in refused.output
    assert snapshot(conn, "district") == before
    for region in ("minxinan", "zhangzhou"):
        dry = CliRunner().invoke(
            cli_app, ["import", "district", str(archive), "--mode", "append", "--dry-run"],
            env={**env, "ECOMAP_REGION": region},
        )  # fmt: skip
        assert dry.exit_code == 0, dry.output
    imported = CliRunner().invoke(
        cli_app, ["import", "district", str(archive), "--mode", "append"], env={**env, "ECOMAP_REGION": "zhangzhou"}
    )
    assert imported.exit_code == 0, imported.output
    assert "1 inserted" in imported.output
    name, area, wkb = conn.execute(
        "SELECT name_zh, ST_Area(geom::geography), ST_AsBinary(geom) FROM district WHERE adcode = '350602'"
    ).fetchone()
    assert name == "芗城区"  # GBK without .cpg, detected
    assert area == pytest.approx(abs(GEOD.geometry_area_perimeter(outline)[0]), rel=1e-4)
    assert shapely.from_wkb(wkb).hausdorff_distance(outline) < 1e-6  # back from Gauss-Krüger to lon/lat


def test_the_importer_checks_the_region_it_is_given(conn, tmp_path):
    from layers.regions import get_region

    archive, _ = zhangzhou_district_zip(tmp_path)
    default = import_layer(conn, DISTRICT, archive, mode="append", dry_run=True).report
    finding = default.findings[("outside_region", None)]
    assert not default.ok and finding.features == [0]
    assert "117.78..118.77°E" in finding.message and "ECOMAP_REGION" in finding.message
    regional = import_layer(conn, DISTRICT, archive, mode="append", dry_run=True, region=get_region("minxinan")).report
    assert ("outside_region", None) not in regional.findings
    sanming = import_layer(conn, DISTRICT, archive, mode="append", dry_run=True, region=get_region("sanming")).report
    assert ("outside_region", None) in sanming.findings and "Sanming" in sanming.findings[
        ("outside_region", None)
    ].message


def test_layers_import_neither_tiles_nor_the_service():
    """``layers`` sits below ``tiles`` and ``gis_service``: none of its modules imports them."""
    import ast

    offenders = []
    for path in sorted((ROOT / "layers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("tiles", "gis_service")
            ]
    assert offenders == []
