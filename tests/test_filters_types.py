"""CQL2 values checked against the catalog property types: a value of the wrong type is a 400
naming the property and the type, on OGC items, /tiles and OGC tiles alike (never a 500)."""

from __future__ import annotations

import datetime as dt
import json

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from layers.catalog import load_catalog
from layers.filters import FilterError, parse_filter

CATALOG = load_catalog()
TMS = morecantile.tms.get("WebMercatorQuad")
TILE = TMS.tile(118.1, 24.5, 9)  # holds most of Xiamen's red lines and protected areas

ROUTES = {
    "items": "/ogc/collections/{layer}/items",
    "tiles": f"/tiles/{{layer}}/{TILE.z}/{TILE.x}/{TILE.y}.pbf",
    "ogc-tiles": f"/ogc/collections/{{layer}}/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/{TILE.x}",
}

# (layer, filter, words the message must contain)
WRONG_TYPES = [
    ("redline", "area_km2='abc'", ["area_km2 is a number", "'abc' is not a number"]),
    ("redline", "geometry=1", ["geometry is a geometry", "S_INTERSECTS"]),
    ("redline", "S_INTERSECTS(name,POINT(118 24))", ["S_INTERSECTS needs a geometry", "name is a string"]),
    ("redline", "revision=99999999999999999999", ["revision is an integer", "out of range"]),
    ("redline", "revision > 9223372036854775808", ["revision is an integer", "out of range"]),
    ("redline", "valid_from > DATE('2025-13-45')", ["DATE('2025-13-45') is not a valid date"]),
    ("redline", "valid_from>'soon'", ["valid_from is a date", "'soon' is not a date"]),
    ("redline", "is_sample=1", ["is_sample is a boolean", "1 is not a boolean"]),
    ("redline", "id IN (1,'a')", ["id is an integer", "'a' is not an integer"]),
    ("redline", "code = 350203", ["code is a string", "350203 is not a string"]),
    ("protected_area", "established BETWEEN 1990 AND 'late'", ["established is an integer", "'late'"]),
    ("protected_area", "area_ha < TIMESTAMP('2020-01-01T00:00:00Z')", ["area_ha is a number"]),
    ("redline", "name LIKE 5", ["LIKE takes a quoted text pattern"]),
    ("redline", "name = 'a\x00b'", ["NUL"]),
    ("redline", "S_WITHIN(geometry, 'Xiamen')", ["S_WITHIN needs a geometry"]),
    ("redline", "area_km2 = valid_from", ["cannot compare area_km2", "valid_from"]),
    ("redline", " OR ".join(f"id = {i}" for i in range(250)), ["too complex", "at most"]),
    ("redline", "NOT " * 900 + "is_sample = true", ["the filter is"]),  # too deep or too complex
]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(("layer", "cql", "words"), WRONG_TYPES)
def test_wrong_value_types_answer_400(client: TestClient, route: str, layer: str, cql: str, words: list[str]) -> None:
    response = client.get(ROUTES[route].format(layer=layer), params={"filter": cql})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_nul_byte_in_a_property_equality_filter(client: TestClient) -> None:
    response = client.get("/ogc/collections/redline/items?name=a%00b")
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["detail"] and "name" in response.json()["detail"]
    cql = client.get("/ogc/collections/redline/items?filter=name%3D%27a%00b%27")
    assert cql.status_code == 400 and "NUL" in cql.json()["detail"]


def test_integer_equality_filter_out_of_range(client: TestClient) -> None:
    response = client.get("/ogc/collections/protected_area/items", params={"established": "99999999999999999999"})
    assert response.status_code == 400, response.text
    assert "established" in response.json()["detail"]


def ids_where(db: psycopg.Connection, table: str, condition: str) -> set[int]:
    query = sql.SQL("SELECT id FROM {} WHERE " + condition).format(sql.Identifier(table))
    return {row[0] for row in db.execute(query).fetchall()}


