"""The attribute table's export: the layer's features matching a CQL2 filter and/or a selection
of ids, in every format and CRS the export has, checked against independent SQL."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi.testclient import TestClient


def test_export_of_a_filtered_set(client: TestClient, db: psycopg.Connection) -> None:
    expected = {r[0] for r in db.execute("SELECT id FROM redline WHERE domain = '陆域' AND area_km2 > 5").fetchall()}
    assert expected
    response = client.get(
        "/api/layers/redline/export",
        params={"format": "geojson", "filter": "domain = '陆域' AND area_km2 > 5"},
    )
    assert response.status_code == 200, response.text
    exported = json.loads(response.content)
    assert {f["properties"]["id"] for f in exported["features"]} == expected
    assert int(response.headers["x-feature-count"]) == len(expected)
    as_json = {"op": "and", "args": [{"op": "=", "args": [{"property": "domain"}, "陆域"]},
                                      {"op": ">", "args": [{"property": "area_km2"}, 5]}]}  # fmt: skip
    response = client.get(
        "/api/layers/redline/export",
        params={"format": "csv", "filter": json.dumps(as_json), "filter-lang": "cql2-json", "crs": "EPSG:4527"},
    )
    assert response.status_code == 200 and int(response.headers["x-feature-count"]) == len(expected)


def test_export_of_a_selection_within_a_filter(client: TestClient, db: psycopg.Connection) -> None:
    ids = [r[0] for r in db.execute("SELECT id FROM station ORDER BY id LIMIT 5").fetchall()]
    response = client.get("/api/layers/station/export", params={"format": "geojson", "ids": ",".join(map(str, ids))})
    assert response.status_code == 200, response.text
    assert sorted(f["properties"]["id"] for f in json.loads(response.content)["features"]) == ids
    kind = db.execute("SELECT kind FROM station WHERE id = %s", [ids[0]]).fetchone()[0]
    expected = {r[0] for r in db.execute("SELECT id FROM station WHERE id = ANY(%s) AND kind = %s", [ids, kind])}
    both = client.get(
        "/api/layers/station/export",
        params={"format": "geojson", "ids": ",".join(map(str, ids)), "filter": f"kind = '{kind}'"},
    )
    assert {f["properties"]["id"] for f in json.loads(both.content)["features"]} == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "nosuch = 1"}, "filter:"),
        ({"filter": "area_km2 = 'abc'"}, "area_km2"),
        ({"ids": "1,x"}, "ids"),
        ({"ids": ",".join(str(i) for i in range(1, 1200))}, "at most 1000"),
    ],
)
def test_export_selection_errors_say_what_to_fix(client: TestClient, params: dict, message: str) -> None:
    response = client.get("/api/layers/redline/export", params={"format": "geojson", **params})
    assert response.status_code == 400 and message in response.json()["detail"]
