"""Vector tiles decoded and checked against the features that truly intersect each tile."""

from __future__ import annotations

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from layers.catalog import load_catalog
from tiles.sql import has_label_points
from tiles.status import STATUS_PROPERTIES, has_status

CATALOG = load_catalog()
TMS = morecantile.tms.get("WebMercatorQuad")


def expected_ids(db: psycopg.Connection, layer_id: str, z: int, x: int, y: int) -> set[int]:
    """Features intersecting the tile plus its buffer, computed independently in PostGIS."""
    layer = CATALOG.get(layer_id)
    margin = layer.tiles.buffer / layer.tiles.extent
    query = sql.SQL(
        "SELECT id FROM {} WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(%s, %s, %s, margin => %s))"
    ).format(sql.Identifier(layer.table))
    return {row[0] for row in db.execute(query, [z, x, y, margin]).fetchall()}


def expected_label_ids(db: psycopg.Connection, layer_id: str, z: int, x: int, y: int) -> set[int]:
    """Features whose label point (a point on their surface) lies in the tile plus its buffer."""
    layer = CATALOG.get(layer_id)
    margin = layer.tiles.buffer / layer.tiles.extent
    query = sql.SQL(
        "SELECT id FROM {} WHERE ST_Intersects(ST_Transform(ST_PointOnSurface(geom), 3857),"
        " ST_TileEnvelope(%s, %s, %s, margin => %s))"
    ).format(sql.Identifier(layer.table))
    return {row[0] for row in db.execute(query, [z, x, y, margin]).fetchall()}


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def busiest_tile(db: psycopg.Connection, layer_id: str, z: int) -> morecantile.Tile:
    """The tile at zoom z holding the centroid of the layer's first feature."""
    table = sql.Identifier(CATALOG.get(layer_id).table)
    lon, lat = db.execute(
        sql.SQL(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM {} ORDER BY id LIMIT 1) s"
        ).format(table)
    ).fetchone()
    return TMS.tile(lon, lat, z)


