"""OGC API – Features conformance: datetime, numberMatched, filter-crs, CQL2-JSON, sortables,
valid JSON Schemas, typed links and HTML views, checked against independent SQL and with the
real clients (GDAL's OAPIF driver, OWSLib)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from urllib.parse import urlsplit

import jsonschema
import psycopg
import pytest
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from psycopg import sql

from layers.catalog import load_catalog

CATALOG = load_catalog()
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
TEMPORAL = [layer.id for layer in CATALOG if layer.temporal is not None]


def ids_where(db: psycopg.Connection, table: str, condition: str = "true", params: list | None = None) -> set[int]:
    query = sql.SQL("SELECT id FROM {} WHERE " + condition).format(sql.Identifier(table))
    return {row[0] for row in db.execute(query, params or []).fetchall()}


def get_items(client: TestClient, layer: str, **params: object) -> dict:
    response = client.get(f"/ogc/collections/{layer}/items", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    return response.json()


def feature_ids(page: dict) -> set[int]:
    return {feature["id"] for feature in page["features"]}


# -- datetime -----------------------------------------------------------------------------


def test_catalog_declares_the_temporal_properties_that_exist() -> None:
    assert CATALOG.get("redline").temporal.start == "valid_from"
    assert CATALOG.get("protected_area").temporal.start == "established"
    assert set(TEMPORAL) == {"redline", "protected_area"}


@pytest.mark.parametrize(
    ("layer", "value", "condition"),
    [
        ("protected_area", "2000-01-01/2004-12-31", "established BETWEEN 2000 AND 2004"),
        ("protected_area", "2004-06-15", "established = 2004"),
        ("protected_area", "2004-06-15T10:00:00Z", "established = 2004"),
        ("protected_area", "../1999-12-31", "established <= 1999"),
        ("protected_area", "2005-01-01/..", "established >= 2005"),
        ("protected_area", "2004-12-31T23:00:00Z/", "established >= 2004"),  # an empty end is open too
        ("protected_area", "../..", "established IS NOT NULL"),
        ("redline", "2023-06-01", "valid_from = '2023-06-01'"),
        ("redline", "2023-01-01/2023-12-31", "valid_from BETWEEN '2023-01-01' AND '2023-12-31'"),
        ("redline", "2023-01-01/..", "valid_from >= '2023-01-01'"),
        ("redline", "2023-06-02/..", "valid_from >= '2023-06-02'"),
        ("redline", "../2023-05-31T23:59:59Z", "valid_from <= '2023-05-31'"),
    ],
)
def test_datetime_selects_features_whose_time_intersects(
    client: TestClient, db: psycopg.Connection, layer: str, value: str, condition: str
) -> None:
    page = get_items(client, layer, datetime=value)
    expected = ids_where(db, layer, condition)
    assert feature_ids(page) == expected
    assert page["numberMatched"] == len(expected)


def test_datetime_discriminates_in_the_demo_data(db: psycopg.Connection) -> None:
    """The cases above would pass with a filter that ignores datetime if the data were uniform."""
    years = {row[0] for row in db.execute("SELECT DISTINCT established FROM protected_area").fetchall()}
    assert len(years) >= 3
    assert ids_where(db, "redline", "valid_from >= '2023-01-01'")


def test_datetime_combines_with_filters_and_revisions(client: TestClient, db: psycopg.Connection) -> None:
    page = get_items(client, "protected_area", datetime="2000-01-01/..", filter="area_ha > 100")
    assert feature_ids(page) == ids_where(db, "protected_area", "established >= 2000 AND area_ha > 100")
    history = get_items(client, "redline", datetime="2023-01-01/..", revision=1)
    assert feature_ids(history) == ids_where(db, "redline", "valid_from >= '2023-01-01'")


def test_datetime_on_a_collection_without_temporal_property(client: TestClient) -> None:
    response = client.get("/ogc/collections/station/items", params={"datetime": "2024-01-01"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "collection station has no temporal property" in detail
    assert "datetime applies to: protected_area, redline" in detail


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-01-01/2023-01-01", "2023/2024/2025", "2024-02-30", "..", "9999-12-31T23:59:59-01:00", "x\x00"],
)
def test_malformed_datetime_is_refused(client: TestClient, value: str) -> None:
    response = client.get("/ogc/collections/redline/items", params={"datetime": value})
    assert response.status_code == 400, response.text
    assert "datetime" in response.json()["detail"]


def test_temporal_extent_from_the_data(client: TestClient, db: psycopg.Connection) -> None:
    first, last = db.execute("SELECT min(valid_from), max(valid_from) FROM redline").fetchone()
    redline = client.get("/ogc/collections/redline").json()
    assert redline["extent"]["temporal"]["interval"] == [[f"{first}T00:00:00Z", f"{last}T23:59:59Z"]]
    assert redline["extent"]["temporal"]["trs"] == "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
    start, end = db.execute("SELECT min(established), max(established) FROM protected_area").fetchone()
    protected = client.get("/ogc/collections/protected_area").json()
    assert protected["extent"]["temporal"]["interval"] == [[f"{start}-01-01T00:00:00Z", f"{end}-12-31T23:59:59Z"]]
    station = client.get("/ogc/collections/station").json()
    assert "temporal" not in station["extent"] and "spatial" in station["extent"]


def gdal_features(live_server: str, layer: str, where: str) -> tuple[list[int], str]:
    """The feature ids GDAL's OAPIF driver reads for a -where, and its debug log."""
    result = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc", layer, "-where", where, "-fields=NO", "-geom=NO"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CPL_DEBUG": "ON"},
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    ids = [int(match) for match in re.findall(r"^OGRFeature\(\w+\):(\d+)", result.stdout, flags=re.M)]
    return ids, result.stderr


