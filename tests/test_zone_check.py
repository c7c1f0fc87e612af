"""Zone check: overlaps measured independently, verdicts from the rules, CRSs, uploads, limits, report."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import zipfile
import zoneinfo
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod, Transformer
from shapely.geometry import Point, box, mapping

from gis_service.rules import load_rules
from layers.catalog import load_catalog
from layers.gcj02 import wgs84_to_gcj02

GEOD = Geod(ellps="WGS84")
OPEN_SEA = (118.7, 24.1)  # open sea at the edge of the Xiamen region, far from every feature


def check(client: TestClient, geometry: dict, **options: object) -> dict:
    response = client.post("/api/zone-check", json={"geometry": geometry, **options})
    assert response.status_code == 200, response.text
    return response.json()


def feature_geometry(db: psycopg.Connection, table: str, condition: str) -> tuple[int, shapely.Geometry]:
    row = db.execute(f"SELECT id, ST_AsBinary(geom) FROM {table} WHERE {condition} ORDER BY id LIMIT 1").fetchone()
    assert row is not None, f"the demo data should have a {table} where {condition}"
    return row[0], shapely.from_wkb(row[1])


def inside_point(geometry: shapely.Geometry) -> tuple[float, float]:
    point = geometry.point_on_surface()
    return point.x, point.y


def square(lon: float, lat: float, side_m: float) -> shapely.Polygon:
    dx = side_m / 2 / (111_320 * math.cos(math.radians(lat)))
    dy = side_m / 2 / 110_574
    return box(lon - dx, lat - dy, lon + dx, lat + dy)


def geodesic_area(geometry: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(geometry))[0])


def test_rules_file_matches_the_catalog() -> None:
    rules = load_rules()
    rules.check_catalog(load_catalog())
    assert {"prohibited", "restricted", "caution"} == {rule.verdict for rule in rules.rules}


def test_overlap_area_matches_an_independent_computation(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, zone = feature_geometry(db, "protected_area", "zone = '核心区'")
    corner = shapely.get_coordinates(zone.exterior if zone.geom_type == "Polygon" else zone.geoms[0].exterior)[0]
    site = square(corner[0], corner[1], 1200)
    result = check(client, mapping(site))
    overlap = next(o for o in result["overlaps"] if o["layer"] == "protected_area" and o["id"] == feature_id)
    expected = geodesic_area(site.intersection(zone))
    assert 0 < expected < geodesic_area(site)
    assert overlap["overlap_m2"] == pytest.approx(expected, rel=1e-4)
    assert result["input"]["area_m2"] == pytest.approx(geodesic_area(site), rel=1e-6)
    assert overlap["share"] == pytest.approx(expected / geodesic_area(site), rel=1e-3)
    assert overlap["distance_m"] is None


def test_point_in_core_zone_is_prohibited(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, zone = feature_geometry(db, "protected_area", "zone IN ('核心区', '核心保护区')")
    lon, lat = inside_point(zone)
    result = check(client, {"type": "Point", "coordinates": [lon, lat]})
    assert result["verdict"] == "prohibited"
    reason = next(r for r in result["reasons"] if r["layer"] == "protected_area")
    assert reason["rule"] == "protected_core" and reason["id"] == feature_id
    assert reason["message"]["zh"] and reason["message"]["en"]
    overlap = next(o for o in result["overlaps"] if o["layer"] == "protected_area")
    assert overlap["share"] == 1.0 and overlap["zone"] in ("核心区", "核心保护区")


def test_share_of_a_multipoint_counts_points(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, zone = feature_geometry(db, "protected_area", "zone = '核心区'")
    inside = list(inside_point(zone))
    result = check(client, {"type": "MultiPoint", "coordinates": [inside, list(OPEN_SEA)]})
    overlap = next(o for o in result["overlaps"] if o["layer"] == "protected_area" and o["id"] == feature_id)
    assert overlap["share"] == 0.5
    assert result["verdict"] == "prohibited"


def test_open_sea_is_clear(client: TestClient) -> None:
    result = check(client, {"type": "Point", "coordinates": list(OPEN_SEA)}, buffer_m=1000)
    assert result["verdict"] == "clear"
    assert result["reasons"] == [] and result["overlaps"] == [] and result["stations"] == []
    assert result["chiefs"] == []
    assert set(result["revisions"]) >= {"redline", "protected_area", "water_source_zone", "station"}
    assert result["computed_at"].endswith("Z")


def test_grade_one_water_source_is_prohibited(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, zone = feature_geometry(db, "water_source_zone", "zone = '一级'")
    lon, lat = inside_point(zone)
    result = check(client, {"type": "Point", "coordinates": [lon, lat]})
    assert result["verdict"] == "prohibited"
    assert {"rule": "water_source_grade1", "layer": "water_source_zone", "id": feature_id}.items() <= next(
        r for r in result["reasons"] if r["rule"] == "water_source_grade1"
    ).items()


def test_inside_a_land_red_line_is_restricted(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, redline = feature_geometry(
        db,
        "redline",
        "domain = '陆域' AND NOT EXISTS (SELECT 1 FROM protected_area p WHERE ST_Intersects(p.geom, redline.geom))"
        " AND NOT EXISTS (SELECT 1 FROM water_source_zone w WHERE ST_DWithin(w.geom, redline.geom, 0.01))",
    )
    lon, lat = inside_point(redline)
    result = check(client, {"type": "Point", "coordinates": [lon, lat]})
    assert result["verdict"] == "restricted"
    reason = next(r for r in result["reasons"] if r["layer"] == "redline")
    assert reason["rule"] == "redline" and reason["id"] == feature_id
    assert len(reason["allowed_activities"]) >= 5


def test_buffer_reports_distance_of_nearby_features(client: TestClient, db: psycopg.Connection) -> None:
    feature_id, zone = feature_geometry(db, "protected_area", "zone = '核心区'")
    lon, lat = inside_point(zone.buffer(0.01).difference(zone.buffer(0.004)))  # 400–1000 m outside
    point = {"type": "Point", "coordinates": [lon, lat]}
    expected = db.execute(
        "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) "
        "FROM protected_area WHERE id = %s",
        [lon, lat, feature_id],
    ).fetchone()[0]
    near = check(client, point, buffer_m=2000)
    overlap = next(o for o in near["overlaps"] if o["layer"] == "protected_area" and o["id"] == feature_id)
    assert overlap["distance_m"] == pytest.approx(expected, abs=1.0)
    assert overlap["overlap_m2"] is None and overlap["share"] is None
    far = check(client, point, buffer_m=0)
    assert all(o["distance_m"] is None for o in far["overlaps"])


def test_stations_nearest_first_within_radius(client: TestClient, db: psycopg.Connection) -> None:
    lon, lat = db.execute("SELECT ST_X(geom) + 0.003, ST_Y(geom) FROM station WHERE code = '1287A'").fetchone()
    result = check(client, {"type": "Point", "coordinates": [lon, lat]}, station_radius_m=4000)
    expected = db.execute(
        "SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) d FROM station "
        "WHERE ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 4000) ORDER BY d",
        [lon, lat, lon, lat],
    ).fetchall()
    assert [s["id"] for s in result["stations"]] == [row[0] for row in expected]
    assert [s["distance_m"] for s in result["stations"]] == pytest.approx([row[1] for row in expected], abs=0.5)
    assert result["stations"][0]["code"] == "1287A"


def test_chiefs_of_the_rivers_touched(client: TestClient, db: psycopg.Connection) -> None:
    river_id, line = feature_geometry(db, "river", "true")
    middle = line.interpolate(0.5, normalized=True)
    site = square(middle.x, middle.y, 300)
    result = check(client, mapping(site))
    rivers = {o["id"] for o in result["overlaps"] if o["layer"] == "river"}
    assert river_id in rivers
    expected = {
        (row[0], row[1])
        for row in db.execute(
            "SELECT chief_id, feature_id FROM chief_assignment WHERE layer = 'river' AND feature_id = ANY(%s)",
            [list(rivers)],
        ).fetchall()
    }
    assert expected
    assert {(c["id"], c["feature_id"]) for c in result["chiefs"] if c["layer"] == "river"} == expected
    levels = [c["level"] for c in result["chiefs"]]
    order = ["city", "district", "town", "village"]
    assert levels == sorted(levels, key=order.index)


def overlap_ids(result: dict) -> set[tuple[str, int]]:
    return {(o["layer"], o["id"]) for o in result["overlaps"]}


def test_gcj02_and_projected_input(client: TestClient, db: psycopg.Connection) -> None:
    _, zone = feature_geometry(db, "protected_area", "zone = '核心区'")
    lon, lat = zone.exterior.coords[0] if zone.geom_type == "Polygon" else zone.geoms[0].exterior.coords[0]
    site = square(lon, lat, 1000)
    reference = check(client, mapping(site))
    coords = shapely.get_coordinates(site)
    glon, glat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    gcj = shapely.set_coordinates(site, np.column_stack([glon, glat]))
    converted = check(client, mapping(gcj), crs="GCJ-02")
    assert overlap_ids(converted) == overlap_ids(reference)
    assert converted["input"]["area_m2"] == pytest.approx(reference["input"]["area_m2"], rel=1e-3)
    to_gk = Transformer.from_crs("EPSG:4326", "EPSG:4548", always_xy=True)
    projected = shapely.transform(site, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1])))
    gk = check(client, mapping(projected), crs="EPSG:4548")
    assert overlap_ids(gk) == overlap_ids(reference)
    by_id = {(o["layer"], o["id"]): o for o in reference["overlaps"]}
    for overlap in gk["overlaps"]:
        assert overlap["overlap_m2"] == pytest.approx(by_id[overlap["layer"], overlap["id"]]["overlap_m2"], rel=1e-3)


def test_feature_and_feature_collection_input(client: TestClient) -> None:
    site = mapping(square(118.09, 24.47, 500))
    plain = check(client, site)
    feature = check(client, {"type": "Feature", "properties": {"name": "site"}, "geometry": site})
    collection = check(client, {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": site}]})
    geometries = check(client, {"type": "GeometryCollection", "geometries": [site]})
    assert overlap_ids(plain) == overlap_ids(feature) == overlap_ids(collection) == overlap_ids(geometries)
    halves = [mapping(square(118.09 + dx, 24.47, 500)) for dx in (0.0, 0.003)]
    two = check(client, {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": g} for g in halves]})
    assert two["input"]["geometry_type"] == "Polygon"  # overlapping parts are dissolved
    assert two["input"]["area_m2"] < 2 * plain["input"]["area_m2"]
    line = check(client, {"type": "LineString", "coordinates": [[118.08, 24.47], [118.10, 24.48]]})
    assert line["input"]["length_m"] > 2000 and line["input"]["area_m2"] == 0


def upload(client: TestClient, name: str, content: bytes, **fields: str):
    return client.post("/api/zone-check", files={"file": (name, content)}, data=fields)


def test_uploads_geojson_shapefile_and_kml(client: TestClient, tmp_path: Path) -> None:
    site = square(118.09, 24.47, 800)
    reference = check(client, mapping(site))
    frame = gpd.GeoDataFrame({"name": ["site"]}, geometry=[site], crs=4326)
    geojson = upload(client, "site.geojson", frame.to_json().encode())
    assert geojson.status_code == 200, geojson.text
    assert overlap_ids(geojson.json()) == overlap_ids(reference)
    shapefile_dir = tmp_path / "shp"
    shapefile_dir.mkdir()
    frame.to_crs(4548).to_file(shapefile_dir / "site.shp")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in shapefile_dir.iterdir():
            zipped.write(path, f"folder/{path.name}")
    shp = upload(client, "site.zip", archive.getvalue(), buffer_m="100")
    assert shp.status_code == 200, shp.text
    assert overlap_ids(reference) <= overlap_ids(shp.json())
    assert shp.json()["input"]["area_m2"] == pytest.approx(reference["input"]["area_m2"], rel=1e-3)
    frame.to_file(tmp_path / "site.kml", driver="KML")
    kml = upload(client, "site.kml", (tmp_path / "site.kml").read_bytes())
    assert kml.status_code == 200, kml.text
    assert overlap_ids(kml.json()) == overlap_ids(reference)


def _many_vertices(count: int) -> dict:
    angles = np.linspace(0, 2 * math.pi, count, endpoint=False)
    ring = np.column_stack([118.1 + 0.01 * np.cos(angles), 24.5 + 0.01 * np.sin(angles)]).tolist()
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[118, 24.5], [118.1, 24.6], [118.1, 24.5], [118, 24.6], [118, 24.5]]],
                }
            },
            400,
            "Self-intersection",
        ),
        ({"geometry": _many_vertices(20_001)}, 413, "20000"),
        ({"geometry": mapping(square(118.1, 24.6, 25_000))}, 413, "km²"),
        ({"geometry": {"type": "Point", "coordinates": [118.1, 200]}}, 400, "longitude/latitude"),
        ({"geometry": {"type": "Point", "coordinates": ["a", 1]}}, 400, "numbers"),
        ({"geometry": {"type": "Circle", "coordinates": [118.1, 24.5]}}, 400, "Circle"),
        ({"geometry": {"type": "FeatureCollection", "features": []}}, 400, "non-empty"),
        ({"geometry": {"type": "Feature", "geometry": None}}, 400, "without geometry"),
        (
            {
                "geometry": {
                    "type": "GeometryCollection",
                    "geometries": [{"type": "Point", "coordinates": [118, 24]}, mapping(square(118, 24, 100))],
                }
            },
            400,
            "mixes",
        ),
        ({"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}, "crs": "EPSG:3857"}, 400, "crs"),
        ({"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}, "crs": "EPSG:4548"}, 400, "outside"),
        ({"geometry": {"type": "Point", "coordinates": [118.1, 24.5]}, "buffer_m": -5}, 400, "buffer_m"),
        ({"buffer_m": 5}, 400, "geometry"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_why(client: TestClient, body: dict, status: int, words: str) -> None:
    response = client.post("/api/zone-check", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_bad_uploads(client: TestClient) -> None:
    text = upload(client, "notes.txt", b"this is not a map")
    assert text.status_code == 415 and "GeoJSON" in text.json()["detail"]
    empty_zip = io.BytesIO()
    with zipfile.ZipFile(empty_zip, "w") as zipped:
        zipped.writestr("readme.txt", "nothing here")
    assert upload(client, "site.zip", empty_zip.getvalue()).status_code == 415
    huge = b'{"type": "FeatureCollection", "features": [' + b" " * (11 * 1024 * 1024) + b"]}"
    too_big = upload(client, "big.geojson", huge)
    assert too_big.status_code == 413 and "MB" in too_big.json()["detail"]
    broken = upload(client, "site.geojson", b'{"type": "FeatureCollection", "features": [')
    assert broken.status_code in (400, 415)
    no_file = client.post("/api/zone-check", data={"buffer_m": "10"}, files={"other": ("x", b"1")})
    assert no_file.status_code == 400 and "file" in no_file.json()["detail"]
    plain = client.post("/api/zone-check", content=b"118.1,24.5", headers={"content-type": "text/plain"})
    assert plain.status_code == 415


def test_report_is_a_printable_page(client: TestClient, db: psycopg.Connection) -> None:
    _, zone = feature_geometry(db, "protected_area", "zone = '核心区'")
    lon, lat = inside_point(zone)
    body = {"geometry": mapping(Point(lon, lat).buffer(0.002)), "buffer_m": 300}
    response = client.post("/api/zone-check/report", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    result = client.post("/api/zone-check", json=body).json()
    assert "禁止" in page and "Prohibited" in page
    assert "@media print" in page and "leaflet" in page.lower() and "folium-map" in page
    # Self-contained: Leaflet is inlined from the frontend build, no script or style from a CDN.
    assert re.search(r"<script[^>]+src=\"data:text/javascript;base64,", page)
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", page), "the report loads code from the internet"
    for overlap in result["overlaps"]:
        assert overlap["name"] in page
    revision = db.execute("SELECT revision FROM layer_state WHERE layer = 'protected_area'").fetchone()[0]
    assert f">{revision}<" in page
    computed = dt.datetime.fromisoformat(result["computed_at"].replace("Z", "+00:00"))
    assert computed.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") in page
    assert json.dumps("拟选址 Site")[1:-1] in page or "拟选址 Site" in page


# --- input forms and limits checked before the work -------------------------------------


def test_bare_geometry_feature_collection_and_wrapped_forms_agree(client: TestClient) -> None:
    site = mapping(square(118.09, 24.47, 500))
    wrapped = check(client, site)
    forms = [
        site,
        {"type": "Feature", "properties": {"name": "拟选址"}, "geometry": site},
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": site}]},
    ]
    for body in forms:
        response = client.post("/api/zone-check", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert overlap_ids(result) == overlap_ids(wrapped) and result["verdict"] == wrapped["verdict"]
        assert result["input"]["area_m2"] == pytest.approx(wrapped["input"]["area_m2"], rel=1e-9)
        assert result["input"]["buffer_m"] == 0 and result["input"]["station_radius_m"] == 3000
    report = client.post("/api/zone-check/report", json=site)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")


def test_openapi_documents_every_input_form(client: TestClient) -> None:
    body = client.get("/openapi.json").json()["paths"]["/api/zone-check"]["post"]["requestBody"]["content"]
    forms = body["application/json"]["schema"]["anyOf"]
    bare = next(f for f in forms if "type" in f.get("required", []))
    assert {"Point", "Polygon", "Feature", "FeatureCollection"} <= set(bare["properties"]["type"]["enum"])
    wrapped = next(f for f in forms if "geometry" in f.get("required", []))
    assert {"buffer_m", "crs", "station_radius_m"} <= set(wrapped["properties"])
    assert "GeoPackage" in body["multipart/form-data"]["schema"]["properties"]["file"]["description"]


def _nested_collection(depth: int) -> dict:
    node: dict = {"type": "Point", "coordinates": [118.1, 24.5]}
    for _ in range(depth):
        node = {"type": "GeometryCollection", "geometries": [node]}
    return node


def _ring(lon: float, lat: float, side_m: float, clockwise: bool) -> list[list[float]]:
    ring = [list(c) for c in square(lon, lat, side_m).exterior.coords]
    return ring[::-1] if clockwise == shapely.LinearRing(ring).is_ccw else ring


WHOLE_GLOBE = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (WHOLE_GLOBE, 400, "not within the region"),
        ({"type": "LineString", "coordinates": [[179.9, 24], [-179.9, 24]]}, 400, "not within the region"),
        ({"type": "Point", "coordinates": [121.47, 31.23]}, 400, "ECOMAP_REGION=minxinan"),
        (_nested_collection(20), 400, "nested more than"),
        ({"type": "Polygon", "coordinates": [_ring(118.1, 24.6, 25_000, clockwise=True)]}, 413, "km²"),
        ({"type": "Polygon", "coordinates": [_ring(118.1, 24.6, 25_000, clockwise=False)]}, 413, "km²"),
        ({"type": "MultiPoint", "coordinates": [[118.1, 24.5]] * 20_001}, 413, "20000 vertices"),
    ],
)
def test_limits_are_checked_before_the_work(client: TestClient, body: dict, status: int, words: str) -> None:
    response = client.post("/api/zone-check", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_a_collection_nested_500_levels_deep_is_refused(client: TestClient) -> None:
    point = '{"type": "Point", "coordinates": [118.1, 24.5]}'
    body = '{"type": "GeometryCollection", "geometries": [' * 500 + point + "]}" * 500
    response = client.post("/api/zone-check", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested more than 8 levels" in response.json()["detail"]
    wrapped = client.post("/api/zone-check", json={"geometry": _nested_collection(3)})
    assert wrapped.status_code == 200, wrapped.text


def test_a_clockwise_site_measures_like_a_counter_clockwise_one(client: TestClient) -> None:
    areas = []
    for clockwise in (True, False):
        ring = _ring(118.09, 24.47, 800, clockwise=clockwise)
        result = check(client, {"type": "Polygon", "coordinates": [ring]})
        areas.append(result["input"]["area_m2"])
    assert areas[0] == pytest.approx(areas[1], rel=1e-9)
    assert areas[0] == pytest.approx(geodesic_area(square(118.09, 24.47, 800)), rel=1e-6)


def test_ellipsoidal_area_ignores_winding_and_subtracts_holes() -> None:
    from gis_service.services.site import ellipsoidal_area

    shell = square(118.0, 24.5, 40_000)
    hole = square(118.0, 24.5, 10_000)
    holed = shapely.Polygon(shell.exterior.coords, [hole.exterior.coords])
    # Independently: the planar area in an equal-area projection centred on the site.
    laea = Transformer.from_crs("EPSG:4326", "+proj=laea +lat_0=24.5 +lon_0=118 +ellps=WGS84", always_xy=True)
    expected = shapely.transform(holed, lambda xy: np.column_stack(laea.transform(xy[:, 0], xy[:, 1]))).area
    for polygon in (holed, shapely.Polygon(shell.exterior.coords[::-1], [hole.exterior.coords[::-1]])):
        assert ellipsoidal_area(polygon) == pytest.approx(expected, rel=1e-4)
    assert ellipsoidal_area(shapely.MultiPolygon([holed, square(118.5, 24.5, 1000)])) > expected


def test_a_million_vertex_multipoint_is_refused_by_counting(client: TestClient) -> None:
    body = b'{"type":"MultiPoint","coordinates":[' + b",".join([b"[118,24]"] * 1_000_000) + b"]}"
    assert len(body) < 10 * 2**20
    response = client.post("/api/zone-check", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "more than 20000 vertices" in response.json()["detail"]


def _zip_bomb(declared: int | None) -> bytes:
    """A zipped GeoJSON whose member inflates to 200 MB of spaces; ``declared``: the size the
    archive claims for it (None: the true one)."""
    archive = io.BytesIO()
    member = b'{"type": "FeatureCollection", "features": [' + b" " * (200 * 2**20) + b"]}"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zipped:
        zipped.writestr("site.geojson", member)
    data = bytearray(archive.getvalue())
    if declared is not None:
        local, central = data.find(b"PK\x03\x04"), data.rfind(b"PK\x01\x02")
        data[local + 22 : local + 26] = declared.to_bytes(4, "little")
        data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    return bytes(data)


def test_zip_bombs_are_refused_on_what_they_really_inflate_to(client: TestClient) -> None:
    honest = _zip_bomb(None)
    assert len(honest) < 1024 * 1024
    too_big = upload(client, "site.zip", honest)
    assert too_big.status_code == 413 and "unzipped" in too_big.json()["detail"]
    lying = upload(client, "site.zip", _zip_bomb(1024))  # claims 1 KB: read no further than that, then refused
    assert lying.status_code in (413, 415) and lying.json()["detail"]


def test_extraction_counts_the_bytes_really_decompressed(tmp_path: Path) -> None:
    from layers.sources import FileTooLarge, extract_zip

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a.geojson", b" " * (3 * 2**20))
    with zipfile.ZipFile(archive) as opened, pytest.raises(FileTooLarge, match="unzipped"):
        extract_zip(opened, tmp_path, max_bytes=2**20)
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2**20 + 2**16


def test_a_geopackage_and_a_kmz_upload(client: TestClient, tmp_path: Path) -> None:
    site = square(118.09, 24.47, 800)
    reference = check(client, mapping(site))
    frame = gpd.GeoDataFrame({"name": ["拟选址"]}, geometry=[site], crs=4326)
    frame.to_crs(4527).to_file(tmp_path / "site.gpkg", driver="GPKG")
    gpkg = upload(client, "site.gpkg", (tmp_path / "site.gpkg").read_bytes())
    assert gpkg.status_code == 200, gpkg.text
    assert gpkg.json()["input"]["area_m2"] == pytest.approx(reference["input"]["area_m2"], rel=1e-3)
    frame.to_file(tmp_path / "doc.kml", driver="KML")
    kmz = io.BytesIO()
    with zipfile.ZipFile(kmz, "w") as zipped:
        zipped.write(tmp_path / "doc.kml", "doc.kml")
    answer = upload(client, "site.kmz", kmz.getvalue())
    assert answer.status_code == 200, answer.text
    assert overlap_ids(answer.json()) == overlap_ids(reference)


def test_the_region_is_configuration(database_url: str) -> None:
    from gis_service import create_app
    from tests.conftest import make_settings

    zhangzhou = {"type": "Point", "coordinates": [117.65, 24.51]}
    with TestClient(create_app(make_settings(database_url))) as default:
        refused = default.post("/api/zone-check", json=zhangzhou)
    assert refused.status_code == 400
    assert "Xiamen" in refused.json()["detail"] and "ECOMAP_REGION=minxinan" in refused.json()["detail"]
    with TestClient(create_app(make_settings(database_url, region="minxinan"))) as regional:
        accepted = regional.post("/api/zone-check", json=zhangzhou)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["verdict"] == "clear"


def test_the_event_loop_answers_while_a_large_upload_is_parsed(live_server: str, tmp_path: Path) -> None:
    """A cheap request sent once a heavy upload has been sent answers first: the upload is
    read in a worker thread, not on the event loop (which would answer them in order).

    The upload is a zipped Shapefile of 150,000 points with a long attribute each (~40 MB
    unzipped): it is refused for its vertices, but only after it has been read that far."""
    import threading

    import httpx

    rng = np.random.default_rng(1)
    count = 150_000
    points = shapely.points(118.08 + 0.01 * rng.random(count), 24.47 + 0.01 * rng.random(count))
    frame = gpd.GeoDataFrame({"note": ["x" * 250] * count}, geometry=points, crs=4326)
    folder = tmp_path / "many"
    folder.mkdir()
    frame.to_file(folder / "site.shp", engine="pyogrio")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in folder.iterdir():
            zipped.write(path, path.name)
    boundary = "ecomap-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="site.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n").encode()  # fmt: skip
    payload = head + archive.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    finished: list[str] = []
    sent = threading.Event()

    def body():
        yield payload
        sent.set()  # the whole upload has left the client

    def heavy() -> None:
        response = httpx.post(
            f"{live_server}/api/zone-check",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )
        finished.append(f"heavy {response.status_code} {response.json()['detail']}")

    thread = threading.Thread(target=heavy)
    thread.start()
    assert sent.wait(60)
    health = httpx.get(f"{live_server}/healthz", timeout=60)
    finished.append(f"health {health.status_code}")
    thread.join(120)
    assert finished[0] == "health 200", finished
    assert finished[1] == "heavy 413 the file has more than 20000 vertices; simplify it", finished
