"""OGC API – Features under /ogc: documents, paging, filters, CRS, and real clients (GDAL, OWSLib)."""

from __future__ import annotations

import json
import subprocess
from urllib.parse import parse_qs, urlsplit

import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from psycopg import sql

from layers import geojson
from layers.catalog import load_catalog

CATALOG = load_catalog()
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"


def ids_where(db: psycopg.Connection, table: str, condition: str = "true", params: list | None = None) -> set[int]:
    query = sql.SQL("SELECT id FROM {} WHERE " + condition).format(sql.Identifier(table))
    return {row[0] for row in db.execute(query, params or []).fetchall()}


def items(client: TestClient, layer: str, **params: object) -> dict:
    response = client.get(f"/ogc/collections/{layer}/items", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    return response.json()


def next_link(page: dict) -> str | None:
    return next((link["href"] for link in page["links"] if link["rel"] == "next"), None)


def test_landing_page_links(client: TestClient) -> None:
    response = client.get("/ogc")
    assert response.status_code == 200
    links = {link["rel"]: link for link in response.json()["links"]}
    assert links["service-desc"]["href"].endswith("/ogc/api")  # the OGC API's own OpenAPI document
    assert links["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    assert links["conformance"]["href"].endswith("/ogc/conformance")
    assert links["data"]["href"].endswith("/ogc/collections")
    assert client.get("/ogc/", params={"f": "json"}).json() == response.json()


def test_conformance(client: TestClient) -> None:
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    for expected in (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    ):
        assert expected in classes


def test_collections_with_extent_from_data(client: TestClient, db: psycopg.Connection) -> None:
    collections = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert set(collections) == set(CATALOG.ids)
    for layer in CATALOG:
        box = db.execute(
            sql.SQL(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM {}) s"
            ).format(sql.Identifier(layer.table))
        ).fetchone()
        assert collections[layer.id]["extent"]["spatial"]["bbox"][0] == pytest.approx(list(box), abs=1e-6)
        rels = {link["rel"]: link["type"] for link in collections[layer.id]["links"]}
        assert rels["items"] == "application/geo+json"
    single = client.get("/ogc/collections/redline").json()
    assert single["id"] == "redline"
    assert CGCS2000 in single["crs"]


@pytest.mark.parametrize("layer_id", ["redline", "station", "river"])
def test_paging_visits_every_feature_exactly_once(client: TestClient, db: psycopg.Connection, layer_id: str) -> None:
    expected = ids_where(db, CATALOG.get(layer_id).table)
    seen: list[int] = []
    page = items(client, layer_id, limit=7)
    pages = 1
    while True:
        seen += [f["id"] for f in page["features"]]
        assert page["numberReturned"] == len(page["features"])
        assert page["numberMatched"] == len(expected)  # on every page (a small table: counted exactly)
        link = next_link(page)
        if link is None:
            break
        query = parse_qs(urlsplit(link).query)
        page = items(client, layer_id, **{k: v[0] for k, v in query.items()})
        pages += 1
    assert len(seen) == len(set(seen)), "a feature appeared on two pages"
    assert set(seen) == expected
    assert pages == -(-len(expected) // 7)
    assert page["numberMatched"] == len(expected)  # known on the last page
    assert any(link["rel"] == "prev" for link in page["links"])


def test_limit_above_maximum_is_clamped(client: TestClient, db: psycopg.Connection) -> None:
    page = items(client, "station", limit=50_000)
    assert page["numberReturned"] == len(ids_where(db, "station"))
    assert page["numberMatched"] == page["numberReturned"]


def test_property_equality_filter(client: TestClient, db: psycopg.Connection) -> None:
    page = items(client, "protected_area", zone="核心区")
    assert {f["id"] for f in page["features"]} == ids_where(db, "protected_area", "zone = %s", ["核心区"])
    assert page["features"] and all(f["properties"]["zone"] == "核心区" for f in page["features"])
    numeric = items(client, "river", downstream_id=4)
    assert {f["id"] for f in numeric["features"]} == ids_where(db, "river", "downstream_id = 4")
    assert client.get("/ogc/collections/river/items", params={"downstream_id": "four"}).status_code == 400


@pytest.mark.parametrize(
    ("layer_id", "cql", "condition"),
    [
        (
            "protected_area",
            "zone IN ('核心区','缓冲区') AND area_ha > 100",
            "zone IN ('核心区','缓冲区') AND area_ha > 100",
        ),
        ("station", "kind = 'section' OR code LIKE 'XM-PK%'", "kind = 'section' OR code LIKE 'XM-PK%%'"),
        ("redline", "NOT (domain = '海域')", "NOT (domain = '海域')"),
        (
            "station",
            "S_INTERSECTS(geometry, BBOX(118.0, 24.4, 118.2, 24.6))",
            "ST_Intersects(geom, ST_MakeEnvelope(118.0, 24.4, 118.2, 24.6, 4326))",
        ),
    ],
)
def test_cql2_filter(client: TestClient, db: psycopg.Connection, layer_id: str, cql: str, condition: str) -> None:
    page = items(client, layer_id, filter=cql, **{"filter-lang": "cql2-text"}, limit=1000)
    expected = ids_where(db, layer_id, condition)
    assert expected, "the demo data should match this filter"
    assert {f["id"] for f in page["features"]} == expected


@pytest.mark.parametrize(
    "attack",
    [
        "name = 'x'; DROP TABLE redline; --",
        "name = 'x' OR 1=1; DELETE FROM redline",
        "\"name; DROP TABLE redline\" = 'x'",
        "name = 'x') OR (1=1",
        "pg_sleep(5) = 1",
        "name = 'x' UNION SELECT * FROM chief",
    ],
)
def test_sql_injection_in_filters_is_rejected(client: TestClient, db: psycopg.Connection, attack: str) -> None:
    before = db.execute("SELECT count(*) FROM redline").fetchone()[0]
    response = client.get("/ogc/collections/redline/items", params={"filter": attack})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    equality = client.get("/ogc/collections/redline/items", params={"name": "'; DROP TABLE redline; --"})
    assert equality.status_code == 200 and equality.json()["features"] == []
    assert db.execute("SELECT count(*) FROM redline").fetchone()[0] == before


def test_properties_and_sortby(client: TestClient, db: psycopg.Connection) -> None:
    page = items(client, "protected_area", properties="name,area_ha", sortby="-area_ha")
    assert all(set(f["properties"]) == {"name", "area_ha"} for f in page["features"])
    areas = [f["properties"]["area_ha"] for f in page["features"]]
    assert areas == sorted(areas, reverse=True)
    expected = [row[0] for row in db.execute("SELECT id FROM protected_area ORDER BY area_ha DESC, id").fetchall()]
    assert [f["id"] for f in page["features"]] == expected
    ascending = items(client, "protected_area", sortby="+name")  # '+' may arrive as a space
    names = [f["properties"]["name"] for f in ascending["features"]]
    assert names == sorted(names)
    assert client.get("/ogc/collections/redline/items", params={"properties": "nope"}).status_code == 400
    assert client.get("/ogc/collections/redline/items", params={"sortby": "geom"}).status_code == 400


def _coordinates(geometry: dict) -> list[list[float]]:
    """Every position of a GeoJSON geometry."""
    found: list[list[float]] = []

    def walk(c: list) -> None:
        if isinstance(c[0], (int, float)):
            found.append(c)
        else:
            for part in c:
                walk(part)

    for part in geometry["geometries"] if geometry["type"] == "GeometryCollection" else [geometry]:
        walk(part["coordinates"])
    return found


@pytest.mark.parametrize("layer", ["redline", "river", "station"])
@pytest.mark.parametrize("crs", [CRS84, CGCS2000])
def test_skip_geometry_gives_the_attributes_and_the_box_of_each_feature(
    client: TestClient, layer: str, crs: str
) -> None:
    full = items(client, layer, limit=50, crs=crs)
    bare = items(client, layer, limit=50, crs=crs, skipGeometry="true")
    assert len(full["features"]) > 1
    assert bare["numberMatched"] == full["numberMatched"]
    assert [f["id"] for f in bare["features"]] == [f["id"] for f in full["features"]]
    for with_shape, without in zip(full["features"], bare["features"], strict=True):
        assert without["geometry"] is None
        assert without["properties"] == with_shape["properties"]
        # the box of the very coordinates the full feature has (same axis order, same rounding)
        points = _coordinates(with_shape["geometry"])
        box = [
            min(p[0] for p in points),
            min(p[1] for p in points),
            max(p[0] for p in points),
            max(p[1] for p in points),
        ]
        assert without["bbox"] == pytest.approx(box, abs=1.01e-7)
    if crs == CGCS2000:  # latitude first, as the coordinates
        assert 24 < bare["features"][0]["bbox"][0] < 25 and 117 < bare["features"][0]["bbox"][1] < 119
    assert items(client, layer, limit=50, crs=crs, skipGeometry="false")["features"] == full["features"]


def test_skip_geometry_pages_filters_and_refuses_other_values(client: TestClient, db: psycopg.Connection) -> None:
    page = items(client, "station", limit=3, skipGeometry="true", properties="name", filter="kind <> 'nope'")
    assert all(set(f["properties"]) == {"name"} and f["geometry"] is None for f in page["features"])
    following = next_link(page)
    assert following is not None and parse_qs(urlsplit(following).query)["skipGeometry"] == ["true"]
    second = client.get(following).json()
    assert second["features"] and all(f["geometry"] is None and len(f["bbox"]) == 4 for f in second["features"])
    lon, lat = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [second["features"][0]["id"]]
    ).fetchone()
    assert second["features"][0]["bbox"] == pytest.approx([lon, lat, lon, lat], abs=1e-7)  # a point's box: itself
    refused = client.get("/ogc/collections/station/items", params={"skipGeometry": "yes"})
    assert refused.status_code in (400, 422) and "skipGeometry" in refused.json()["detail"]


def test_a_feature_without_geometry_has_no_bbox(db: psycopg.Connection) -> None:
    """The builder behind skipGeometry on a null and an empty geometry (valid GeoJSON: no bbox member)."""
    statement = sql.SQL("SELECT {}::text FROM (VALUES (NULL::geometry), ('POINT EMPTY'::geometry)) AS t(g)").format(
        geojson.feature_without_geometry(sql.Literal(7), sql.SQL("t.g"), sql.SQL("'{}'::json"))
    )
    for (text,) in db.execute(statement).fetchall():
        assert json.loads(text) == {"type": "Feature", "id": 7, "geometry": None, "properties": {}}


def test_bbox(client: TestClient, db: psycopg.Connection) -> None:
    page = items(client, "redline", bbox="118.0,24.4,118.2,24.6", limit=1000)
    expected = ids_where(db, "redline", "ST_Intersects(geom, ST_MakeEnvelope(118.0, 24.4, 118.2, 24.6, 4326))")
    assert {f["id"] for f in page["features"]} == expected
    # the same box given in EPSG:4490 (latitude first)
    swapped = items(client, "redline", bbox="24.4,118.0,24.6,118.2", **{"bbox-crs": CGCS2000}, limit=1000)
    assert {f["id"] for f in swapped["features"]} == expected
    assert client.get("/ogc/collections/redline/items", params={"bbox": "1,2,3"}).status_code == 400


def test_output_crs(client: TestClient) -> None:
    wgs = client.get("/ogc/collections/station/items/1")
    assert wgs.headers["content-crs"] == f"<{CRS84}>"
    cgcs = client.get("/ogc/collections/station/items/1", params={"crs": CGCS2000})
    assert cgcs.status_code == 200
    assert cgcs.headers["content-crs"] == f"<{CGCS2000}>"
    lon, lat = wgs.json()["geometry"]["coordinates"]
    assert cgcs.json()["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-5)
    assert client.get("/ogc/collections/station/items", params={"crs": "EPSG:3857"}).status_code == 400


def test_errors(client: TestClient) -> None:
    missing = client.get("/ogc/collections/redline/items/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert client.get("/ogc/collections/redline/items/abc").status_code == 404
    assert client.get("/ogc/collections/nowhere/items").status_code == 404
    unknown = client.get("/ogc/collections/redline/items", params={"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    lang = client.get("/ogc/collections/redline/items", params={"filter": "a=1", "filter-lang": "cql2-json"})
    assert lang.status_code == 400


def test_queryables(client: TestClient) -> None:
    response = client.get("/ogc/collections/protected_area/queryables")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    layer = CATALOG.get("protected_area")
    assert set(layer.property_names) <= set(schema["properties"])
    assert schema["properties"]["zone"]["enum"] == layer.get_property("zone").values
    assert schema["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"


def test_gdal_reads_the_collections(live_server: str, db: psycopg.Connection, tmp_path) -> None:
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    for layer_id in CATALOG.ids:
        assert f": {layer_id} " in listing.stdout
    target = tmp_path / "redline.gpkg"
    copy = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{live_server}/ogc", "redline", "-oo", "PAGE_SIZE=10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert copy.returncode == 0, copy.stderr
    copied = pyogrio.read_dataframe(target, layer="redline")
    expected = dict(db.execute("SELECT code, name FROM redline").fetchall())
    assert len(copied) == len(expected)
    assert dict(zip(copied["code"], copied["name"], strict=True)) == expected
    assert copied.crs.to_epsg() == 4326


def test_owslib_reads_the_collections(live_server: str, db: psycopg.Connection) -> None:
    api = Features(f"{live_server}/ogc")
    assert {c["id"] for c in api.collections()["collections"]} == set(CATALOG.ids)
    page = api.collection_items("station", limit=5, offset=5)
    assert [f["id"] for f in page["features"]] == [
        row[0] for row in db.execute("SELECT id FROM station ORDER BY id LIMIT 5 OFFSET 5").fetchall()
    ]
    assert "zone" in api.collection_queryables("protected_area")["properties"]
    assert api.collection_item("station", "1")["id"] == 1
    assert "/collections/{layer}/items" in api.api()["paths"]  # paths relative to the landing page