def test_gdal_pushes_date_where_as_datetime(live_server: str, db: psycopg.Connection) -> None:
    ids, log = gdal_features(live_server, "redline", "valid_from > '2023-01-01'")
    assert "datetime=" in log  # GDAL turned the date condition into the datetime parameter
    assert sorted(ids) == sorted(ids_where(db, "redline", "valid_from > '2023-01-01'"))
    later, _ = gdal_features(live_server, "redline", "valid_from > '2023-07-01'")
    assert later == sorted(ids_where(db, "redline", "valid_from > '2023-07-01'"))


def test_owslib_datetime(live_server: str, db: psycopg.Connection) -> None:
    api = Features(f"{live_server}/ogc")
    redline = api.collection_items("redline", datetime_="2023-01-01/..", limit=1000)
    assert feature_ids(redline) == ids_where(db, "redline", "valid_from >= '2023-01-01'")
    protected = api.collection_items("protected_area", datetime_="2000-01-01/2004-12-31", limit=1000)
    assert feature_ids(protected) == ids_where(db, "protected_area", "established BETWEEN 2000 AND 2004")
    assert protected["numberMatched"] == len(protected["features"])


# -- numberMatched ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "params", "condition"),
    [
        ("redline", {}, "true"),
        ("station", {}, "true"),
        ("redline", {"filter": "area_km2 > 2"}, "area_km2 > 2"),
        ("protected_area", {"level": "国家级"}, "level = '国家级'"),
        (
            "redline",
            {"bbox": "118.0,24.4,118.2,24.6"},
            "ST_Intersects(geom, ST_MakeEnvelope(118.0,24.4,118.2,24.6,4326))",
        ),
        ("protected_area", {"datetime": "2000-01-01/.."}, "established >= 2000"),
    ],
)
def test_number_matched_on_the_first_page(
    client: TestClient, db: psycopg.Connection, layer: str, params: dict, condition: str
) -> None:
    expected = len(ids_where(db, layer, condition))
    assert expected > 3, "the first page must not be the last one"
    page = get_items(client, layer, **{**params, "limit": 2})
    assert page["numberReturned"] == 2
    assert any(link["rel"] == "next" for link in page["links"])
    assert page["numberMatched"] == expected
    second = get_items(client, layer, **{**params, "limit": 2, "offset": 2})
    assert second["numberMatched"] == expected
    beyond = get_items(client, layer, **{**params, "limit": 2, "offset": expected + 5})
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == expected