@pytest.mark.parametrize(
    ("layer", "cql", "condition"),
    [
        ("redline", "area_km2 > 1", "area_km2 > 1"),
        ("redline", "valid_from >= DATE('2023-01-01')", "valid_from >= '2023-01-01'"),
        ("redline", "valid_from = '2023-06-01'", "valid_from = '2023-06-01'"),
        ("redline", "valid_from < TIMESTAMP('2023-06-02T12:00:00Z')", "valid_from < '2023-06-02'"),
        ("redline", "is_sample = true", "is_sample"),
        ("redline", "id IN (1, 2, 3, 10, 14, 99)", "id IN (1, 2, 3, 10, 14, 99)"),
        ("protected_area", "established BETWEEN 1990 AND 2005.5", "established BETWEEN 1990 AND 2005"),
        ("protected_area", "established > 2000.5", "established > 2000"),
        ("protected_area", "area_ha >= established", "area_ha >= established"),
    ],
)
def test_well_typed_filters_select_the_same_features_as_sql(
    client: TestClient, db: psycopg.Connection, layer: str, cql: str, condition: str
) -> None:
    response = client.get(f"/ogc/collections/{layer}/items", params={"filter": cql, "limit": 1000})
    assert response.status_code == 200, response.text
    expected = ids_where(db, layer, condition)
    assert expected, "the demo data should match this filter"
    assert {f["id"] for f in response.json()["features"]} == expected
    everything = tile_ids(client, layer)
    assert everything
    assert tile_ids(client, layer, cql) == everything & expected


def tile_ids(client: TestClient, layer: str, cql: str | None = None) -> set[int]:
    tile = client.get(ROUTES["tiles"].format(layer=layer), params={"filter": cql} if cql else {})
    assert tile.status_code in (200, 204), tile.text
    decoded = mapbox_vector_tile.decode(tile.content) if tile.content else {}
    return {f["id"] for f in decoded.get(layer, {}).get("features", [])}


def test_compiler_binds_values_of_the_property_type() -> None:
    redline = CATALOG.get("redline")
    compiled = parse_filter("revision = 3 AND area_km2 > 2 AND valid_from >= '2023-01-01'", redline)
    revision, area, valid_from = compiled.params.values()
    assert revision == 3 and type(revision) is int  # cql2 reads every number as a float
    assert area == 2.0 and type(area) is float
    assert valid_from == dt.date(2023, 1, 1)
    with pytest.raises(FilterError, match="cql2-text, cql2-json"):
        parse_filter("true", redline, language="cql-json")


def test_cql2_json_filter_is_type_checked_too(client: TestClient) -> None:
    bad = {"op": "=", "args": [{"property": "area_km2"}, "abc"]}
    response = client.get(
        "/ogc/collections/redline/items", params={"filter": json.dumps(bad), "filter-lang": "cql2-json"}
    )
    assert response.status_code == 400
    assert "area_km2 is a number" in response.json()["detail"]


AREA = "POLYGON((118.0 24.4, 118.2 24.4, 118.2 24.6, 118.0 24.6, 118.0 24.4))"


@pytest.mark.parametrize(
    ("function", "postgis"),
    [
        ("S_INTERSECTS", "ST_Intersects"),
        ("S_WITHIN", "ST_Within"),
        ("S_CONTAINS", "ST_Contains"),
        ("S_DISJOINT", "ST_Disjoint"),
        ("S_EQUALS", "ST_Equals"),
        ("S_TOUCHES", "ST_Touches"),
        ("S_OVERLAPS", "ST_Overlaps"),
        ("S_CROSSES", "ST_Crosses"),
    ],
)
@pytest.mark.parametrize(
    "literal", [AREA, "GEOMETRYCOLLECTION(POINT(118.1 24.5), LINESTRING(118.0 24.45, 118.3 24.55))"]
)
def test_spatial_functions_match_postgis(
    client: TestClient, db: psycopg.Connection, function: str, postgis: str, literal: str
) -> None:
    response = client.get(
        "/ogc/collections/protected_area/items", params={"filter": f"{function}(geometry, {literal})", "limit": 1000}
    )
    assert response.status_code == 200, response.text
    query = f"SELECT id FROM protected_area WHERE {postgis}(geom, ST_GeomFromText(%s, 4326))"
    expected = {row[0] for row in db.execute(query, [literal]).fetchall()}
    assert {f["id"] for f in response.json()["features"]} == expected


def test_legacy_cql_text_name_is_accepted(client: TestClient, db: psycopg.Connection) -> None:
    """GDAL 3.6 and older clients name CQL2 text `cql-text`."""
    response = client.get(
        "/ogc/collections/protected_area/items", params={"filter": "area_ha > 100", "filter-lang": "cql-text"}
    )
    assert response.status_code == 200, response.text
    assert {f["id"] for f in response.json()["features"]} == ids_where(db, "protected_area", "area_ha > 100")
