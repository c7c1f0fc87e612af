"""Per-feature scopes (issue 14 item 3): a partner key's shared area and a chief's jurisdiction,
declared in ``gis_service/access/rules.yaml`` and applied by the one policy to OGC items, tiles
(single and composite, fast path and route), search, zone check, exports and revision features.

The leak paths are checked against sets worked out independently in SQL on the test database:
a partner key scoped to the Huli district (350206) never gets a station outside it; a chief
sees a station's internal ``operator`` only for stations on their waters (within 500 m of
their river segments, or inside their bays and watersheds), null elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import mapbox_vector_tile
import morecantile
import psycopg
import pyproj
import pytest
import shapely
import shapely.geometry

from gis_service.access import endpoint_rules
from layers.catalog import CatalogError, load_catalog
from tests.test_access import (
    _forget_failed_sign_ins,  # noqa: F401 - autouse fixture
    add_user,
    bearer,
    sign_in,
    unique,
)
from tests.test_access_keys_audit import cli, invoke  # noqa: F401 - cli is a fixture
from tests.test_access_rules import _start

WMQ = morecantile.tms.get("WebMercatorQuad")
AREA = "350206"  # Huli
INSIDE_AREA = (
    "SELECT s.id FROM station AS s JOIN district AS d ON ST_Intersects(s.geom, d.geom)"
    " WHERE d.adcode = %s ORDER BY s.id"
)
ON_WATERS = """
    SELECT s.id FROM station AS s WHERE EXISTS (
        SELECT 1 FROM chief_assignment AS a
        LEFT JOIN river AS r ON a.layer = 'river' AND r.id = a.feature_id
        LEFT JOIN bay AS b ON a.layer = 'bay' AND b.id = a.feature_id
        LEFT JOIN watershed AS w ON a.layer = 'watershed' AND w.id = a.feature_id
        WHERE a.chief_id = %s AND (ST_DWithin(s.geom::geography, r.geom::geography, 500)
                                   OR ST_Intersects(s.geom, b.geom) OR ST_Intersects(s.geom, w.geom)))
    ORDER BY s.id"""


@pytest.fixture(scope="module")
def app(database_url: str):
    client = _start(database_url, None)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def inside(db_module) -> set[int]:
    return {row[0] for row in db_module.execute(INSIDE_AREA, [AREA])}


@pytest.fixture(scope="module")
def db_module(database_url: str):
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def partner(cli) -> dict[str, str]:  # noqa: F811 - the cli fixture
    layers = ",".join(load_catalog().ids)
    name = unique("huli")
    created = invoke(cli, "keys", "create", "--name", name, "--role", "partner", "--layers", layers, "--area", AREA)
    listed = invoke(cli, "keys", "list").stdout
    assert any(line.startswith(name) and "km²" in line for line in listed.splitlines()), listed
    return {"X-API-Key": created.stdout.strip().splitlines()[-1]}


def _outside_station(db_module, inside: set[int]) -> tuple[int, str, float, float]:
    return db_module.execute(
        "SELECT id, name, ST_X(geom), ST_Y(geom) FROM station WHERE NOT id = ANY(%s) ORDER BY id LIMIT 1",
        [sorted(inside)],
    ).fetchone()


def _tile_ids(response, layer: str = "station") -> set[int]:
    assert response.status_code in (200, 204), response.text
    if response.status_code == 204:
        return set()
    return {f["id"] for f in mapbox_vector_tile.decode(response.content).get(layer, {}).get("features", [])}


def test_a_partner_key_reads_items_and_exports_only_inside_its_area(app, partner, inside, db_module) -> None:
    assert inside and len(inside) < db_module.execute("SELECT count(*) FROM station").fetchone()[0]
    items = app.get("/ogc/collections/station/items", params={"limit": 1000}, headers=partner).json()
    assert {f["id"] for f in items["features"]} == inside and items["numberMatched"] == len(inside)
    everyone = app.get("/ogc/collections/station/items", params={"limit": 1000}).json()
    assert len(everyone["features"]) > len(inside)
    sid, *_ = _outside_station(db_module, inside)
    assert app.get(f"/ogc/collections/station/items/{sid}").status_code == 200
    hidden = app.get(f"/ogc/collections/station/items/{sid}", headers=partner)
    assert hidden.status_code == 404 and "does not exist" in hidden.json()["detail"]  # as if it did not exist
    for params in ({"format": "geojson"}, {"format": "csv"}):
        export = app.get("/api/layers/station/export", params=params, headers=partner)
        assert export.status_code == 200, export.text
        if params["format"] == "geojson":
            assert {f["properties"]["id"] for f in json.loads(export.content)["features"]} == inside
        else:
            assert export.text.count("\n") - 1 == len(inside)
    revision_features = app.get("/api/layers/station/features", headers=partner).json()["features"]
    assert {f["id"] for f in revision_features} == inside


def test_a_partner_key_gets_no_outside_feature_in_a_tile_single_or_composite(app, partner, inside, db_module) -> None:
    sid, _, lon, lat = _outside_station(db_module, inside)
    tile = WMQ.tile(lon, lat, 14)
    for layers in ("station", "river,station,redline"):
        path = f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.pbf"
        assert sid in _tile_ids(app.get(path))  # the public tile holds it
        for params in ({}, {"properties": "name"}):  # the fast path, and the route (a query string)
            scoped = app.get(path, params=params, headers=partner)
            assert sid not in _tile_ids(scoped)
            assert scoped.headers["cache-control"].startswith("private") and "X-API-Key" in scoped.headers["vary"]
        assert sid in _tile_ids(app.get(path))  # the scoped tile was cached apart from the public one
    # a tile inside the area holds the inside stations as for everyone
    sid_in, lon_in, lat_in = db_module.execute(
        "SELECT id, ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [min(inside)]
    ).fetchone()
    inner = WMQ.tile(lon_in, lat_in, 14)
    assert sid_in in _tile_ids(app.get(f"/tiles/station/{inner.z}/{inner.x}/{inner.y}.pbf", headers=partner))


def test_a_partner_key_finds_nothing_outside_its_area(app, partner, inside, db_module) -> None:
    sid, name, lon, lat = _outside_station(db_module, inside)
    public = app.get("/api/search", params={"q": name}).json()["results"]
    assert any(hit["layer"] == "station" and hit["id"] == sid for hit in public)
    scoped = app.get("/api/search", params={"q": name}, headers=partner).json()["results"]
    assert not any(hit["layer"] == "station" and hit["id"] == sid for hit in scoped)
    # the zone check of a site around that station: neither the station nor features outside
    delta = 0.002
    ring = [
        [lon - delta, lat - delta],
        [lon + delta, lat - delta],
        [lon + delta, lat + delta],
        [lon - delta, lat - delta],
    ]
    body = {"geometry": {"type": "Polygon", "coordinates": [ring]}, "buffer_m": 100}
    everyone = app.post("/api/zone-check", json=body).json()
    assert any(s["id"] == sid for s in everyone["stations"])
    checked = app.post("/api/zone-check", json=body, headers=partner)
    assert checked.status_code == 200, checked.text
    assert not any(s["id"] == sid for s in checked.json()["stations"])
    outside_overlaps = [
        (o["layer"], o["id"])
        for o in checked.json()["overlaps"]
        if not db_module.execute(
            f"SELECT ST_Intersects(t.geom, d.geom) FROM {o['layer']} AS t, district AS d"
            " WHERE t.id = %s AND d.adcode = %s",
            [o["id"], AREA],
        ).fetchone()[0]
    ]
    assert outside_overlaps == []


@pytest.fixture(scope="module")
def chief(app, database_url: str, db_module) -> tuple[dict[str, str], int]:
    chief_id = db_module.execute(
        "SELECT chief_id FROM chief_assignment WHERE layer = 'river' GROUP BY chief_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    login, password = add_user(database_url, "chief", chief_id)
    return bearer(sign_in(app, login, password)["access_token"]), chief_id


def test_a_chief_sees_internal_fields_only_on_their_waters(app, chief, db_module, database_url: str) -> None:
    headers, chief_id = chief
    on_waters = {row[0] for row in db_module.execute(ON_WATERS, [chief_id])}
    operated = {row[0] for row in db_module.execute("SELECT id FROM station WHERE operator IS NOT NULL")}
    assert on_waters & operated and operated - on_waters
    items = app.get("/ogc/collections/station/items", params={"limit": 1000}, headers=headers).json()["features"]
    assert len(items) == len(operated | {f["id"] for f in items})  # every station, none left out
    shown = {f["id"] for f in items if f["properties"].get("operator")}
    assert shown == on_waters & operated
    analyst_login, password = add_user(database_url, "analyst")
    analyst = bearer(sign_in(app, analyst_login, password)["access_token"])
    everywhere = app.get("/ogc/collections/station/items", params={"limit": 1000}, headers=analyst).json()
    assert {f["id"] for f in everywhere["features"] if f["properties"].get("operator")} == operated
    # the tile of a station off their waters: the station, without its operator
    sid, lon, lat = db_module.execute(
        "SELECT id, ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [min(operated - on_waters)]
    ).fetchone()
    tile = WMQ.tile(lon, lat, 14)
    response = app.get(f"/tiles/station/{tile.z}/{tile.x}/{tile.y}.pbf", headers=headers)
    feature = next(f for f in mapbox_vector_tile.decode(response.content)["station"]["features"] if f["id"] == sid)
    assert "operator" not in feature["properties"] and response.headers["cache-control"].startswith("private")
    seen = app.get(f"/tiles/station/{tile.z}/{tile.x}/{tile.y}.pbf", headers=analyst)
    feature = next(f for f in mapbox_vector_tile.decode(seen.content)["station"]["features"] if f["id"] == sid)
    assert feature["properties"]["operator"]
    export = app.get("/api/layers/station/export", params={"format": "geojson"}, headers=headers)
    exported = {f["properties"]["id"] for f in json.loads(export.content)["features"] if f["properties"]["operator"]}
    assert exported == on_waters & operated


def test_scope_rules_are_validated_strictly(tmp_path: Path) -> None:
    rules = endpoint_rules.load_rules()
    assert rules.scopes["partner"].features == "all" and rules.scopes["chief"].fields == ["station"]
    base = "chiefs: {reads: [river]}\nnetwork: {reads: [river]}\n"
    bad = tmp_path / "rules.yaml"
    for scopes, message in (
        ("scopes: {planner: {area: key_area}}", r"scopes.planner"),
        ("scopes: {partner: {area: key_area, field: [station]}}", r"unknown key 'scopes.partner.field'"),
        ("scopes: {partner: {area: elsewhere}}", r"scopes.partner.area"),
    ):
        bad.write_text(base + scopes + "\n", encoding="utf-8")
        with pytest.raises(CatalogError, match=message):
            endpoint_rules.load_rules(bad)
    for scopes, message in (
        ("scopes: {partner: {area: jurisdiction}}", r"scopes.partner.area: jurisdiction is the area of chief"),
        ("scopes: {chief: {area: jurisdiction, fields: [stations]}}", r"scopes.chief.fields: unknown layers"),
    ):
        bad.write_text(base + scopes + "\n", encoding="utf-8")
        with pytest.raises(CatalogError, match=message):
            endpoint_rules.load_rules(bad).check_catalog(load_catalog(), bad)


def test_keys_create_area_is_checked(cli, tmp_path: Path) -> None:  # noqa: F811 - the cli fixture
    refused = invoke(
        cli,
        "keys",
        "create",
        "--name",
        unique("x"),
        "--role",
        "partner",
        "--layers",
        "river",
        "--area",
        "350299",
        code=2,
    )
    assert "unknown district adcodes 350299" in refused.output and "350206" in refused.output
    station = invoke(cli, "keys", "create", "--name", unique("x"), "--role", "station", "--area", AREA, code=2)
    assert "only partner keys have a shared area" in station.output
    lines = tmp_path / "lines.geojson"
    lines.write_text(json.dumps({"type": "LineString", "coordinates": [[118, 24], [118.1, 24.1]]}))
    wrong = invoke(
        cli,
        "keys",
        "create",
        "--name",
        unique("x"),
        "--role",
        "partner",
        "--layers",
        "river",
        "--area",
        str(lines),
        code=2,
    )
    assert "Polygon or MultiPolygon" in wrong.output
    square = tmp_path / "square.geojson"
    ring = [[118.1, 24.45], [118.2, 24.45], [118.2, 24.55], [118.1, 24.55], [118.1, 24.45]]
    square.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    invoke(
        cli, "keys", "create", "--name", unique("sq"), "--role", "partner", "--layers", "river", "--area", str(square)
    )


@pytest.fixture(scope="module")
def admin_headers(app, database_url: str) -> dict[str, str]:
    login, password = add_user(database_url, "admin")
    return bearer(sign_in(app, login, password)["access_token"])


def _geodesic_km2(geometry) -> float:
    return abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(geometry)[0]) / 1e6


def test_the_admin_api_creates_a_partner_key_with_a_shared_area_and_lists_it(
    app, admin_headers, inside, db_module
) -> None:
    layers = load_catalog().ids
    name = unique("huli-http")
    body = {"name": name, "role": "partner", "layers": layers, "area": AREA}
    created = app.post("/api/admin/keys", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    district = shapely.from_wkb(
        db_module.execute("SELECT ST_AsBinary(geom) FROM district WHERE adcode = %s", [AREA]).fetchone()[0]
    )
    listed = next(k for k in app.get("/api/admin/keys", headers=admin_headers).json() if k["name"] == name)
    area = shapely.geometry.shape(listed["area"])
    assert listed["area"]["type"] == "MultiPolygon" and area.symmetric_difference(district).area < 1e-4 * district.area
    assert listed["area_km2"] == pytest.approx(_geodesic_km2(district), rel=1e-3)
    assert created.json()["area_km2"] == listed["area_km2"]
    key = {"X-API-Key": created.json()["key"]}
    items = app.get("/ogc/collections/station/items", params={"limit": 1000}, headers=key).json()["features"]
    assert {f["id"] for f in items} == inside
    # a GeoJSON area (a Feature), as the CLI's --area file takes it: stations in the square only
    ring = [[118.1, 24.45], [118.2, 24.45], [118.2, 24.55], [118.1, 24.55], [118.1, 24.45]]
    square = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    body = {"name": unique("square-http"), "role": "partner", "layers": ["station"], "area": square}
    created = app.post("/api/admin/keys", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["area_km2"] == pytest.approx(_geodesic_km2(shapely.Polygon(ring)), rel=1e-3)
    everyone = app.get("/ogc/collections/station/items", params={"limit": 1000}).json()["features"]
    expected = {f["id"] for f in everyone if shapely.Polygon(ring).intersects(shapely.geometry.shape(f["geometry"]))}
    key = {"X-API-Key": created.json()["key"]}
    items = app.get("/ogc/collections/station/items", params={"limit": 1000}, headers=key).json()["features"]
    assert expected and {f["id"] for f in items} == expected


@pytest.mark.parametrize(
    ("role", "area", "message"),
    [
        ("partner", "350299", "unknown district adcodes 350299; valid: "),
        ("partner", ["350206", "350299"], "unknown district adcodes 350299"),
        ("partner", "Huli", "is not district adcodes: give six-digit codes"),
        ("partner", {"type": "LineString", "coordinates": [[118, 24], [118.1, 24.1]]}, "Polygon or MultiPolygon"),
        ("partner", {"type": "FeatureCollection", "features": []}, "Polygon or MultiPolygon"),
        (
            "partner",
            {"type": "Polygon", "coordinates": [[["a", "b"]]]},
            "not a valid GeoJSON Polygon: each ring must list at least 4",
        ),
        ("partner", {"type": "Polygon", "coordinates": [[[118, 24], [218, 24], [118, 25], [118, 24]]]}, "EPSG:4326"),
        ("partner", {"type": "MultiPolygon", "coordinates": [[[[118, 24], [119, 24], [118, 25], [118.5, 24]]]]}, "end"),
        ("partner", {"type": "Polygon", "coordinates": [[[118, 24], [118.1, 24], [118.2, 24], [118, 24]]]}, "empty"),
        ("station", AREA, "only partner keys have a shared area: leave area out"),
    ],
)
def test_a_bad_key_area_over_http_is_400_saying_what_to_fix_and_writes_nothing(
    app, admin_headers, role: str, area, message: str
) -> None:
    name = unique("bad-area")
    body = {"name": name, "role": role, "layers": ["river"] if role == "partner" else [], "area": area}
    refused = app.post("/api/admin/keys", json=body, headers=admin_headers)
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["detail"]
    assert name not in {k["name"] for k in app.get("/api/admin/keys", headers=admin_headers).json()}