def test_large_unfiltered_collections_use_the_planner_estimate(
    client: TestClient, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis_service.services import features

    db.execute("ANALYZE station")
    db.execute("ANALYZE protected_area")
    estimate = db.execute("SELECT reltuples FROM pg_class WHERE oid = 'station'::regclass").fetchone()[0]
    monkeypatch.setattr(features, "EXACT_COUNT_ROWS", 10)  # as if station were a large table
    monkeypatch.setattr(features, "ESTIMATED_EXTENT_ROWS", 10)
    page = get_items(client, "station", limit=2)
    assert page["numberMatched"] == int(estimate)
    filtered = get_items(client, "station", limit=2, filter="id > 3")
    assert filtered["numberMatched"] == len(ids_where(db, "station", "id > 3"))  # filtered: still exact
    start, end = db.execute("SELECT min(established), max(established) FROM protected_area").fetchone()
    interval = client.get("/ogc/collections/protected_area").json()["extent"]["temporal"]["interval"]
    assert interval == [[f"{start}-01-01T00:00:00Z", f"{end}-12-31T23:59:59Z"]]  # from the statistics


# -- filter-crs and CQL2-JSON ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("crs84", "latlon"),
    [
        ("S_INTERSECTS(geometry, POINT(118.022 24.826))", "S_INTERSECTS(geometry, POINT(24.826 118.022))"),
        (
            "S_INTERSECTS(geometry, BBOX(118.0, 24.4, 118.2, 24.6))",
            "S_INTERSECTS(geometry, BBOX(24.4, 118.0, 24.6, 118.2))",
        ),
        (
            "S_WITHIN(geometry, POLYGON((118.0 24.4, 118.3 24.4, 118.3 24.7, 118.0 24.7, 118.0 24.4)))",
            "S_WITHIN(geometry, POLYGON((24.4 118.0, 24.4 118.3, 24.7 118.3, 24.7 118.0, 24.4 118.0)))",
        ),
    ],
)
def test_filter_crs_4490_is_latitude_first(client: TestClient, db: psycopg.Connection, crs84: str, latlon: str) -> None:
    reference = get_items(client, "redline", filter=crs84)
    assert reference["features"], "the CRS84 filter should select features"
    swapped = get_items(client, "redline", filter=latlon, **{"filter-crs": CGCS2000})
    assert feature_ids(swapped) == feature_ids(reference)
    as_crs84 = get_items(client, "redline", filter=latlon)  # read as lon/lat: elsewhere in the world
    assert feature_ids(as_crs84) != feature_ids(reference)


def test_point_filter_matches_sql(client: TestClient, db: psycopg.Connection) -> None:
    page = get_items(
        client, "protected_area", filter="S_INTERSECTS(geometry, POINT(24.45 118.07))", **{"filter-crs": CGCS2000}
    )
    expected = ids_where(db, "protected_area", "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(118.07, 24.45), 4326))")
    assert feature_ids(page) == expected


def test_unsupported_filter_crs(client: TestClient) -> None:
    response = client.get(
        "/ogc/collections/redline/items",
        params={
            "filter": "S_INTERSECTS(geometry, POINT(0 0))",
            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        },
    )
    assert response.status_code == 400
    assert "filter-crs" in response.json()["detail"]