@pytest.mark.parametrize("layer_id", sorted(CATALOG.ids))
@pytest.mark.parametrize("z", [12, 14])
def test_tile_holds_every_intersecting_feature(
    client: TestClient, db: psycopg.Connection, layer_id: str, z: int
) -> None:
    tile = busiest_tile(db, layer_id, z)
    expected = expected_ids(db, layer_id, z, tile.x, tile.y)
    assert expected, "the demo data should have a feature in this tile"
    response = client.get(f"/tiles/{layer_id}/{z}/{tile.x}/{tile.y}.pbf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = decode(response.content)
    layer = CATALOG.get(layer_id)
    if has_label_points(layer, z):
        assert list(decoded) == [layer_id, f"{layer_id}_label"]
        labels = decoded[f"{layer_id}_label"]["features"]
        assert {f["id"] for f in labels} == expected_label_ids(db, layer_id, z, tile.x, tile.y)
        assert all(f["geometry"]["type"] == "Point" and layer.style.label.property in f["properties"] for f in labels)
    else:
        assert list(decoded) == [layer_id]
    features = decoded[layer_id]["features"]
    assert {f["id"] for f in features} == expected
    assert decoded[layer_id]["extent"] == 4096
    for feature in features:
        live = set(STATUS_PROPERTIES) if has_status(layer) else set()  # station status (tiles.status)
        assert set(feature["properties"]) <= set(layer.property_names) | live
        assert layer.name_property in feature["properties"]


def test_tiles_over_whole_city_at_low_zoom(client: TestClient) -> None:
    """The city straddles the tile edge at 118.125°E: its two z8 tiles hold all six districts."""
    names = set()
    for tile in TMS.tiles(117.9, 24.45, 118.4, 24.85, zooms=[8]):
        decoded = decode(client.get(f"/tiles/district/8/{tile.x}/{tile.y}.pbf").content)
        names |= {f["properties"]["name_zh"] for f in decoded["district"]["features"]}
    assert names == {"思明区", "海沧区", "湖里区", "集美区", "同安区", "翔安区"}


def test_composite_tile_has_one_layer_per_catalog_layer(client: TestClient, db: psycopg.Connection) -> None:
    tile = TMS.tile(118.1, 24.6, 10)
    response = client.get(f"/tiles/district,redline,river/10/{tile.x}/{tile.y}.pbf")
    assert response.status_code == 200
    decoded = decode(response.content)
    assert set(decoded) == {"district", "district_label", "redline", "river"}  # district labels from z9
    for layer_id in ("district", "redline", "river"):
        assert {f["id"] for f in decoded[layer_id]["features"]} == expected_ids(db, layer_id, 10, tile.x, tile.y)


def test_empty_tile_is_204(client: TestClient) -> None:
    tile = TMS.tile(-40.0, -40.0, 10)  # the South Atlantic
    response = client.get(f"/tiles/redline/10/{tile.x}/{tile.y}.pbf")
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_plain_tile_requests_answer_like_the_routed_ones(
    client: TestClient, db: psycopg.Connection, encoding: str
) -> None:
    """Plain tile requests take a fast path in front of the middleware; the OGC route goes
    through the whole stack. Both answer the same bytes and headers."""
    tile = busiest_tile(db, "redline", 13)
    headers = {"Accept-Encoding": encoding}
    fast = client.get(f"/tiles/redline/{tile.z}/{tile.x}/{tile.y}.pbf", headers=headers)
    routed = client.get(f"/ogc/collections/redline/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}", headers=headers)
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content and decode(fast.content)["redline"]["features"]
    for name in ("etag", "content-type", "cache-control", "vary", "content-encoding"):
        assert fast.headers.get(name) == routed.headers.get(name), name
    assert (fast.headers.get("content-encoding") == "gzip") == (encoding == "gzip")
    assert client.get(fast.url, headers={"If-None-Match": fast.headers["etag"]}).status_code == 304


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/tiles/redline/3/8/1.pbf", "at zoom 3, x and y must be between 0 and 7"),
        ("/tiles/redline/25/0/0.pbf", "z"),
        ("/tiles/redline/2/-1/0.pbf", "x"),
    ],
)
def test_out_of_range_addresses_are_400(client: TestClient, path: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_unknown_layer_is_404_naming_valid_layers(client: TestClient) -> None:
    response = client.get("/tiles/redlines/10/850/441.pbf")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'redlines'" in detail
    for layer_id in CATALOG.ids:
        assert layer_id in detail


def test_layers_api_lists_catalog_with_tile_urls(client: TestClient) -> None:
    body = client.get("/api/layers").json()
    assert [g["id"] for g in body["groups"]][:2] == ["redline", "protected"]
    by_id = {layer["id"]: layer for layer in body["layers"]}
    assert set(by_id) == set(CATALOG.ids)
    for layer_id, layer in by_id.items():
        assert layer["tiles"][0].endswith(f"/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.pbf")
        assert layer["sample_data"] is (layer_id != "district")  # the districts are real boundaries
        assert layer["revision"] >= 1
        assert "table" not in layer


def test_tilejson(client: TestClient) -> None:
    body = client.get("/tiles/redline,station.json").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith("/tiles/redline,station/{z}/{x}/{y}.pbf")
    assert [v["id"] for v in body["vector_layers"]] == ["redline", "station", "redline_label"]
    assert "function_type" in body["vector_layers"][0]["fields"]
    west, south, east, north = body["bounds"]
    assert west < 118.1 < east and south < 24.6 < north


def test_default_style_draws_every_layer(client: TestClient) -> None:
    style = client.get("/styles/default.json").json()
    assert style["version"] == 8
    drawn = {layer["metadata"]["ecomap:layer"] for layer in style["layers"] if "metadata" in layer}
    assert drawn == set(CATALOG.ids)
    fill = next(layer for layer in style["layers"] if layer["id"] == "redline-fill")
    assert fill["paint"]["fill-color"][0] == "match"


def test_ogc_api_tiles(client: TestClient, db: psycopg.Connection) -> None:
    sets = client.get("/ogc/tileMatrixSets").json()
    assert [s["id"] for s in sets["tileMatrixSets"]] == ["WebMercatorQuad"]
    definition = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert definition["id"] == "WebMercatorQuad"
    tileset = client.get("/ogc/collections/redline/tiles/WebMercatorQuad").json()
    template = next(link["href"] for link in tileset["links"] if link["rel"] == "item")
    assert template.endswith("/ogc/collections/redline/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    assert client.get("/ogc/collections/redline/tiles").json()["tilesets"]
    tile = busiest_tile(db, "redline", 13)
    # OGC order is z/row/col = z/y/x: the same bytes as /tiles/z/x/y
    ogc = client.get(f"/ogc/collections/redline/tiles/WebMercatorQuad/13/{tile.y}/{tile.x}")
    xyz = client.get(f"/tiles/redline/13/{tile.x}/{tile.y}.pbf")
    assert ogc.status_code == 200
    assert ogc.content == xyz.content
    assert client.get("/ogc/collections/redline/tiles/WorldCRS84Quad").status_code == 404
    assert client.get("/ogc/collections/nope/tiles").status_code == 404
    bad = client.get("/ogc/collections/redline/tiles/WebMercatorQuad/3/9/0")
    assert bad.status_code == 400
    assert "between 0 and 7" in bad.json()["detail"]