@pytest.mark.parametrize(
    ("text", "cql2_json"),
    [
        ("zone = '核心区'", {"op": "=", "args": [{"property": "zone"}, "核心区"]}),
        (
            "established BETWEEN 1990 AND 2005 AND NOT (zone IN ('实验区'))",
            {
                "op": "and",
                "args": [
                    {"op": "between", "args": [{"property": "established"}, 1990, 2005]},
                    {"op": "not", "args": [{"op": "in", "args": [{"property": "zone"}, ["实验区"]]}]},
                ],
            },
        ),
        (
            "S_INTERSECTS(geometry, BBOX(118.0, 24.4, 118.2, 24.6))",
            {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [118.0, 24.4, 118.2, 24.6]}]},
        ),
    ],
)
def test_cql2_json_selects_like_cql2_text(client: TestClient, text: str, cql2_json: dict) -> None:
    as_text = get_items(client, "protected_area", filter=text)
    assert as_text["features"]
    as_json = get_items(client, "protected_area", filter=json.dumps(cql2_json), **{"filter-lang": "cql2-json"})
    assert feature_ids(as_json) == feature_ids(as_text)


def test_other_filter_languages_are_refused(client: TestClient) -> None:
    response = client.get("/ogc/collections/redline/items", params={"filter": "x", "filter-lang": "ecql"})
    assert response.status_code == 400
    assert "cql2-text, cql2-json" in response.json()["detail"] or "cql2-text or cql2-json" in response.json()["detail"]
    malformed = client.get("/ogc/collections/redline/items", params={"filter": "{not json", "filter-lang": "cql2-json"})
    assert malformed.status_code == 400 and "CQL2-JSON" in malformed.json()["detail"]


# -- sortables, JSON Schemas, links ------------------------------------------------------------


def test_sortables(client: TestClient, db: psycopg.Connection) -> None:
    collection = client.get("/ogc/collections/protected_area").json()
    link = next(
        link for link in collection["links"] if link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/sortables"
    )
    assert link["type"] == "application/schema+json"
    response = client.get(urlsplit(link["href"]).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    layer = CATALOG.get("protected_area")
    assert set(schema["properties"]) == {"id", *layer.property_names}
    assert "geometry" not in schema["properties"]
    for name in schema["properties"]:  # every sortable is accepted by sortby and sorts
        page = get_items(client, "protected_area", sortby=f"-{name}")
        values = [feature["id"] if name == "id" else feature["properties"][name] for feature in page["features"]]
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=True), name
    assert client.get("/ogc/collections/nowhere/sortables").status_code == 404


@pytest.mark.parametrize("layer_id", CATALOG.ids)
@pytest.mark.parametrize("resource", ["queryables", "sortables"])
def test_schemas_are_valid_json_schema_2020_12(client: TestClient, layer_id: str, resource: str) -> None:
    schema = client.get(f"/ogc/collections/{layer_id}/{resource}").json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    for entry in schema["properties"].values():
        assert entry.get("type") in (None, "string", "integer", "number", "boolean")


def test_features_validate_against_their_queryables(client: TestClient) -> None:
    for layer_id in CATALOG.ids:
        schema = client.get(f"/ogc/collections/{layer_id}/queryables").json()
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        for feature in get_items(client, layer_id, limit=20)["features"]:
            record = {k: v for k, v in feature["properties"].items() if v is not None}
            record["id"] = feature["id"]
            errors = [error.message for error in validator.iter_errors(record)]
            assert not errors, (layer_id, feature["id"], errors)


def all_links(document: object) -> list[dict]:
    if isinstance(document, dict):
        found = list(document.get("links", [])) if isinstance(document.get("links"), list) else []
        for key, value in document.items():
            if key != "links":
                found += all_links(value)
        return found
    if isinstance(document, list):
        return [link for item in document for link in all_links(item)]
    return []


def test_every_link_is_typed(client: TestClient) -> None:
    paths = ["/ogc", "/ogc/collections", "/ogc/collections/redline/items?limit=3&offset=3"]
    paths += [f"/ogc/collections/{layer_id}" for layer_id in CATALOG.ids]
    paths += ["/ogc/collections/station/items/1"]
    count = 0
    for path in paths:
        document = client.get(path).json()
        for link in all_links(document):
            count += 1
            assert link.get("type"), (path, link)
            assert link.get("rel") and link.get("href"), (path, link)
    assert count > 50


def test_landing_announces_the_real_openapi_version(client: TestClient) -> None:
    links = client.get("/ogc").json()["links"]
    service_desc = next(link for link in links if link["rel"] == "service-desc")
    document = client.get(urlsplit(service_desc["href"]).path).json()
    major_minor = ".".join(document["openapi"].split(".")[:2])
    assert service_desc["type"] == f"application/vnd.oai.openapi+json;version={major_minor}"
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    oas30 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
    assert (oas30 in classes) == (major_minor == "3.0")
    for declared in ("conf/html", "cql2/1.0/conf/cql2-json", "ogcapi-features-8/1.0/conf/sorting"):
        assert any(uri.endswith(declared) for uri in classes), declared


# -- HTML --------------------------------------------------------------------------------------

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"<link\b", html, flags=re.I)
    assert not re.search(r"\bsrc\s*=", html, flags=re.I)
    for href in re.findall(r'href="([^"]+)"', html):
        assert href.startswith(("http://127.0.0.1/", "#")), href  # the trusted host (TestClient sends "testserver")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ogc", "EcoMap Xiamen – OGC API Features"),
        ("/ogc/conformance", "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"),
        ("/ogc/collections", "生态保护红线"),
        ("/ogc/collections/protected_area", "自然保护地"),
        ("/ogc/collections/protected_area/queryables", "established"),
        ("/ogc/collections/protected_area/sortables", "area_ha"),
        ("/ogc/collections/station/items/1", "Monitoring stations 1"),
    ],
)
def test_html_views(client: TestClient, path: str, expected: str) -> None:
    for response in (client.get(path, params={"f": "html"}), client.get(path, headers={"Accept": BROWSER_ACCEPT})):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert expected in response.text
        assert_self_contained(response.text)


def test_html_items_table_with_paging(client: TestClient, db: psycopg.Connection) -> None:
    response = client.get("/ogc/collections/station/items", params={"f": "html", "limit": 5, "offset": 5})
    assert response.status_code == 200
    assert_self_contained(response.text)
    rows = re.findall(r'<tr><td><a href="[^"]*/items/(\d+)\?f=html">', response.text)
    expected = [row[0] for row in db.execute("SELECT id FROM station ORDER BY id LIMIT 5 OFFSET 5").fetchall()]
    assert [int(r) for r in rows] == expected
    assert re.search(r'href="[^"]*offset=10[^"]*f=html" rel="next"', response.text.replace("&amp;", "&"))
    assert re.search(r'href="[^"]*offset=0[^"]*f=html" rel="prev"', response.text.replace("&amp;", "&"))
    total = db.execute("SELECT count(*) FROM station").fetchone()[0]
    assert f"of {total}" in response.text
    assert "<td>true</td>" in response.text and ">True<" not in response.text  # is_sample, spelt as in JSON


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "application/geo+json, application/json", "text/html, application/json"]
)
def test_api_clients_keep_json(client: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    for path in ("/ogc", "/ogc/collections/redline", "/ogc/collections/redline/items?limit=1"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert "json" in response.headers["content-type"], (path, accept)
        json.loads(response.text)
    forced = client.get("/ogc/collections/redline", params={"f": "json"}, headers={"Accept": BROWSER_ACCEPT})
    assert forced.headers["content-type"] == "application/json"


def test_unknown_format_is_refused(client: TestClient) -> None:
    response = client.get("/ogc/collections", params={"f": "xml"})
    assert response.status_code == 400
    assert "f" in response.json()["detail"] and "html" in response.json()["detail"]
